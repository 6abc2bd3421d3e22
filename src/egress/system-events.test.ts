import assert from "node:assert/strict";
import { test } from "node:test";
// @ts-expect-error: plain ESM without type declarations
import { RESERVED } from "../../gateway-plugin/emit.js";
import { FIXTURES, loadFixture } from "../../test/support/gateway-fixtures.js";
import { newEventId } from "./envelope.js";
import { flowEvent } from "./flow-events.js";
import { createGatewayMapper } from "./gateway-events.js";
import { isSystemEventId, isSystemType, SYSTEM_TYPE_FAMILIES } from "./system-events.js";

test("every event the Gateway mapping makes from the recorded frames has a reserved type and a reserved id", () => {
  let n = 0;
  for (const name of FIXTURES) {
    const map = createGatewayMapper();
    for (const f of loadFixture(name).frames) {
      for (const e of map(f.event, f.payload)) {
        n++;
        assert.ok(isSystemType(e.type), `${e.type} (${name}) is not in a reserved family`);
        assert.ok(isSystemEventId(e.id), `${e.id} (${e.type}, ${name}) is not in a reserved id namespace`);
      }
    }
  }
  assert.ok(n > 20, `${n} events mapped`);
});

test("flow events, generated ids and the other system events are reserved too", () => {
  for (const action of ["create_flow", "set_waiting", "resume_flow", "finish_flow", "fail_flow", "cancel_flow"] as const) {
    const e = flowEvent(action, "r", 200, { flow: { flowId: "f-1", revision: 2, status: "cancelled", notifyPolicy: "state_changes" } })!;
    assert.ok(isSystemType(e.type) && isSystemEventId(e.id), `${action}: ${e.type} ${e.id}`);
  }
  assert.ok(isSystemEventId(newEventId()));
  for (const t of ["inbound.completed", "endpoint.disabled", "webhook.test", "Message.Sent"]) assert.ok(isSystemType(t), t);
  for (const t of ["lead.qualified", "custom.triggered", "messages.sent", "flow", "flowchart.drawn"]) assert.ok(!isSystemType(t), t);
});

test("the bridge plugin's webhooks_emit reserves the same families", () => {
  assert.deepEqual([...RESERVED].sort(), SYSTEM_TYPE_FAMILIES.map((f) => `${f}.`).sort());
});
