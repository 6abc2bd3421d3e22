import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FIXTURES, loadFixture, type RecordedFrame } from "../../test/support/gateway-fixtures.js";
import { flowEvent } from "./flow-events.js";
import { createGatewayMapper, mapGatewayEvent, type MappedEvent } from "./gateway-events.js";

/**
 * The mapping against frames the real Gateway 2026.9.6 sent (test/fixtures/gateway, recorded by
 * `npm run record:gateway`). Where a fixture and the mapping disagree, the fixture wins.
 */
function mapAll(frames: RecordedFrame[]) {
  const map = createGatewayMapper();
  const out: (MappedEvent & { frame: number })[] = [];
  frames.forEach((f, i) => {
    for (const e of map(f.event, f.payload)) out.push({ ...e, frame: i });
  });
  return out;
}

/**
 * One event per id (the publish keeps the first writer). Every copy of an id must say the same,
 * except task.updated: the first upsert of a status wins, the same one on every replica.
 */
function unique(events: MappedEvent[]) {
  const byId = new Map<string, MappedEvent>();
  for (const e of events) {
    const first = byId.get(e.id);
    if (first && e.type === "task.updated") assert.equal(e.type, first.type);
    else if (first) assert.deepEqual({ type: e.type, data: e.data }, { type: first.type, data: first.data }, `two different events share id ${e.id}`);
    else byId.set(e.id, e);
  }
  return [...byId.values()];
}
const ofType = (events: MappedEvent[], type: string) => events.filter((e) => e.type === type);
const recordedMessage = (name: string, role: string) =>
  loadFixture(name).frames.find((f) => f.event === "session.message" && f.payload.message.role === role)!.payload;

describe("Gateway frames → webhook events, on recorded frames", () => {
  test("every fixture was recorded on the real Gateway and is mapped without a throw", () => {
    assert.deepEqual(FIXTURES.sort(), ["agent-text", "agent-tool", "chat-send-text", "cron-command", "model-400", "model-500", "sessions-lifecycle"]);
    for (const name of FIXTURES) {
      const f = loadFixture(name);
      assert.equal(f.gateway, "openclaw 2026.9.6");
      assert.ok(f.frames.length > 5, name);
      mapAll(f.frames);
    }
  });

  test("an agent turn: message.received, message.sent (model, provider, usage, id), session.created, task.updated per status", () => {
    const events = unique(mapAll(loadFixture("agent-text").frames));
    const user = recordedMessage("agent-text", "user");
    const reply = recordedMessage("agent-text", "assistant");
    const [received, ...moreReceived] = ofType(events, "message.received");
    assert.equal(moreReceived.length, 0);
    assert.deepEqual(received!.data, {
      agentId: "main",
      sessionKey: "agent:main:rec-agent-text",
      sessionId: user.sessionId,
      message: { role: "user", content: "Hello there, what is the status?", messageId: user.messageId, timestamp: user.message.timestamp },
    });
    assert.equal(received!.id, `gw_in_${user.messageId}`);
    const [sent, ...moreSent] = ofType(events, "message.sent");
    assert.equal(moreSent.length, 0);
    assert.deepEqual(sent!.data, {
      agentId: "main",
      sessionKey: "agent:main:rec-agent-text",
      sessionId: reply.sessionId,
      runId: reply.message.__openclaw.runId,
      message: { role: "assistant", content: reply.message.content[0].text, messageId: reply.messageId, timestamp: reply.message.timestamp },
      model: "stub-1",
      provider: "stub",
      usage: { inputTokens: reply.message.usage.input, outputTokens: reply.message.usage.output, totalTokens: reply.message.usage.totalTokens },
      stopReason: "stop",
    });
    assert.match(String(sent!.data.message && (sent!.data.message as any).content), /^Echo: Hello there/);
    assert.equal(ofType(events, "session.created").length, 1);
    assert.equal(ofType(events, "session.created")[0]!.data.sessionKey, "agent:main:rec-agent-text");
    // Eight task upserts in the recording, two statuses: two task.updated.
    const upserts = loadFixture("agent-text").frames.filter((f) => f.event === "task").length;
    assert.ok(upserts >= 5, `${upserts} upserts`);
    assert.deepEqual(
      ofType(events, "task.updated").map((e) => e.data.status),
      ["running", "completed"],
    );
    assert.deepEqual(ofType(events, "error.occurred"), []);
    assert.deepEqual(ofType(events, "session.ended"), []);
  });

  test("chat.send: the same message events (the Gateway makes no task for it)", () => {
    const events = unique(mapAll(loadFixture("chat-send-text").frames));
    assert.deepEqual(events.map((e) => e.type).sort(), ["message.received", "message.sent", "session.created"]);
    assert.equal(
      ofType(events, "message.received")[0]!.data.message && (ofType(events, "message.received")[0]!.data.message as any).content,
      "Hi from chat.send",
    );
    assert.equal(ofType(events, "message.sent")[0]!.data.model, "stub-1");
  });

  test("a tool call: tool.called with args, tool.completed with the error flag, result and duration; the tool-call-only row is no message.sent", () => {
    const frames = loadFixture("agent-tool").frames;
    const events = unique(mapAll(frames));
    const start = frames.find((f) => f.event === "session.tool" && f.payload.data.phase === "start")!.payload;
    const end = frames.find((f) => f.event === "session.tool" && f.payload.data.phase === "result")!.payload;
    const [called, ...moreCalled] = ofType(events, "tool.called");
    assert.equal(moreCalled.length, 0);
    assert.deepEqual(called!.data, {
      agentId: "main",
      sessionKey: "agent:main:rec-agent-tool",
      sessionId: start.sessionId,
      runId: start.runId,
      toolName: "ls",
      toolCallId: start.data.toolCallId,
      args: { path: "." },
    });
    const [completed, ...moreCompleted] = ofType(events, "tool.completed");
    assert.equal(moreCompleted.length, 0);
    assert.equal(completed!.data.toolName, "ls");
    assert.equal(completed!.data.toolCallId, start.data.toolCallId);
    assert.equal(completed!.data.isError, false);
    assert.equal(completed!.data.durationMs, end.ts - start.ts);
    assert.match(String(completed!.data.result), /AGENTS\.md/);
    // The first assistant row only calls the tool; the second is the reply.
    assert.equal(frames.filter((f) => f.event === "session.message" && f.payload.message.role === "assistant").length, 2);
    assert.equal(ofType(events, "message.sent").length, 1);
    assert.equal(ofType(events, "message.sent")[0]!.data.stopReason, "stop");
  });

  test("ids: two resets of one session are two session.ended; a call id a model reuses within a run is two tool.called", () => {
    const reset = loadFixture("sessions-lifecycle").frames.find((f) => f.event === "sessions.changed" && f.payload.reason === "reset")!.payload;
    const [a] = mapGatewayEvent("sessions.changed", reset);
    const [b] = mapGatewayEvent("sessions.changed", { ...reset, ts: reset.ts + 5_000 });
    assert.notEqual(a!.id, b!.id);
    const start = loadFixture("agent-tool").frames.find((f) => f.event === "session.tool" && f.payload.data.phase === "start")!.payload;
    const [t1] = mapGatewayEvent("session.tool", start);
    const [t2] = mapGatewayEvent("session.tool", { ...start, seq: start.seq + 6, ts: start.ts + 40 });
    assert.notEqual(t1!.id, t2!.id);
    assert.equal(t1!.data.toolCallId, t2!.data.toolCallId);
  });

  test("a tool result seen without its start still maps (no duration: nothing to derive it from)", () => {
    const end = loadFixture("agent-tool").frames.find((f) => f.event === "session.tool" && f.payload.data.phase === "result")!;
    const [e] = mapGatewayEvent(end.event, end.payload);
    assert.equal(e!.type, "tool.completed");
    assert.equal("durationMs" in e!.data, false);
  });

  test("sessions.create, send, reset, delete: session.created once, session.ended for the reset and for the delete", () => {
    const events = unique(mapAll(loadFixture("sessions-lifecycle").frames));
    assert.equal(ofType(events, "session.created").length, 1);
    assert.equal(ofType(events, "session.created")[0]!.data.createdVia, "operator");
    assert.deepEqual(
      ofType(events, "session.ended").map((e) => [e.data.sessionKey, e.data.reason]),
      [
        ["agent:main:rec-sessions", "reset"],
        ["agent:main:rec-sessions", "delete"],
      ],
    );
    assert.equal(ofType(events, "message.received").length, 1);
    assert.equal(ofType(events, "message.sent").length, 1);
  });

  test("a model that answers 400: one error.occurred with message, provider and model; no message.sent for the Gateway's error row", () => {
    const events = unique(mapAll(loadFixture("model-400").frames));
    const [err, ...more] = ofType(events, "error.occurred");
    assert.equal(more.length, 0);
    assert.deepEqual(err!.data.error, {
      message: "LLM request failed: provider rejected the request schema or tool payload.",
      provider: "stub",
      model: "stub-1",
      reason: "format",
      kind: "schema",
    });
    assert.equal(err!.data.agentId, "main");
    assert.equal(err!.data.sessionKey, "agent:main:rec-400");
    assert.deepEqual(ofType(events, "message.sent"), []);
    assert.deepEqual(
      ofType(events, "task.updated").map((e) => e.data.status),
      ["running", "failed"],
    );
  });

  test("a model that answers 500: nothing while the Gateway retries (7 retries, ~85 s), then one error.occurred", () => {
    const frames = loadFixture("model-500").frames;
    const retries = frames.filter((f) => f.event === "agent" && f.payload.stream === "run_status" && f.payload.data.phase === "retrying");
    assert.equal(retries.length, 7);
    const mapped = mapAll(frames);
    const errors = mapped.filter((e) => e.type === "error.occurred");
    const lastRetry = frames.lastIndexOf(retries.at(-1)!);
    assert.ok(errors.length >= 1 && errors.every((e) => e.frame > lastRetry), "no error before the last retry");
    const [err, ...more] = unique(errors);
    assert.equal(more.length, 0);
    assert.equal((err!.data.error as any).provider, "stub");
    assert.equal((err!.data.error as any).reason, "server_error");
    assert.match(String((err!.data.error as any).message), /HTTP 500/);
  });

  test("cron command runs, scheduled and manual: two cron.finished carrying the body the Gateway itself POSTs (seed 004)", () => {
    const f = loadFixture("cron-command");
    const events = unique(mapAll(f.frames));
    const finished = ofType(events, "cron.finished");
    assert.equal(finished.length, 2);
    const [scheduled, manual] = finished;
    assert.equal(scheduled!.data.runId, undefined, "scheduled runs carry no runId");
    assert.match(String(manual!.data.runId), /^manual:/);
    assert.ok(manual!.id.includes(":"), "the manual run's id holds ':' (issue #14): the publish path must take it");
    assert.notEqual(scheduled!.id, manual!.id);
    const posted: any[] = f.steps.find((s) => s.gatewayPostedTo)!.bodies;
    assert.equal(posted.length, 2);
    for (const [i, body] of posted.entries()) {
      const ours = finished[i]!.data as any;
      for (const k of ["jobId", "action", "status", "summary", "diagnostics", "runAtMs", "delivered", "deliveryStatus", "delivery"]) {
        assert.deepEqual(ours[k], body[k], `cron.finished.${k} as the Gateway posts it`);
      }
      assert.equal(ours.job.id, body.job.id);
      assert.equal(ours.job.name, "rec-cron");
    }
    // A cron run's task (runtime cron) also reports its statuses.
    assert.ok(ofType(events, "task.updated").some((e) => (e.data.task as any).runtime === "cron" && e.data.status === "completed"));
  });

  test("an error cron run loses summary and diagnostics, as the Gateway's own POST does", () => {
    const ok = loadFixture("cron-command").frames.find((fr) => fr.event === "cron" && fr.payload.action === "finished")!.payload;
    const [e] = mapGatewayEvent("cron", { ...ok, status: "error", error: "exit 1" });
    assert.equal(e!.data.summary, undefined);
    assert.equal(e!.data.diagnostics, undefined);
    assert.equal((e!.data.job as any).state.lastDiagnostics, undefined);
    assert.equal((e!.data.job as any).state.lastDiagnosticSummary, undefined);
    assert.equal(e!.data.error, "exit 1");
  });

  test("frames that are not events, or make no sense, map to nothing", () => {
    for (const name of FIXTURES) {
      for (const fr of loadFixture(name).frames) {
        if (fr.event === "chat" && fr.payload.state === "delta") assert.deepEqual(mapGatewayEvent(fr.event, fr.payload), []);
        if (fr.event === "agent" && fr.payload.stream !== "lifecycle") assert.deepEqual(mapGatewayEvent(fr.event, fr.payload), []);
      }
    }
    assert.deepEqual(mapGatewayEvent("presence", [{ host: "x" }]), []);
    assert.deepEqual(mapGatewayEvent("chat", null), []);
    assert.deepEqual(mapGatewayEvent("agent", "nonsense"), []);
    assert.deepEqual(mapGatewayEvent("sessions.changed", { reason: "delete", ts: 1 }), []);
    assert.deepEqual(mapGatewayEvent("session.message", { message: { role: "user", content: "no id" } }), []);
  });
});

describe("flow lifecycle events and notifyPolicy", () => {
  const flow = (notifyPolicy: string, status = "running", revision = 1) => ({ flowId: "f1", revision, status, notifyPolicy });
  test("state_changes: every transition; done_only: only the end; silent: nothing", () => {
    assert.equal(flowEvent("create_flow", "r", 200, { created: true, flow: flow("state_changes", "queued", 0) })?.type, "flow.created");
    assert.equal(flowEvent("set_waiting", "r", 200, { applied: true, flow: flow("state_changes", "waiting") })?.type, "flow.waiting");
    assert.equal(flowEvent("resume_flow", "r", 200, { applied: true, flow: flow("state_changes") })?.type, "flow.resumed");
    assert.equal(flowEvent("set_waiting", "r", 200, { applied: true, flow: flow("done_only", "waiting") }), undefined);
    assert.equal(flowEvent("finish_flow", "r", 200, { applied: true, flow: flow("done_only", "succeeded", 3) })?.id, "flow_f1_r3");
    assert.equal(flowEvent("fail_flow", "r", 200, { applied: true, flow: flow("silent", "failed") }), undefined);
  });
  test("refusals, reads and a cancel still pending send nothing", () => {
    assert.equal(flowEvent("finish_flow", "r", 409, { applied: false, flow: flow("state_changes") }), undefined);
    assert.equal(flowEvent("get_flow", "r", 200, { flow: flow("state_changes") }), undefined);
    assert.equal(flowEvent("cancel_flow", "r", 202, { found: true, cancelled: false, flow: flow("state_changes") }), undefined);
    assert.equal(flowEvent("cancel_flow", "r", 200, { found: true, cancelled: true, flow: flow("done_only", "cancelled") })?.type, "flow.cancelled");
  });
});
