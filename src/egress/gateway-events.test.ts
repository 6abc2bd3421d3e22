import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { flowEvent } from "./flow-events.js";
import { mapGatewayEvent } from "./gateway-events.js";

describe("Gateway event → webhook event mapping", () => {
  test("chat final → message.sent in seed 002's data shape", () => {
    const [e, ...rest] = mapGatewayEvent("chat", {
      runId: "run-1",
      sessionKey: "agent:support:telegram:dm:42",
      seq: 7,
      state: "final",
      message: { role: "assistant", content: [{ type: "text", text: "Hello " }, { type: "text", text: "there" }], id: "msg-9" },
      usage: { input: 200, output: 450 },
    });
    assert.equal(rest.length, 0);
    assert.deepEqual(e, {
      type: "message.sent",
      id: "gw_msg_run-1",
      data: {
        agentId: "support",
        sessionKey: "agent:support:telegram:dm:42",
        runId: "run-1",
        message: { role: "assistant", content: "Hello there", messageId: "msg-9" },
        usage: { inputTokens: 200, outputTokens: 450 },
      },
    });
  });

  test("chat deltas and aborts are not events", () => {
    assert.deepEqual(mapGatewayEvent("chat", { runId: "r", sessionKey: "agent:a:b", state: "delta", deltaText: "he" }), []);
    assert.deepEqual(mapGatewayEvent("chat", { runId: "r", sessionKey: "agent:a:b", state: "aborted" }), []);
  });

  test("a user message → message.received; an assistant one is left to chat finals", () => {
    const [e] = mapGatewayEvent("session.message", { sessionKey: "agent:main:main", message: { role: "user", content: "hi", id: "m1", channel: "telegram" } });
    assert.equal(e?.type, "message.received");
    assert.equal(e?.id, "gw_in_m1");
    assert.deepEqual(e?.data.message, { role: "user", content: "hi", messageId: "m1" });
    assert.equal(e?.data.channel, "telegram");
    assert.deepEqual(mapGatewayEvent("session.message", { sessionKey: "agent:main:main", message: { role: "assistant", content: "x" } }), []);
  });

  test("agent tool stream → tool.called / tool.completed with one id per call and phase", () => {
    const start = mapGatewayEvent("agent", { runId: "r1", seq: 3, stream: "tool", sessionKey: "agent:ops:main", data: { phase: "start", name: "exec", toolCallId: "c1", args: { cmd: "ls" } } });
    const end = mapGatewayEvent("agent", { runId: "r1", seq: 4, stream: "tool", sessionKey: "agent:ops:main", data: { phase: "result", name: "exec", toolCallId: "c1", isError: false } });
    assert.deepEqual(start.map((e) => [e.type, e.id, e.data.toolName, e.data.agentId]), [["tool.called", "gw_tool_r1_c1_start", "exec", "ops"]]);
    assert.deepEqual(end.map((e) => [e.type, e.id, e.data.isError]), [["tool.completed", "gw_tool_r1_c1_end", false]]);
    assert.deepEqual(mapGatewayEvent("agent", { runId: "r1", stream: "assistant", data: { text: "x" } }), []);
  });

  test("a run's chat error and lifecycle error give the same error.occurred id (delivered once)", () => {
    const a = mapGatewayEvent("chat", { runId: "r2", sessionKey: "agent:x:main", state: "error", errorKind: "provider", errorMessage: "rate limited", errorDetail: { provider: "anthropic", httpStatus: 429 } });
    const b = mapGatewayEvent("agent", { runId: "r2", stream: "lifecycle", data: { phase: "error", error: "rate limited" } });
    assert.equal(a[0]?.type, "error.occurred");
    assert.equal(a[0]?.id, b[0]?.id);
    assert.deepEqual(a[0]?.data.error, { kind: "provider", message: "rate limited", provider: "anthropic", httpStatus: 429 });
  });

  test("cron finished → cron.finished, deduped on (jobId, runId); an error run drops summary and diagnostics", () => {
    const ok = mapGatewayEvent("cron", { jobId: "daily", action: "finished", runId: "run-5", status: "ok", summary: "3 items", job: { id: "daily", agentId: "main" } });
    assert.deepEqual([ok[0]?.type, ok[0]?.id, ok[0]?.data.summary, ok[0]?.data.agentId], ["cron.finished", "cron_daily_run-5", "3 items", "main"]);
    const err = mapGatewayEvent("cron", {
      jobId: "daily",
      action: "finished",
      runAtMs: 1_700_000_000_000,
      status: "error",
      error: "timeout",
      summary: "secret-ish",
      diagnostics: { x: 1 },
      job: { id: "daily", state: { lastDiagnostics: "d", lastDiagnosticSummary: "s", lastRunAtMs: 1 } },
    });
    assert.equal(err[0]?.id, "cron_daily_1700000000000");
    assert.equal("summary" in err[0]!.data, false);
    assert.equal("diagnostics" in err[0]!.data, false);
    assert.deepEqual((err[0]!.data.job as { state: unknown }).state, { lastRunAtMs: 1 });
    assert.deepEqual(mapGatewayEvent("cron", { jobId: "daily", action: "started" }), []);
  });

  test("task upserted → task.updated, one id per (task, status, updatedAt)", () => {
    const [e] = mapGatewayEvent("task", { action: "upserted", task: { id: "t1", taskId: "t1", status: "running", updatedAt: 5, agentId: "main", sessionKey: "agent:main:main" } });
    assert.deepEqual([e?.type, e?.id, e?.data.agentId], ["task.updated", "task_t1_running_5", "main"]);
    assert.deepEqual(mapGatewayEvent("task", { action: "deleted", taskId: "t1" }), []);
  });

  test("sessions.changed created / deleted → session.created / session.ended; unknown families and odd payloads → nothing", () => {
    assert.equal(mapGatewayEvent("sessions.changed", { sessionKey: "agent:a:b", action: "created" })[0]?.type, "session.created");
    assert.equal(mapGatewayEvent("sessions.changed", { key: "agent:a:b", reason: "deleted" })[0]?.type, "session.ended");
    assert.deepEqual(mapGatewayEvent("presence", [{ host: "x" }]), []);
    assert.deepEqual(mapGatewayEvent("chat", null), []);
    assert.deepEqual(mapGatewayEvent("agent", "nonsense"), []);
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
