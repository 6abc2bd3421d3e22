import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { createGatewayMapper, type MappedEvent } from "../src/egress/gateway-events.js";
import { startFakeGateway } from "./support/fake-gateway.js";
import { rewriteFixture } from "./support/gateway-fixtures.js";
import { startReceiver } from "./support/receiver.js";
import { until } from "./support/until.js";
import { startRedis, type TestRedis } from "./support/redis.js";
import { post, startService } from "./support/service.js";

const SECRET = `whsec_${randomBytes(24).toString("base64")}`;
const ADMIN = "admin-token-0123456789";
const GW_TOKEN = "gw-token-0123456789";
let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(() => redis.dispose());

const envelopes = (rx: { received: { body: string }[] }) => rx.received.map((r) => JSON.parse(r.body) as { id: string; type: string; data: any });

describe("events from the Gateway stream (recorded real frames, replayed)", () => {
  test("every Gateway-derived type arrives once, signed, with the mapped fields, even with two replicas subscribed", async () => {
    const gw = await startFakeGateway({ token: GW_TOKEN });
    const rx = await startReceiver({ secret: SECRET });
    const prefix = redis.prefix();
    const cfg = {
      redis: { url: redis.url, prefix },
      gateway: { url: gw.url, token: GW_TOKEN },
      webhooks: { allowPrivateCidrs: ["127.0.0.0/8"], endpoints: [{ name: "all", url: rx.url, secret: SECRET, events: ["*"] }] },
    };
    const a = await startService(cfg);
    const b = await startService(cfg);
    await a.deps.egress!.startWorker();
    await b.deps.egress!.startWorker();
    try {
      // The subscription is made on connect: session.* frames reach only subscribed sockets.
      await until(() => gw.subscribed() === 2);
      const scenarios = ["agent-text", "chat-send-text", "agent-tool", "sessions-lifecycle", "model-400", "model-500", "cron-command"];
      const expected = new Map<string, MappedEvent>();
      for (const name of scenarios) {
        const frames = rewriteFixture(name);
        const map = createGatewayMapper();
        for (const f of frames) for (const e of map(f.event, f.payload)) if (!expected.has(e.id)) expected.set(e.id, e);
        gw.replay(frames, 0);
      }
      await until(() => rx.received.length >= expected.size, 20_000);
      await new Promise((r) => setTimeout(r, 500)); // room for a duplicate to show up
      const got = envelopes(rx);
      assert.equal(got.length, expected.size, `one delivery per event (got ${got.map((e) => e.type).join(", ")})`);
      assert.ok(
        rx.received.every((r) => r.verified),
        "every delivery verifies with standardwebhooks",
      );
      const count = (type: string) => got.filter((e) => e.type === type).length;
      assert.deepEqual(
        Object.fromEntries(
          ["message.received", "message.sent", "session.created", "session.ended", "tool.called", "tool.completed", "error.occurred", "cron.finished"].map(
            (t) => [t, count(t)],
          ),
        ),
        {
          "message.received": 6,
          "message.sent": 4,
          "session.created": 6,
          "session.ended": 2,
          "tool.called": 1,
          "tool.completed": 1,
          "error.occurred": 2,
          "cron.finished": 2,
        },
      );
      assert.ok(count("task.updated") >= 6);
      for (const e of got) assert.deepEqual(e.data, expected.get(e.id)?.data, `${e.type} ${e.id} as mapped from the recorded frames`);
      const sent = got.find((e) => e.type === "message.sent")!;
      assert.equal(sent.data.model, "stub-1");
      assert.equal(typeof sent.data.usage.outputTokens, "number");
    } finally {
      await a.close();
      await b.close();
      await rx.close();
      await gw.stop();
    }
  });
});

describe("flow lifecycle events from the TaskFlow routes", () => {
  test("notifyPolicy: state_changes sends each transition, done_only only the end, silent nothing", async () => {
    const rx = await startReceiver({ secret: SECRET });
    const svc = await startService({
      redis: { url: redis.url, prefix: redis.prefix() },
      routes: { ci: { path: "/hooks/ci", sessionKey: "agent:main:ci", secret: "route-secret-0123456789" } },
      webhooks: { allowPrivateCidrs: ["127.0.0.0/8"], endpoints: [{ name: "flows", url: rx.url, secret: SECRET, events: ["flow.*"] }] },
    });
    await svc.deps.egress!.startWorker();
    const call = (body: unknown) => post(`${svc.url}/hooks/ci`, body, { secret: "route-secret-0123456789" });
    try {
      const loud = (await call({ action: "create_flow", goal: "deploy", notifyPolicy: "state_changes" })).json.result.flow;
      let rev = loud.revision;
      rev = (await call({ action: "set_waiting", flowId: loud.flowId, expectedRevision: rev, currentStep: "approval" })).json.result.flow.revision;
      rev = (await call({ action: "resume_flow", flowId: loud.flowId, expectedRevision: rev })).json.result.flow.revision;
      const conflict = await call({ action: "finish_flow", flowId: loud.flowId, expectedRevision: rev + 5 });
      assert.equal(conflict.status, 409);
      await call({ action: "finish_flow", flowId: loud.flowId, expectedRevision: rev });

      const quiet = (await call({ action: "create_flow", goal: "nightly" })).json.result.flow; // done_only by default
      const qrev = (await call({ action: "set_waiting", flowId: quiet.flowId, expectedRevision: quiet.revision })).json.result.flow.revision;
      await call({ action: "fail_flow", flowId: quiet.flowId, expectedRevision: qrev });

      const silent = (await call({ action: "create_flow", goal: "shh", notifyPolicy: "silent" })).json.result.flow;
      await call({ action: "finish_flow", flowId: silent.flowId, expectedRevision: silent.revision });

      await until(() => rx.received.length >= 5);
      await new Promise((r) => setTimeout(r, 400));
      const got = envelopes(rx);
      const of = (flowId: string) => got.filter((e) => e.data.flow.flowId === flowId).map((e) => e.type);
      assert.deepEqual(of(loud.flowId).sort(), ["flow.created", "flow.finished", "flow.resumed", "flow.waiting"]);
      assert.deepEqual(of(quiet.flowId), ["flow.failed"]);
      assert.deepEqual(of(silent.flowId), []);
      const finished = got.find((e) => e.type === "flow.finished")!;
      assert.equal(finished.data.routeId, "ci");
      assert.equal(finished.data.flow.status, "succeeded");
      assert.equal("ownerKey" in finished.data.flow, false, "views are scrubbed");
    } finally {
      await svc.close();
      await rx.close();
    }
  });
});

describe("admin API: delivery log and replay", () => {
  const start = async (rxUrl: string, extra: Record<string, unknown> = {}) => {
    const svc = await startService({
      redis: { url: redis.url, prefix: redis.prefix() },
      admin: { token: ADMIN },
      webhooks: {
        publishToken: "pub-token-0123456789",
        allowPrivateCidrs: ["127.0.0.0/8"],
        circuitBreaker: { failureThreshold: 100 },
        endpoints: [{ name: "crm", url: rxUrl, secret: SECRET, events: ["lead.*"], retry: { maxAttempts: 2, backoffMs: 100 }, ...extra }],
      },
    });
    await svc.deps.egress!.startWorker();
    const admin = async (method: string, path: string, body?: unknown, token = ADMIN) => {
      const res = await fetch(`${svc.url}/admin/api${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      return { status: res.status, json: (await res.json()) as any };
    };
    return { svc, admin };
  };

  test("the log is queryable by status, endpoint, event type and recency; a wrong token gets 401", async () => {
    const rx = await startReceiver({ secret: SECRET });
    const { svc, admin } = await start(rx.url);
    try {
      assert.equal((await admin("GET", "/deliveries", undefined, "wrong")).status, 401);
      const e = svc.deps.egress!;
      const a = await e.publish({ type: "lead.qualified", data: { n: 1 } });
      await until(async () => (await e.log.get(a.deliveries[0]!))?.status === "delivered");
      rx.next({ status: 500, body: "no" });
      rx.next({ status: 500, body: "still no" });
      const b = await e.publish({ type: "lead.lost", data: { n: 2 } });
      await until(async () => (await e.log.get(b.deliveries[0]!))?.status === "failed");
      await until(async () => (await e.log.get(a.deliveries[0]!))?.status === "delivered");
      const failed = await admin("GET", "/deliveries?status=failed&endpoint=crm");
      assert.deepEqual(
        failed.json.result.deliveries.map((d: any) => d.id),
        b.deliveries,
      );
      assert.equal(failed.json.result.deliveries[0].lastErrorClass, "http_status");
      const byType = await admin("GET", "/deliveries?eventType=lead.qualified");
      assert.deepEqual(
        byType.json.result.deliveries.map((d: any) => d.id),
        a.deliveries,
      );
      assert.equal((await admin("GET", "/deliveries?since=1h")).json.result.deliveries.length, 2);
      assert.equal((await admin("GET", `/deliveries?since=${Date.now() + 60_000}`)).json.result.deliveries.length, 0);
      assert.equal((await admin("GET", "/deliveries?status=lost")).status, 400);
      const one = await admin("GET", `/deliveries/${b.deliveries[0]}`);
      assert.deepEqual(
        one.json.result.delivery.attemptLog.map((x: any) => [x.attempt, x.trigger, x.status, x.responseBody]),
        [
          [1, "scheduled", 500, "no"],
          [2, "scheduled", 500, "still no"],
        ],
      );
      assert.equal((await admin("GET", "/deliveries/dlv_nope")).status, 404);
      const eps = await admin("GET", "/endpoints");
      assert.equal(eps.json.result.endpoints[0].name, "crm");
      assert.equal(JSON.stringify(eps.json).includes(SECRET), false, "no secret in the admin API");
      const q = await admin("GET", "/queue");
      assert.equal(typeof q.json.result.counts.failed, "number");
    } finally {
      await svc.close();
      await rx.close();
    }
  });

  test("replay: one manual attempt even when asked twice at once; bulk replay of failed since a time", async () => {
    const rx = await startReceiver({ secret: SECRET });
    rx.setFallback({ status: 503 });
    const { svc, admin } = await start(rx.url);
    try {
      const e = svc.deps.egress!;
      const out = await Promise.all([1, 2, 3].map((n) => e.publish({ type: "lead.qualified", data: { n } })));
      const ids = out.map((o) => o.deliveries[0]!);
      await until(async () => (await Promise.all(ids.map((id) => e.log.get(id)))).every((r) => r?.status === "failed"));
      // A replay that fails again (the receiver still answers 503) stays in the failed list.
      assert.equal((await admin("POST", `/deliveries/${ids[0]}/replay`)).status, 202);
      await until(async () => (await e.log.get(ids[0]!))?.attempts === 3);
      const before = rx.received.length;
      rx.setFallback({ status: 200 });
      const [r1, r2] = await Promise.all([admin("POST", `/deliveries/${ids[1]}/replay`), admin("POST", `/deliveries/${ids[1]}/replay`)]);
      assert.deepEqual([r1.status, r2.status].sort(), [202, 409]);
      assert.equal([r1, r2].find((r) => r.status === 409)!.json.code, "replay_pending");
      await until(async () => (await e.log.get(ids[1]!))?.status === "delivered");
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(rx.received.length - before, 1, "exactly one manual attempt");
      const rec = await e.log.get(ids[1]!);
      assert.deepEqual(rec!.attemptLog.at(-1)!.trigger, "manual");
      assert.equal(rec!.attemptLog.at(-1)!.attempt, 3);
      assert.equal(rx.received.at(-1)!.headers["webhook-id"], ids[1], "same webhook-id as the scheduled attempts");

      // Bulk: the two still failed (ids[0] failed its replay, ids[2] never replayed).
      const bulk = await admin("POST", "/deliveries/replay", { endpoint: "crm", since: "1h" });
      assert.equal(bulk.status, 202);
      assert.equal(bulk.json.result.started, 2);
      await until(async () => (await Promise.all(ids.map((id) => e.log.get(id)))).every((r) => r?.status === "delivered"));
      assert.equal((await admin("POST", `/deliveries/${ids[2]}/replay`)).status, 202, "a delivered one can be sent again on request");
      assert.equal((await admin("POST", "/deliveries/dlv_nope/replay")).status, 404);
    } finally {
      await svc.close();
      await rx.close();
    }
  });

  test("disable and enable through the API; replay refused while disabled", async () => {
    const rx = await startReceiver({ secret: SECRET });
    rx.setFallback({ status: 500 });
    const { svc, admin } = await start(rx.url);
    try {
      const e = svc.deps.egress!;
      const out = await e.publish({ type: "lead.qualified", data: {} });
      await until(async () => (await e.log.get(out.deliveries[0]!))?.status === "failed");
      assert.equal((await admin("POST", "/endpoints/crm/disable")).status, 200);
      const r = await admin("POST", `/deliveries/${out.deliveries[0]}/replay`);
      assert.deepEqual([r.status, r.json.code], [409, "endpoint_disabled"]);
      assert.deepEqual((await e.publish({ type: "lead.qualified", data: {} })).deliveries, [], "nothing queued for a disabled endpoint");
      assert.equal((await admin("GET", "/endpoints")).json.result.endpoints[0].enabled, false);
      assert.equal((await admin("POST", "/endpoints/crm/enable")).status, 200);
      assert.equal((await admin("POST", `/deliveries/${out.deliveries[0]}/replay`)).status, 202);
      assert.equal((await admin("POST", "/endpoints/nope/enable")).status, 404);
    } finally {
      await svc.close();
      await rx.close();
    }
  });

  test("no admin.token: the admin API answers 404", async () => {
    const svc = await startService({ redis: { url: redis.url, prefix: redis.prefix() } });
    try {
      const res = await fetch(`${svc.url}/admin/api/deliveries`, { headers: { authorization: `Bearer ${ADMIN}` } });
      assert.equal(res.status, 404);
    } finally {
      await svc.close();
    }
  });
});
