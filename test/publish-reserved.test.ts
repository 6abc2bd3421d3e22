import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
// @ts-expect-error: plain ESM without type declarations
import { createEmitTool, readEmitConfig } from "../gateway-plugin/emit.js";
import { buildConfig, ConfigError } from "../src/config/load.js";
import { startReceiver } from "./support/receiver.js";
import { startRedis, type TestRedis } from "./support/redis.js";
import { post, startService, type TestService } from "./support/service.js";
import { until } from "./support/until.js";
import { SERVICE_EVENT_TYPES } from "./support/event-types.js";

const SECRET = `whsec_${randomBytes(24).toString("base64")}`;
const PUBLISH = "publish-token-0123456789";
let rxUrl = "";
const webhooksWith = (extra: Record<string, unknown> = {}) =>
  ({ publishToken: PUBLISH, allowPrivateCidrs: ["127.0.0.0/8"], endpoints: [{ name: "crm", url: rxUrl, secret: SECRET, events: ["*"] }], ...extra }) as never;

/** Every type the service emits itself (README's event table, flow lifecycle, inbound, egress). */
const SYSTEM_TYPES = SERVICE_EVENT_TYPES;
/** The shapes of the ids the service gives its own events (README's table, flow-events.ts, runs.ts, engine.ts, envelope.ts). */
const SYSTEM_IDS = [
  "gw_in_m-1",
  "gw_msg_m-1",
  "gw_tool_run-1_call-1_3_start",
  "gw_session_created_agent:main:main_s-1",
  "gw_err_run-1",
  "cron_job-1_run-1",
  "task_t-1_completed",
  "flow_f-1_r2",
  "inbound_completed_run-1",
  "endpoint_disabled_crm_1790000000000",
  `evt_${"ab12".repeat(8)}`,
];

describe("POST /v1/events: the service's own event types and ids are not a publisher's", () => {
  let redis: TestRedis;
  let rx: Awaited<ReturnType<typeof startReceiver>>;
  let svc: TestService;
  let allowing: TestService | undefined;
  before(async () => {
    redis = await startRedis();
    rx = await startReceiver({ secret: SECRET });
    rxUrl = rx.url;
    svc = await startService({ redis: { url: redis.url, prefix: redis.prefix() }, webhooks: webhooksWith() });
    await svc.deps.egress!.startWorker();
  });
  after(async () => {
    await svc?.close();
    await allowing?.close();
    await rx?.close();
    await redis?.dispose();
  });
  const publish = (s: TestService | undefined, body: unknown) => post(`${s!.url}/v1/events`, body, { secret: PUBLISH });
  const settle = () => new Promise((r) => setTimeout(r, 400));

  test("every system type is refused 403 reserved_event_type, and nothing is delivered; lead.qualified still goes", async () => {
    const before = rx.received.length;
    for (const type of SYSTEM_TYPES) {
      const r = await publish(svc, { type, data: { forged: true } });
      assert.equal(r.status, 403, `${type}: ${r.text}`);
      assert.equal(r.json.code, "reserved_event_type", type);
      assert.match(r.json.error, new RegExp(`${type.replace(".", "\\.")} is an event type the service sends itself.*webhooks\\.publish\\.allowSystemTypes`));
    }
    const ok = await publish(svc, { type: "lead.qualified", data: { score: 91 }, id: "lead-7" });
    assert.equal(ok.status, 202, ok.text);
    await until(() => rx.received.length > before);
    await settle();
    const got = rx.received.slice(before).map((r) => JSON.parse(r.body));
    assert.deepEqual(
      got.map((e) => [e.type, e.id]),
      [["lead.qualified", "lead-7"]],
      "only the publisher's own event reached the receiver",
    );
  });

  test("an id in a namespace the service uses is refused 403 reserved_event_id, whatever the type", async () => {
    const before = rx.received.length;
    for (const id of SYSTEM_IDS) {
      const r = await publish(svc, { type: "lead.qualified", data: {}, id });
      assert.equal(r.status, 403, `${id}: ${r.text}`);
      assert.equal(r.json.code, "reserved_event_id", id);
    }
    // Near misses are the publisher's: another case, another word, a Stripe-style evt_ id.
    for (const id of ["GW_in_m-1", "gwx_1", "flows_1", "evt_1NqXk2Lz", "lead_gw_in_1"]) {
      assert.equal((await publish(svc, { type: "lead.qualified", data: {}, id })).status, 202, id);
    }
    await until(() => rx.received.length >= before + 5);
    await settle();
    assert.equal(rx.received.length, before + 5);
  });

  test("a refused forgery does not make the real event a duplicate", async () => {
    const forged = await publish(svc, { type: "lead.qualified", data: { forged: true }, id: "gw_in_real-1" });
    assert.equal(forged.status, 403);
    const real = await svc.deps.egress!.publish({ type: "message.received", data: { message: { content: "hi" } }, id: "gw_in_real-1", source: "gateway" });
    assert.equal(real.duplicate, false);
    assert.equal(real.deliveries.length, 1);
    await until(() => rx.received.some((r) => JSON.parse(r.body).id === "gw_in_real-1"));
    const e = JSON.parse(rx.received.find((r) => JSON.parse(r.body).id === "gw_in_real-1")!.body);
    assert.equal(e.type, "message.received");
    assert.equal(e.data.forged, undefined);
  });

  test("webhooks.publish.allowSystemTypes lets listed types through (exact or prefix); ids stay reserved", async () => {
    allowing = await startService({
      redis: { url: redis.url, prefix: redis.prefix() },
      webhooks: webhooksWith({ publish: { allowSystemTypes: ["message.received", "cron.*"] } }),
    });
    await allowing.deps.egress!.startWorker();
    const before = rx.received.length;
    const a = await publish(allowing, { type: "message.received", data: { via: "bridge" }, id: "import-1" });
    assert.equal(a.status, 202, a.text);
    assert.equal((await publish(allowing, { type: "cron.finished", data: {} })).status, 202);
    assert.equal((await publish(allowing, { type: "message.sent", data: {} })).json.code, "reserved_event_type");
    assert.equal((await publish(allowing, { type: "message.received", data: {}, id: "gw_in_x" })).json.code, "reserved_event_id");
    await until(() => rx.received.length >= before + 2);
    await settle();
    assert.deepEqual(
      rx.received
        .slice(before)
        .map((r) => JSON.parse(r.body).type)
        .sort(),
      ["cron.finished", "message.received"],
    );
    assert.throws(
      () => buildConfig({ webhooks: { publish: { allowSystemTypes: ["message received"] } } }),
      (e) => e instanceof ConfigError && /webhooks\.publish\.allowSystemTypes\.0/.test(e.message),
    );
  });

  test("the bridge plugin's webhooks_emit still publishes its allowed types (a dotted type and a bare name)", async () => {
    const before = rx.received.length;
    const tool = createEmitTool(
      { agentId: "sales", sessionKey: "agent:sales:main", sessionId: "s-1" },
      readEmitConfig({ service: { url: svc.url, token: PUBLISH } }),
      async (t: string) => t,
    );
    for (const [call, type] of [
      ["e1", "lead.qualified"],
      ["e2", "intent.detected"],
      ["e3", "handoff.requested"],
      ["e4", "cancellation_intent"],
    ] as const) {
      const out = await tool.execute(call, { type, data: { n: 1 } });
      assert.equal(out.details.ok, true, `${type}: ${JSON.stringify(out.details)}`);
    }
    const fromTool = () =>
      rx.received
        .slice(before)
        .map((r) => JSON.parse(r.body))
        .filter((e) => e.data.sessionKey === "agent:sales:main");
    await until(() => fromTool().length >= 4);
    assert.deepEqual(
      fromTool()
        .map((e) => e.type)
        .sort(),
      ["custom.triggered", "handoff.requested", "intent.detected", "lead.qualified"],
    );
  });
});
