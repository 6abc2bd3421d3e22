import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createGatewayClient } from "../../src/gateway/client.js";
import { createLogger } from "../../src/log.js";
import { startReceiver } from "../support/receiver.js";
import { startRedis } from "../support/redis.js";
import { DIFF_SECRET, firstDifference, loadDifferentialFixture, routeOf, runSequence, SEQUENCE_NAMES, type Recorded } from "../support/differential.js";
import { post, startService, type TestService } from "../support/service.js";
import { HOOKS_TOKEN, startRealGateway, type RealGateway } from "./real-gateway.js";

/**
 * The service against the real OpenClaw Gateway 2026.9.6 with the bridge plugin loaded
 * (`npm run test:openclaw`). Routes come in pairs on the same session: the service's `/hooks/<x>`
 * and the bundled plugin's `/plugins/webhooks/<x>`. The differential sequences have a route each
 * (`diff-<name>`), on a session of their own per side.
 */
const S = { a: "agent:main:hook:a", b: "agent:main:hook:b" };
const SECRET = { a: "secret-route-a-0123456789", b: "secret-route-b-0123456789" };
const diffSession = (name: string, side: "builtin" | "service" | "embedded") => `agent:main:hook:${name}-${side}`;
const diffRoutes = (side: "builtin" | "service" | "embedded", prefix: string) =>
  Object.fromEntries(
    SEQUENCE_NAMES.map((n) => [routeOf(n), { path: `${prefix}/${routeOf(n)}`, sessionKey: diffSession(routeOf(n), side), secret: DIFF_SECRET }]),
  );

let gw: RealGateway;
let svc: TestService;
const events: { event: string; payload: any }[] = [];

before(async () => {
  gw = await startRealGateway({
    routes: {
      a: { path: "/plugins/webhooks/a", sessionKey: S.a, secret: SECRET.a },
      b: { path: "/plugins/webhooks/b", sessionKey: S.b, secret: SECRET.b },
      ...diffRoutes("builtin", "/plugins/webhooks"),
    },
  });
  svc = await startService({
    gateway: { url: gw.url, token: gw.token, callTimeoutMs: 2_000, reconnectBaseMs: 100, reconnectMaxMs: 500 },
    routes: {
      a: { path: "/hooks/a", sessionKey: S.a, secret: SECRET.a },
      b: { path: "/hooks/b", sessionKey: S.b, secret: SECRET.b },
      ...diffRoutes("service", "/hooks"),
    },
  });
  svc.deps.gateway!.onEvent((e) => events.push({ event: e.event, payload: e.payload }));
});
after(async () => {
  await svc?.close();
  await gw?.dispose();
});

const service = (route: "a" | "b", body: unknown) => post(`${svc.url}/hooks/${route}`, body, { secret: SECRET[route] });
const builtin = (route: "a" | "b", body: unknown) => post(`${gw.http}/plugins/webhooks/${route}`, body, { secret: SECRET[route] });

const OWNER_META = ["ownerKey", "requesterOrigin", "requesterSessionKey", "requesterAgentId", "executionOwner", "sessionKey"];
function assertNoOwnerMetadata(body: unknown) {
  const text = JSON.stringify(body);
  for (const k of OWNER_META) assert.ok(!text.includes(`"${k}"`), `leaks ${k}: ${text.slice(0, 300)}`);
  for (const s of Object.values(S)) assert.ok(!text.includes(s), `leaks session ${s}`);
}

describe("the 13 actions through the service, persisted by the real Gateway", () => {
  test("create, read, mutate, run_task, cancel: success and error paths", async () => {
    const created = await service("a", { action: "create_flow", goal: "Review inbound queue" });
    assert.equal(created.status, 200, created.text);
    const flow = created.json.result.flow;
    assert.equal(flow.controllerId, "webhooks/a");
    assertNoOwnerMetadata(created.json);

    // The built-in plugin on the same session sees the flow the service created, and the other way round.
    const seen = await builtin("a", { action: "get_flow", flowId: flow.flowId });
    assert.equal(seen.json.result.flow.flowId, flow.flowId);
    const other = await builtin("a", { action: "create_flow", goal: "made by the built-in plugin" });
    assert.equal((await service("a", { action: "get_flow", flowId: other.json.result.flow.flowId })).json.result.flow.goal, "made by the built-in plugin");

    const list = await service("a", { action: "list_flows" });
    assert.ok(list.json.result.flows.some((f: any) => f.flowId === flow.flowId));
    assert.equal((await service("a", { action: "find_latest_flow" })).status, 200);
    assert.equal((await service("a", { action: "resolve_flow", token: flow.flowId })).json.result.flow.flowId, flow.flowId);

    let r = await service("a", { action: "set_waiting", flowId: flow.flowId, expectedRevision: 0, waitJson: { on: "approval" } });
    assert.equal(r.json.result.flow.status, "waiting");
    r = await service("a", { action: "set_waiting", flowId: flow.flowId, expectedRevision: 0 });
    assert.equal(r.status, 409);
    assert.equal(r.json.code, "revision_conflict");
    assert.equal(r.json.result.current.revision, 1);
    r = await service("a", { action: "resume_flow", flowId: flow.flowId, expectedRevision: 1 });
    assert.equal(r.json.result.flow.status, "queued");
    assert.equal(r.json.result.flow.waitJson, null);

    const before = events.length;
    r = await service("a", { action: "run_task", flowId: flow.flowId, runtime: "acp", task: "Inspect the next batch" });
    assert.equal(r.status, 200, r.text);
    const taskId = r.json.result.task.taskId;
    assertNoOwnerMetadata(r.json);
    // The service receives the `task` event that run_task produced.
    for (let i = 0; i < 50 && !events.slice(before).some((e) => e.event === "task" && e.payload?.task?.taskId === taskId); i++) {
      await new Promise((res) => setTimeout(res, 50));
    }
    const ev = events.slice(before).find((e) => e.event === "task" && e.payload?.task?.taskId === taskId);
    assert.ok(ev, "task event received");
    assert.equal(ev.payload.action, "upserted");

    r = await service("a", { action: "get_task_summary", flowId: flow.flowId });
    assert.equal(r.json.result.summary.total, 1);
    r = await service("a", { action: "run_task", flowId: flow.flowId, runtime: "acp", task: "t", childSessionKey: "agent:main:acp:worker", runId: "nope" });
    assert.equal(r.status, 409);
    assert.equal(r.json.code, "task_not_created");
    r = await service("a", { action: "request_cancel", flowId: flow.flowId, expectedRevision: 2 });
    assert.equal(r.status, 200, r.text);
    r = await service("a", { action: "run_task", flowId: flow.flowId, runtime: "acp", task: "t" });
    assert.equal(r.status, 409);
    assert.equal(r.json.code, "cancel_requested");
    r = await service("a", { action: "cancel_flow", flowId: flow.flowId });
    assert.equal(r.status, 202);
    assert.equal(r.json.code, "cancel_pending");
    const rev = r.json.result.flow.revision;
    r = await service("a", { action: "finish_flow", flowId: flow.flowId, expectedRevision: rev });
    assert.equal(r.json.result.flow.status, "succeeded");
    r = await service("a", { action: "fail_flow", flowId: flow.flowId, expectedRevision: rev + 1 });
    assert.equal(r.json.result.flow.status, "failed", "no state machine in 2026.9.6");
    r = await service("a", { action: "cancel_flow", flowId: flow.flowId });
    assert.equal(r.status, 409);
    assert.equal(r.json.code, "terminal");
    for (const action of ["set_waiting", "resume_flow", "finish_flow", "fail_flow", "request_cancel"]) {
      r = await service("a", { action, flowId: "00000000-0000-4000-8000-000000000000", expectedRevision: 0 });
      assert.equal(r.status, 404, action);
      assert.equal(r.json.code, "not_found");
    }
  });

  test("isolation through the bridge: route B cannot see or change route A's flows", async () => {
    const f = (await service("a", { action: "create_flow", goal: "A only" })).json.result.flow;
    assert.equal((await service("b", { action: "get_flow", flowId: f.flowId })).json.result.flow, null);
    assert.ok(!(await service("b", { action: "list_flows" })).json.result.flows.some((x: any) => x.flowId === f.flowId));
    assert.equal((await service("b", { action: "finish_flow", flowId: f.flowId, expectedRevision: 0 })).status, 404);
    assert.equal((await service("b", { action: "cancel_flow", flowId: f.flowId })).status, 404);
    assert.equal((await service("a", { action: "get_flow", flowId: f.flowId })).json.result.flow.status, "queued");
  });
});

describe("the bridge plugin's own guards (called directly over the Gateway protocol)", () => {
  const client = (scopes: string[]) =>
    createGatewayClient({ url: gw.url, token: async () => gw.token, log: createLogger({ level: "silent" }), version: "test", scopes });

  test("params are validated: sessionKey required, unknown fields and bad values refused", async () => {
    const c = client(["operator.read", "operator.write"]);
    await c.start();
    try {
      const refused = (p: Promise<unknown>) => assert.rejects(p, /INVALID_REQUEST/);
      await refused(c.call("webhooksBridge.list_flows", {}));
      await refused(c.call("webhooksBridge.list_flows", { sessionKey: "  " }));
      await refused(c.call("webhooksBridge.get_flow", { sessionKey: S.a, flowId: "x", ownerKey: "agent:main:hook:b" }));
      await refused(c.call("webhooksBridge.set_waiting", { sessionKey: S.a, flowId: "x", expectedRevision: -1 }));
      await refused(c.call("webhooksBridge.run_task", { sessionKey: S.a, flowId: "x", runtime: "cli", task: "t" }));
      await refused(c.call("webhooksBridge.create_flow", { sessionKey: S.a, goal: "g" })); // controllerId is the caller's job
      const ok = (await c.call("webhooksBridge.list_flows", { sessionKey: S.a })) as { flows: unknown[] };
      assert.ok(Array.isArray(ok.flows));
      assertNoOwnerMetadata(ok);
    } finally {
      await c.close();
    }
  });

  test("create_flow and run_task with an idempotencyKey: a repeat (even concurrent) gets the first answer and creates nothing; other actions refuse the field", async () => {
    const c = client(["operator.read", "operator.write"]);
    await c.start();
    try {
      const key = `order-${Date.now()}`;
      const count = async () => ((await c.call("webhooksBridge.list_flows", { sessionKey: S.a })) as { flows: unknown[] }).flows.length;
      const before = await count();
      const params = { sessionKey: S.a, goal: "ship", controllerId: "c", idempotencyKey: key };
      const [x, y] = (await Promise.all([c.call("webhooksBridge.create_flow", params), c.call("webhooksBridge.create_flow", params)])) as {
        created: boolean;
        flow: { flowId: string };
      }[];
      const z = (await c.call("webhooksBridge.create_flow", params)) as { created: boolean; flow: { flowId: string } };
      assert.equal(x!.created, true);
      assert.equal(y!.flow.flowId, x!.flow.flowId);
      assert.equal(z.flow.flowId, x!.flow.flowId);
      assert.equal(await count(), before + 1, "one flow for three calls");
      const other = (await c.call("webhooksBridge.create_flow", { ...params, idempotencyKey: `${key}-b` })) as { flow: { flowId: string } };
      assert.notEqual(other.flow.flowId, x!.flow.flowId);
      assert.equal(await count(), before + 2);
      const task = { sessionKey: S.a, flowId: x!.flow.flowId, runtime: "subagent", task: "pack", idempotencyKey: `${key}-t` };
      const t1 = (await c.call("webhooksBridge.run_task", task)) as { created: boolean; task: { taskId: string } };
      const t2 = (await c.call("webhooksBridge.run_task", task)) as { created: boolean; task: { taskId: string } };
      assert.equal(t1.created, true);
      assert.equal(t2.task.taskId, t1.task.taskId, "the same task, not a second one");
      await assert.rejects(c.call("webhooksBridge.get_flow", { sessionKey: S.a, flowId: x!.flow.flowId, idempotencyKey: key }), /INVALID_REQUEST/);
    } finally {
      await c.close();
    }
  });

  test("scopes: reads need operator.read, mutations operator.write", async () => {
    const reader = client(["operator.read"]);
    await reader.start();
    try {
      const flows = (await reader.call("webhooksBridge.list_flows", { sessionKey: S.a })) as { flows: unknown[] };
      assert.ok(Array.isArray(flows.flows));
      await assert.rejects(reader.call("webhooksBridge.create_flow", { sessionKey: S.a, goal: "g", controllerId: "c" }), /FORBIDDEN/);
    } finally {
      await reader.close();
    }
  });
});

/**
 * The differential sequences (test/support/differential.ts) sent to the bundled plugin, to the
 * service through the bridge, and to the service on the embedded runtime (what `npm start` runs):
 * the same normalised statuses, codes and results on all three. The plugin's answers must also be
 * what test/fixtures/taskflow-differential.json recorded, which `npm test` holds the embedded runtime to.
 */
describe("differential check against the bundled plugin", () => {
  let embedded: TestService;
  const fromBuiltin = new Map<string, Recorded>();
  before(async () => {
    embedded = await startService({ routes: diffRoutes("embedded", "/hooks") });
    assert.equal(embedded.deps.config.gateway.mode, "embedded");
  });
  after(async () => {
    await embedded?.close();
  });
  const builtinAnswers = async (name: (typeof SEQUENCE_NAMES)[number]) => {
    let r = fromBuiltin.get(name);
    if (!r) {
      const route = routeOf(name);
      r = await runSequence(name, diffSession(route, "builtin"), (b) => post(`${gw.http}/plugins/webhooks/${route}`, b, { secret: DIFF_SECRET }));
      fromBuiltin.set(name, r);
    }
    return r;
  };

  for (const name of SEQUENCE_NAMES) {
    test(`${name}: the service through the bridge answers as the bundled plugin`, async () => {
      const expected = await builtinAnswers(name);
      if (name === "main") {
        // The sequence must exercise every outcome class, or the comparison proves little.
        assert.deepEqual([...new Set(expected.answers.map((x) => x.status))].sort(), [200, 202, 400, 404, 409]);
      }
      const route = routeOf(name);
      const got = await runSequence(name, diffSession(route, "service"), (b) => post(`${svc.url}/hooks/${route}`, b, { secret: DIFF_SECRET }));
      assert.deepEqual(got.answers, expected.answers, firstDifference(expected.answers, got.answers, got.requests));
    });

    test(`${name}: the embedded runtime answers as the bundled plugin`, async () => {
      const expected = await builtinAnswers(name);
      const route = routeOf(name);
      const got = await runSequence(name, diffSession(route, "embedded"), (b) => post(`${embedded.url}/hooks/${route}`, b, { secret: DIFF_SECRET }));
      assert.deepEqual(got.answers, expected.answers, firstDifference(expected.answers, got.answers, got.requests));
    });

    test(`${name}: the bundled plugin still answers as recorded for npm test`, async () => {
      const expected = await builtinAnswers(name);
      const recorded = loadDifferentialFixture().sequences[name];
      const stale = "test/fixtures/taskflow-differential.json is stale: run npm run record:differential";
      assert.ok(recorded, stale);
      assert.deepEqual(expected.requests, recorded.requests, stale);
      assert.deepEqual(expected.answers, recorded.answers, `${stale}\n${firstDifference(recorded.answers, expected.answers, expected.requests)}`);
    });
  }
});

describe("resilience", () => {
  test("Gateway stopped: 503 gateway_unavailable fast; restarted: the service reconnects by itself", async () => {
    const f = (await service("a", { action: "create_flow", goal: "survives a restart" })).json.result.flow;
    await gw.stop();
    for (let i = 0; i < 100 && svc.deps.gateway!.connected; i++) await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 5; i++) {
      const started = Date.now();
      const r = await service("a", { action: "get_flow", flowId: f.flowId });
      assert.equal(r.status, 503);
      assert.equal(r.json.code, "gateway_unavailable");
      assert.ok(Date.now() - started < 2_000, "no hang past the call timeout");
    }
    await gw.start();
    // Wait for the client to reconnect rather than polling the route (which would spend the
    // route's 120-a-minute budget while a slow machine restarts the Gateway).
    for (let i = 0; i < 600 && !svc.deps.gateway!.connected; i++) await new Promise((res) => setTimeout(res, 50));
    let r = await service("a", { action: "get_flow", flowId: f.flowId });
    for (let i = 0; i < 10 && r.status !== 200; i++) {
      await new Promise((res) => setTimeout(res, 200));
      r = await service("a", { action: "get_flow", flowId: f.flowId });
    }
    assert.equal(r.status, 200);
    assert.equal(r.json.result.flow.goal, "survives a restart", "the flow persisted in the Gateway's SQLite");
  });
});

describe("outgoing webhooks from the real Gateway's event stream", () => {
  test("run_task's task event becomes a task.updated webhook; the flow's own events follow its notifyPolicy", async () => {
    const redis = await startRedis();
    const whSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const rx = await startReceiver({ secret: whSecret });
    const egressSvc = await startService({
      redis: { url: redis.url, prefix: redis.prefix() },
      gateway: { url: gw.url, token: gw.token, callTimeoutMs: 2_000 },
      routes: { a: { path: "/hooks/a", sessionKey: S.a, secret: SECRET.a } },
      webhooks: { allowPrivateCidrs: ["127.0.0.0/8"], endpoints: [{ name: "ops", url: rx.url, secret: whSecret, events: ["task.updated", "flow.*"] }] },
    });
    await egressSvc.deps.egress!.startWorker();
    try {
      const call = (body: unknown) => post(`${egressSvc.url}/hooks/a`, body, { secret: SECRET.a });
      const created = await call({ action: "create_flow", goal: "real gateway events", notifyPolicy: "state_changes" });
      assert.equal(created.status, 200, created.text);
      const flow = created.json.result.flow;
      const r = await call({ action: "run_task", flowId: flow.flowId, runtime: "acp", task: "Inspect" });
      assert.equal(r.status, 200, r.text);
      const taskId = r.json.result.task.taskId;
      const got = () => rx.received.map((x) => JSON.parse(x.body));
      for (
        let i = 0;
        i < 100 && !(got().some((e) => e.type === "task.updated" && e.data.task.taskId === taskId) && got().some((e) => e.type === "flow.created"));
        i++
      ) {
        await new Promise((res) => setTimeout(res, 50));
      }
      const task = got().find((e) => e.type === "task.updated" && e.data.task.taskId === taskId);
      assert.ok(
        task,
        `task.updated delivered (got ${got()
          .map((e) => e.type)
          .join(", ")})`,
      );
      assert.equal(task.data.task.flowId, flow.flowId);
      assert.ok(got().some((e) => e.type === "flow.created" && e.data.flow.flowId === flow.flowId));
      assert.ok(
        rx.received.every((x) => x.verified),
        "every delivery verifies with standardwebhooks",
      );
    } finally {
      await egressSvc.close();
      await rx.close();
      await redis.dispose();
    }
  });
});

describe("inbound endpoints against the real Gateway", () => {
  test("a wake endpoint reaches the real Gateway (queued, then coalesced); an agent endpoint gets a run admitted", async () => {
    const token = "inbound-token-0123456789";
    const inboundSvc = await startService({
      gateway: { url: gw.url, token: gw.token, callTimeoutMs: 5_000, hooks: { token: HOOKS_TOKEN } },
      webhooks: {
        inbound: {
          endpoints: {
            deploy: { action: "wake", textTemplate: "{{body.repo}} deployed {{body.status}}", auth: { scheme: "token", secret: token } },
            alert: { agentId: "main", template: "Alert received: {{body.title}}", auth: { scheme: "token", secret: token } },
          },
        },
      },
    });
    try {
      // A fresh Gateway: the first wake is queued, the same text again coalesces.
      const body = { repo: "my-app", status: "succeeded" };
      const first = await post(`${inboundSvc.url}/webhooks/inbound/deploy`, body, { secret: token });
      assert.equal(first.status, 200, first.text);
      assert.deepEqual([first.json.ok, first.json.mode, first.json.eventOutcome], [true, "now", "queued"]);
      const second = await post(`${inboundSvc.url}/webhooks/inbound/deploy`, body, { secret: token });
      assert.deepEqual([second.status, second.json.eventOutcome], [200, "coalesced"]);
      const wrong = await post(`${inboundSvc.url}/webhooks/inbound/deploy`, body, { secret: "nope" });
      assert.equal(wrong.status, 401);
      // An agent endpoint: the real Gateway admits the run and its id comes back.
      const run = await post(`${inboundSvc.url}/webhooks/inbound/alert`, { title: "Disk full" }, { secret: token });
      assert.equal(run.status, 202, run.text);
      assert.match(run.json.runId, /^inbound:alert:/);
    } finally {
      await inboundSvc.close();
    }
  });
});
