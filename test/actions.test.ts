import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startFakeGateway, type FakeGateway } from "./support/fake-gateway.js";
import { post, SECRET_A, SECRET_B, startService, twoRoutes, type TestService } from "./support/service.js";

const GW_TOKEN = "gw-test-token-0123456789abcdef";
/** Metadata that must never appear in any response (docs/openclaw-contract.md §1.5). */
const FORBIDDEN_KEYS = [
  "ownerKey",
  "requesterOrigin",
  "requesterSessionKey",
  "requesterAgentId",
  "executionOwner",
  "taskKind",
  "detail",
  "toolUseCount",
  "lastToolName",
  "sessionKey",
];

function assertScrubbed(body: unknown) {
  const text = JSON.stringify(body);
  for (const k of FORBIDDEN_KEYS) assert.ok(!text.includes(`"${k}"`), `response leaks ${k}: ${text}`);
  assert.ok(!text.includes("agent:main:hook:a") && !text.includes("agent:main:hook:b"), `response leaks a session key: ${text}`);
}

/** The same suite runs on both TaskFlowRuntime implementations. */
const runtimes: { name: string; setup: () => Promise<{ svc: TestService; gw?: FakeGateway }> }[] = [
  { name: "embedded runtime", setup: async () => ({ svc: await startService({ routes: twoRoutes() }) }) },
  {
    name: "Gateway client → fake Gateway (protocol v4)",
    setup: async () => {
      const gw = await startFakeGateway({ token: GW_TOKEN });
      const svc = await startService({ routes: twoRoutes(), gateway: { url: gw.url, token: GW_TOKEN } });
      return { svc, gw };
    },
  },
];

for (const rt of runtimes) {
  describe(`actions through the ${rt.name}`, () => {
    let svc: TestService;
    let gw: FakeGateway | undefined;
    let A: (body: unknown) => ReturnType<typeof post>;
    let B: (body: unknown) => ReturnType<typeof post>;
    before(async () => {
      ({ svc, gw } = await rt.setup());
      A = async (body) => {
        const r = await post(`${svc.url}/hooks/a`, body, { secret: SECRET_A });
        assertScrubbed(r.json);
        return r;
      };
      B = (body) => post(`${svc.url}/hooks/b`, body, { secret: SECRET_B });
    });
    after(async () => {
      await svc.close();
      await gw?.stop();
    });

    const newFlow = async (extra: Record<string, unknown> = {}) => {
      const r = await A({ action: "create_flow", goal: "Review inbound queue", ...extra });
      assert.equal(r.status, 200, r.text);
      return r.json.result.flow;
    };

    test("create_flow: defaults, route controller, envelope", async () => {
      const r = await A({ action: "create_flow", goal: "Review inbound queue", currentStep: null });
      assert.equal(r.status, 200);
      assert.deepEqual(Object.keys(r.json), ["ok", "routeId", "result"]);
      assert.equal(r.headers.get("content-type"), "application/json; charset=utf-8");
      assert.equal(r.json.ok, true);
      assert.equal(r.json.routeId, "a");
      const f = r.json.result.flow;
      assert.equal(r.json.result.created, true);
      assert.equal(f.syncMode, "managed");
      assert.equal(f.controllerId, "webhooks/a");
      assert.equal(f.revision, 0);
      assert.equal(f.status, "queued");
      assert.equal(f.notifyPolicy, "done_only");
      assert.ok(!("currentStep" in f));
      const custom = await newFlow({ controllerId: "ci/x", status: "running", notifyPolicy: "silent", stateJson: { n: 1 }, waitJson: null });
      assert.equal(custom.controllerId, "ci/x");
      assert.equal(custom.status, "running");
      assert.deepEqual(custom.stateJson, { n: 1 });
      assert.equal(custom.waitJson, null);
    });

    test("reads: get_flow, list_flows, find_latest_flow, resolve_flow, get_task_summary", async () => {
      const f1 = await newFlow({ goal: "one" });
      await new Promise((r) => setTimeout(r, 5));
      const f2 = await newFlow({ goal: "two" });
      assert.deepEqual((await A({ action: "get_flow", flowId: f1.flowId })).json.result.flow, f1);
      const missing = await A({ action: "get_flow", flowId: "nope" });
      assert.equal(missing.status, 200);
      assert.equal(missing.json.result.flow, null);
      const list = (await A({ action: "list_flows" })).json.result.flows;
      assert.ok(list.findIndex((f: any) => f.flowId === f2.flowId) < list.findIndex((f: any) => f.flowId === f1.flowId), "newest first");
      assert.equal((await A({ action: "find_latest_flow" })).json.result.flow.flowId, f2.flowId);
      assert.equal((await A({ action: "resolve_flow", token: f1.flowId })).json.result.flow.flowId, f1.flowId);
      // The route's own session key resolves to its newest non-terminal flow.
      await A({ action: "finish_flow", flowId: f2.flowId, expectedRevision: 0 });
      const bySession = await post(`${svc.url}/hooks/a`, { action: "resolve_flow", token: "agent:main:hook:a" }, { secret: SECRET_A });
      assert.notEqual(bySession.json.result.flow.flowId, f2.flowId);
      assert.notEqual(bySession.json.result.flow.status, "succeeded");
      const summary = (await A({ action: "get_task_summary", flowId: f1.flowId })).json.result.summary;
      assert.deepEqual(
        { total: summary.total, active: summary.active, terminal: summary.terminal, failures: summary.failures },
        { total: 0, active: 0, terminal: 0, failures: 0 },
      );
      assert.equal((await A({ action: "get_task_summary", flowId: "nope" })).json.result.summary, null);
    });

    test("mutations: set_waiting → blocked → resume → finish → fail → resume (no state machine)", async () => {
      const f = await newFlow();
      let r = await A({ action: "set_waiting", flowId: f.flowId, expectedRevision: 0, currentStep: "await", waitJson: { kind: "approval" } });
      assert.equal(r.status, 200);
      assert.equal(r.json.result.applied, true);
      assert.equal(r.json.result.flow.status, "waiting");
      assert.equal(r.json.result.flow.revision, 1);
      assert.deepEqual(r.json.result.flow.waitJson, { kind: "approval" });
      r = await A({ action: "set_waiting", flowId: f.flowId, expectedRevision: 1, blockedSummary: "needs a human" });
      assert.equal(r.json.result.flow.status, "blocked");
      assert.equal(r.json.result.flow.blockedSummary, "needs a human");
      r = await A({ action: "resume_flow", flowId: f.flowId, expectedRevision: 2, status: "running" });
      assert.equal(r.json.result.flow.status, "running");
      assert.equal(r.json.result.flow.waitJson, null);
      assert.ok(!("blockedSummary" in r.json.result.flow));
      r = await A({ action: "finish_flow", flowId: f.flowId, expectedRevision: 3, stateJson: { done: true } });
      assert.equal(r.json.result.flow.status, "succeeded");
      assert.equal(typeof r.json.result.flow.endedAt, "number");
      r = await A({ action: "fail_flow", flowId: f.flowId, expectedRevision: 4, blockedSummary: "late failure" });
      assert.equal(r.status, 200);
      assert.equal(r.json.result.flow.status, "failed");
      r = await A({ action: "resume_flow", flowId: f.flowId, expectedRevision: 5 });
      assert.equal(r.json.result.flow.status, "queued");
      assert.ok(!("endedAt" in r.json.result.flow), "resume clears endedAt");
      r = await A({ action: "request_cancel", flowId: f.flowId, expectedRevision: 6 });
      assert.equal(typeof r.json.result.flow.cancelRequestedAt, "number");
    });

    test("revision_conflict: 409 with result.current", async () => {
      const f = await newFlow();
      const r = await A({ action: "finish_flow", flowId: f.flowId, expectedRevision: 7 });
      assert.equal(r.status, 409);
      assert.equal(r.json.ok, false);
      assert.equal(r.json.code, "revision_conflict");
      assert.equal(r.json.error, "TaskFlow changed since the caller's expected revision.");
      assert.equal(r.json.result.applied, false);
      assert.equal(r.json.result.code, "revision_conflict");
      assert.equal(r.json.result.current.revision, 0);
      assert.equal(r.json.result.current.flowId, f.flowId);
    });

    test("every flow action on a missing flow → 404 not_found with its result shape", async () => {
      const cases: [Record<string, unknown>, unknown][] = [
        [
          { action: "set_waiting", expectedRevision: 0 },
          { applied: false, code: "not_found" },
        ],
        [
          { action: "resume_flow", expectedRevision: 0 },
          { applied: false, code: "not_found" },
        ],
        [
          { action: "finish_flow", expectedRevision: 0 },
          { applied: false, code: "not_found" },
        ],
        [
          { action: "fail_flow", expectedRevision: 0 },
          { applied: false, code: "not_found" },
        ],
        [
          { action: "request_cancel", expectedRevision: 0 },
          { applied: false, code: "not_found" },
        ],
        [{ action: "cancel_flow" }, { found: false, cancelled: false, reason: "Flow not found." }],
        [
          { action: "run_task", runtime: "acp", task: "t" },
          { found: false, created: false, reason: "Flow not found." },
        ],
      ];
      for (const [body, result] of cases) {
        const r = await A({ ...body, flowId: "missing-flow" });
        assert.equal(r.status, 404, String(body.action));
        assert.deepEqual(r.json, { ok: false, routeId: "a", code: "not_found", error: "TaskFlow not found.", result });
      }
    });

    test("run_task: creates a scrubbed task, reuses a runId, refuses terminal and cancel-requested flows", async () => {
      const f = await newFlow();
      let r = await A({ action: "run_task", flowId: f.flowId, runtime: "acp", task: "Inspect the next batch", runId: "run-1" });
      assert.equal(r.status, 200);
      const task = r.json.result.task;
      assert.equal(task.parentFlowId, f.flowId);
      assert.equal(task.runtime, "acp");
      assert.equal(task.status, "queued");
      assert.equal(task.deliveryStatus, "pending");
      assert.ok(!("childSessionKey" in task));
      r = await A({ action: "run_task", flowId: f.flowId, runtime: "acp", task: "again", runId: "run-1" });
      assert.equal(r.json.result.task.taskId, task.taskId, "same runId, same task");
      r = await A({ action: "run_task", flowId: f.flowId, runtime: "subagent", task: "live", status: "running", startedAt: 1000, progressSummary: "half" });
      assert.equal(r.json.result.task.status, "running");
      assert.equal(r.json.result.task.createdAt, 1000, "createdAt lowered to startedAt");
      const summary = (await A({ action: "get_task_summary", flowId: f.flowId })).json.result.summary;
      assert.equal(summary.total, 2);
      assert.equal(summary.active, 2);
      assert.equal(summary.byRuntime.acp, 1);
      r = await A({ action: "run_task", flowId: f.flowId, runtime: "acp", task: "t", childSessionKey: "agent:main:acp:worker" });
      assert.equal(r.status, 409);
      assert.equal(r.json.code, "task_not_created");
      assert.equal(r.json.error, "Task backing ownership could not be verified.");
      await A({ action: "request_cancel", flowId: f.flowId, expectedRevision: 0 });
      r = await A({ action: "run_task", flowId: f.flowId, runtime: "acp", task: "t" });
      assert.equal(r.status, 409);
      assert.equal(r.json.code, "cancel_requested");
      const done = await newFlow();
      await A({ action: "finish_flow", flowId: done.flowId, expectedRevision: 0 });
      r = await A({ action: "run_task", flowId: done.flowId, runtime: "acp", task: "t" });
      assert.equal(r.status, 409);
      assert.equal(r.json.code, "terminal");
      assert.equal(r.json.error, "Flow is already succeeded.");
    });

    test("cancel_flow: cancels an idle flow; 202 cancel_pending with active children; 409 terminal after", async () => {
      const idle = await newFlow();
      let r = await A({ action: "cancel_flow", flowId: idle.flowId });
      assert.equal(r.status, 200);
      assert.equal(r.json.result.cancelled, true);
      assert.equal(r.json.result.flow.status, "cancelled");
      r = await A({ action: "cancel_flow", flowId: idle.flowId });
      assert.equal(r.status, 409);
      assert.equal(r.json.code, "terminal");
      assert.equal(r.json.error, "Flow is already cancelled.");
      const busy = await newFlow();
      await A({ action: "run_task", flowId: busy.flowId, runtime: "subagent", task: "work" });
      r = await A({ action: "cancel_flow", flowId: busy.flowId });
      assert.equal(r.status, 202);
      assert.equal(r.json.ok, true);
      assert.equal(r.json.code, "cancel_pending");
      assert.ok(!("error" in r.json));
      assert.equal(r.json.result.reason, "One or more child tasks are still active.");
      assert.equal(r.json.result.tasks.length, 1);
      assert.equal(typeof r.json.result.flow.cancelRequestedAt, "number");
    });

    test("isolation: route B cannot see or change route A's flows", async () => {
      const f = await newFlow({ goal: "A's secret plan" });
      assert.equal((await B({ action: "get_flow", flowId: f.flowId })).json.result.flow, null);
      assert.ok(!(await B({ action: "list_flows" })).json.result.flows.some((x: any) => x.flowId === f.flowId));
      assert.equal((await B({ action: "resolve_flow", token: f.flowId })).json.result.flow, null);
      assert.equal((await B({ action: "resolve_flow", token: "agent:main:hook:a" })).json.result.flow, null);
      assert.equal((await B({ action: "finish_flow", flowId: f.flowId, expectedRevision: 0 })).status, 404);
      assert.equal((await B({ action: "cancel_flow", flowId: f.flowId })).status, 404);
      assert.equal((await B({ action: "run_task", flowId: f.flowId, runtime: "acp", task: "t" })).status, 404);
      const still = (await A({ action: "get_flow", flowId: f.flowId })).json.result.flow;
      assert.equal(still.revision, 0);
      assert.equal(still.status, "queued");
    });
  });
}

describe("HTTP mapping of runtime outcomes (scripted Gateway answers)", () => {
  let svc: TestService;
  let gw: FakeGateway;
  before(async () => {
    gw = await startFakeGateway({ token: GW_TOKEN });
    svc = await startService({ routes: twoRoutes(), gateway: { url: gw.url, token: GW_TOKEN } });
  });
  after(async () => {
    await svc.close();
    await gw.stop();
  });
  const flow = {
    flowId: "f1",
    syncMode: "managed",
    revision: 3,
    status: "running",
    notifyPolicy: "done_only",
    goal: "g",
    createdAt: 1,
    updatedAt: 2,
    ownerKey: "agent:main:hook:a",
    requesterOrigin: { channel: "x" },
  };
  const rows: [string, Record<string, unknown>, unknown, number, string | undefined][] = [
    ["create_flow", { goal: "g" }, { created: false, code: "persist_failed" }, 503, "persist_failed"],
    ["create_flow", { goal: "g" }, { created: false, code: "weird" }, 409, "create_rejected"],
    ["set_waiting", { flowId: "f1", expectedRevision: 0 }, { applied: false, code: "not_managed", current: flow }, 409, "not_managed"],
    ["finish_flow", { flowId: "f1", expectedRevision: 0 }, { applied: false, code: "persist_failed" }, 503, "persist_failed"],
    ["fail_flow", { flowId: "f1", expectedRevision: 0 }, { applied: false, code: "something_else" }, 409, "mutation_rejected"],
    [
      "run_task",
      { flowId: "f1", runtime: "acp", task: "t" },
      { found: true, created: false, reason: "Flow does not accept managed child tasks." },
      409,
      "not_managed",
    ],
    ["run_task", { flowId: "f1", runtime: "acp", task: "t" }, { found: true, created: false, reason: "Task persistence failed." }, 503, "persist_failed"],
    ["run_task", { flowId: "f1", runtime: "acp", task: "t" }, { found: true, created: false, reason: "Flow is already lost." }, 409, "terminal"],
    ["run_task", { flowId: "f1", runtime: "acp", task: "t" }, { found: true, created: false, reason: "toString" }, 409, "task_not_created"],
    ["run_task", { flowId: "f1", runtime: "acp", task: "t" }, { found: true, created: false, reason: "" }, 409, "task_not_created"],
    ["cancel_flow", { flowId: "f1" }, { found: true, cancelled: false, reason: "Flow changed while cancellation was in progress." }, 409, "revision_conflict"],
    ["cancel_flow", { flowId: "f1" }, { found: true, cancelled: false, reason: "Flow persistence failed." }, 503, "persist_failed"],
    [
      "cancel_flow",
      { flowId: "f1" },
      { found: true, cancelled: false, reason: "Child task ownership could not be verified; no cancellation was performed." },
      409,
      "cancel_rejected",
    ],
    ["get_flow", { flowId: "f1" }, { flow }, 200, undefined],
  ];
  for (const [action, body, payload, status, code] of rows) {
    test(`${action} answered ${JSON.stringify(payload).slice(0, 70)} → ${status} ${code ?? ""}`, async () => {
      gw.script(action, { payload });
      const r = await post(`${svc.url}/hooks/a`, { action, ...body }, { secret: SECRET_A });
      assert.equal(r.status, status, r.text);
      assert.equal(r.json.code, code);
      assert.equal(r.json.ok, status < 400);
      if (status >= 400) assert.equal(typeof r.json.error, "string");
      assertScrubbed(r.json);
    });
  }

  test("the bridge receives the route's session and default controller, never the client's", async () => {
    const before = gw.frames.length;
    await post(`${svc.url}/hooks/b`, { action: "create_flow", goal: "g" }, { secret: SECRET_B });
    const frame = gw.frames.slice(before).find((f) => f.method === "webhooksBridge.create_flow");
    assert.deepEqual(frame?.params, { goal: "g", sessionKey: "agent:main:hook:b", controllerId: "webhooks/b" });
    const injected = await post(`${svc.url}/hooks/b`, { action: "list_flows", sessionKey: "agent:main:hook:a" }, { secret: SECRET_B });
    assert.equal(injected.status, 400, "sessionKey is not an accepted field");
  });

  test("a malformed Gateway answer → 502 gateway_error, not a crash", async () => {
    gw.script("list_flows", { payload: { flows: "not-a-list" } });
    const r = await post(`${svc.url}/hooks/a`, { action: "list_flows" }, { secret: SECRET_A });
    assert.equal(r.status, 502);
    assert.equal(r.json.code, "gateway_error");
  });
});

describe("embedded runtime memory bound", () => {
  test("past maxFlows the oldest flows are dropped, newer ones stay", async () => {
    const { createEmbeddedRuntime } = await import("../src/taskflow/embedded.js");
    const rt = createEmbeddedRuntime({ maxFlows: 3 });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const out = await rt.invoke("create_flow", { sessionKey: "s", goal: `g${i}`, controllerId: "c" });
      assert.ok(out.created);
      ids.push(out.flow.flowId);
    }
    assert.equal((await rt.invoke("get_flow", { sessionKey: "s", flowId: ids[0]! })).flow, null);
    assert.equal((await rt.invoke("list_flows", { sessionKey: "s" })).flows.length, 3);
  });
});

describe("embedded runtime task events", () => {
  test("a task event for a new task and for a reuse that changed it, none for a reuse that changed nothing (as the Gateway, checked live)", async () => {
    const { createEmbeddedRuntime } = await import("../src/taskflow/embedded.js");
    const events: { taskId: unknown; label: unknown }[] = [];
    const rt = createEmbeddedRuntime({ onEvent: (e) => events.push({ taskId: e.payload.task.taskId, label: e.payload.task.label }) });
    const flow = await rt.invoke("create_flow", { sessionKey: "agent:main:s", goal: "g", controllerId: "c" });
    assert.ok(flow.created);
    const run = (extra: Record<string, unknown>) =>
      rt.invoke("run_task", { sessionKey: "agent:main:s", flowId: flow.flow.flowId, runtime: "acp", runId: "a", task: "one", ...extra });
    const first = await run({});
    assert.ok(first.created);
    assert.equal(events.length, 1);
    await run({});
    assert.equal(events.length, 1, "an unchanged reuse publishes nothing");
    const relabelled = await run({ task: "two", label: "L" });
    assert.ok(relabelled.created);
    assert.equal(relabelled.task.taskId, first.task.taskId);
    assert.deepEqual(events[1], { taskId: first.task.taskId, label: "L" });
  });
});
