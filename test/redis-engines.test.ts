import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, test, type TestContext } from "node:test";
import { Cluster, Redis } from "ioredis";
import type { ConfigInput } from "../src/config/schema.js";
import { createGatewayMapper } from "../src/egress/gateway-events.js";
import { startFakeGateway } from "./support/fake-gateway.js";
import { rewriteFixture } from "./support/gateway-fixtures.js";
import { startReceiver } from "./support/receiver.js";
import { startRedis } from "./support/redis.js";
import { startRedisCluster } from "./support/redis-cluster.js";
import { startRedisSentinel } from "./support/redis-sentinel.js";
import { awaitFreshWindow, post, SECRET_A, startService, twoRoutes, type TestService } from "./support/service.js";
import { until } from "./support/until.js";

/**
 * Issue #19: the core behaviours through the real service on each Redis engine (one server, a
 * Cluster of three masters with replicas, a primary behind Sentinel). Each scenario is one function
 * taking the engine, so the three engines run the same assertions.
 */
const SECRET = `whsec_${randomBytes(24).toString("base64")}`;
const ADMIN = "admin-token-0123456789";
const PUBLISH = "publish-token-0123456789";
const GW_TOKEN = "gw-token-0123456789";

type RedisInput = NonNullable<ConfigInput["redis"]>;

type Engine = {
  /** The engine's `redis` config with a fresh prefix, so scenarios never see each other's keys. */
  redis: (extra?: { shards?: number }) => RedisInput & { prefix: string };
  /** Test-owned connections to every primary (three on the Cluster, one otherwise). */
  primaries: () => Redis[];
  dispose: () => Promise<void>;
};

const freshPrefix = () => `test-${randomUUID()}:`;

async function singleEngine(): Promise<Engine> {
  const redis = await startRedis();
  const primary = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  return {
    redis: (extra = {}) => ({ url: redis.url, prefix: freshPrefix(), ...extra }),
    primaries: () => [primary],
    dispose: async () => {
      primary.disconnect();
      await redis.dispose();
    },
  };
}

async function clusterEngine(): Promise<Engine> {
  const cluster = await startRedisCluster();
  const client = new Cluster(cluster.startupNodes, { lazyConnect: true, redisOptions: { maxRetriesPerRequest: 1 } });
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (err) {
    await cluster.dispose();
    throw err;
  }
  return {
    redis: (extra = {}) => ({ cluster: { nodes: cluster.urls }, prefix: freshPrefix(), ...extra }),
    primaries: () => client.nodes("master"),
    dispose: async () => {
      client.disconnect();
      await cluster.dispose();
    },
  };
}

async function sentinelEngine(): Promise<Engine> {
  const sentinel = await startRedisSentinel();
  const primary = new Redis({ sentinels: sentinel.sentinelAddrs, name: sentinel.name, maxRetriesPerRequest: 1 });
  primary.on("error", () => {});
  return {
    redis: (extra = {}) => ({ sentinel: { sentinels: sentinel.sentinels, name: sentinel.name }, prefix: freshPrefix(), ...extra }),
    primaries: () => [primary],
    dispose: async () => {
      primary.disconnect();
      await sentinel.dispose();
    },
  };
}

/** An egress-enabled service on the engine: admin API, publish token, loopback endpoints, a running worker. */
async function egressService(redis: RedisInput, endpoints: Record<string, unknown>[], extra: Partial<ConfigInput> = {}): Promise<TestService> {
  const svc = await startService({
    redis,
    admin: { token: ADMIN },
    webhooks: {
      publishToken: PUBLISH,
      allowPrivateCidrs: ["127.0.0.0/8"],
      circuitBreaker: { failureThreshold: 100 },
      endpoints: endpoints.map((e) => ({ secret: SECRET, retry: { maxAttempts: 3, backoffMs: 100 }, ...e })) as never,
    },
    ...extra,
  });
  try {
    await svc.deps.egress!.startWorker();
  } catch (err) {
    await svc.close();
    throw err;
  }
  return svc;
}

async function admin(svc: TestService, method: string, path: string) {
  const res = await fetch(`${svc.url}/admin/api${path}`, { method, headers: { authorization: `Bearer ${ADMIN}` } });
  return { status: res.status, json: (await res.json()) as any };
}

const publish = (svc: TestService, event: { type: string; data: unknown; id?: string }) => post(`${svc.url}/v1/events`, event, { secret: PUBLISH });

async function deliveryOf(svc: TestService, id: string) {
  const r = await admin(svc, "GET", `/deliveries/${id}`);
  return r.status === 200 ? r.json.result.delivery : undefined;
}

// ─── Scenarios: each takes the engine, and asserts the same things whatever it is. ───

async function limitsAcrossReplicas(engine: Engine) {
  const redis = engine.redis();
  // The wrong-secret lockout is set out of the way: the requests below count admissions with a wrong secret.
  const limits = { authFailures: { max: 1_000, windowMs: 60_000 } };
  const one = await startService({ routes: twoRoutes(), redis, limits });
  const two = await startService({ routes: twoRoutes(), redis, limits }).catch(async (err) => {
    await one.close();
    throw err;
  });
  try {
    // 152 requests alternating instances, 8 at a time (the in-flight limit); the limiter counts
    // before auth, so a 401 means "admitted by the limiter".
    await awaitFreshWindow();
    const statuses: string[] = [];
    for (let i = 0; i < 152; i += 8) {
      const batch = Array.from({ length: 8 }, (_, j) =>
        post(`${(i + j) % 2 ? one.url : two.url}/hooks/a`, { action: "list_flows" }, { secret: "wrong" }).then((r) => `${r.status} ${r.json?.code}`),
      );
      statuses.push(...(await Promise.all(batch)));
    }
    const tally: Record<string, number> = {};
    for (const s of statuses) tally[s] = (tally[s] ?? 0) + 1;
    assert.deepEqual(tally, { "401 unauthorized": 120, "429 rate_limited": 32 });
  } finally {
    await one.close();
    await two.close();
  }
}

const LANE_ENDPOINTS = ["crm", "billing", "audit", "ops"];

async function publishToSignedDelivery(engine: Engine, t: TestContext) {
  const redis = engine.redis({ shards: 3 });
  const receivers = await Promise.all(LANE_ENDPOINTS.map(() => startReceiver({ secret: SECRET })));
  const svc = await egressService(
    redis,
    LANE_ENDPOINTS.map((name, i) => ({ name, url: receivers[i]!.url, events: ["lead.*"] })),
  );
  try {
    const r = await publish(svc, { type: "lead.qualified", data: { score: 91 }, id: "lead-7" });
    assert.equal(r.status, 202, r.text);
    assert.deepEqual(r.json, { ok: true, id: "lead-7", duplicate: false, deliveries: LANE_ENDPOINTS.length });
    await until(() => receivers.every((rx) => rx.received.length >= 1), 15_000);
    for (const [i, rx] of receivers.entries()) {
      assert.equal(rx.received.length, 1, `${LANE_ENDPOINTS[i]}: one delivery`);
      const got = rx.received[0]!;
      assert.equal(got.verified, true, `${LANE_ENDPOINTS[i]}: ${got.verifyError}`);
      const envelope = JSON.parse(got.body);
      assert.deepEqual([envelope.id, envelope.type, envelope.data], ["lead-7", "lead.qualified", { score: 91 }]);
      await until(async () => (await deliveryOf(svc, String(got.headers["webhook-id"])))?.status === "delivered");
    }

    // Where each endpoint's lane is: its BullMQ keys, on whichever primary holds them.
    const serverOf = new Map<string, Set<number>>();
    for (const [n, primary] of engine.primaries().entries()) {
      let cursor = "0";
      do {
        const [next, keys] = await primary.scan(cursor, "MATCH", `${redis.prefix}bull:*`, "COUNT", 1_000);
        cursor = next;
        for (const key of keys) {
          const endpoint = /:deliveries\.([^:]+):/.exec(key)?.[1];
          if (endpoint) serverOf.set(endpoint, (serverOf.get(endpoint) ?? new Set()).add(n));
        }
      } while (cursor !== "0");
    }
    assert.deepEqual([...serverOf.keys()].sort(), [...LANE_ENDPOINTS].sort(), "every endpoint has a lane");
    for (const [endpoint, servers] of serverOf) assert.equal(servers.size, 1, `${endpoint}'s lane is on one server (one hash tag)`);
    const used = new Set([...serverOf.values()].flatMap((s) => [...s]));
    t.diagnostic(`lanes by primary: ${JSON.stringify(Object.fromEntries([...serverOf].map(([e, s]) => [e, [...s][0]])))}`);
    // On a Cluster, redis.shards: 3 spreads the lanes over more than one master.
    assert.ok(used.size >= Math.min(2, engine.primaries().length), `lanes on ${used.size} of ${engine.primaries().length} primaries`);
  } finally {
    await svc.close();
    await Promise.all(receivers.map((rx) => rx.close()));
  }
}

async function retryAfter500(engine: Engine) {
  const rx = await startReceiver({ secret: SECRET });
  rx.next({ status: 500, body: "not yet" });
  const svc = await egressService(engine.redis(), [{ name: "crm", url: rx.url, events: ["lead.*"] }]);
  try {
    assert.equal((await publish(svc, { type: "lead.lost", data: { n: 1 } })).status, 202);
    await until(() => rx.received.length >= 2, 15_000);
    const ids = rx.received.map((r) => r.headers["webhook-id"]);
    assert.equal(ids[0], ids[1], "the retry carries the same webhook-id");
    assert.ok(
      rx.received.every((r) => r.verified),
      "both attempts verify",
    );
    const id = String(ids[0]);
    await until(async () => (await deliveryOf(svc, id))?.status === "delivered");
    const rec = await deliveryOf(svc, id);
    assert.equal(rec.attempts, 2);
    assert.deepEqual(
      rec.attemptLog.map((a: any) => [a.attempt, a.status]),
      [
        [1, 500],
        [2, 200],
      ],
    );
    await new Promise((r) => setTimeout(r, 300)); // room for a third delivery to show up
    assert.equal(rx.received.length, 2);
  } finally {
    await svc.close();
    await rx.close();
  }
}

async function replayDelivered(engine: Engine) {
  const rx = await startReceiver({ secret: SECRET });
  const svc = await egressService(engine.redis(), [{ name: "crm", url: rx.url, events: ["lead.*"] }]);
  try {
    assert.equal((await publish(svc, { type: "lead.qualified", data: { n: 2 } })).status, 202);
    await until(() => rx.received.length === 1, 15_000);
    const id = String(rx.received[0]!.headers["webhook-id"]);
    await until(async () => (await deliveryOf(svc, id))?.status === "delivered");
    const replay = await admin(svc, "POST", `/deliveries/${id}/replay`);
    assert.equal(replay.status, 202, JSON.stringify(replay.json));
    await until(async () => (await deliveryOf(svc, id))?.attempts === 2, 15_000);
    assert.equal(rx.received.length, 2);
    assert.equal(rx.received[1]!.headers["webhook-id"], id, "the replay has the same webhook-id");
    assert.equal(rx.received[1]!.verified, true, rx.received[1]!.verifyError);
    assert.equal(rx.received[1]!.body, rx.received[0]!.body, "the same event");
    const rec = await deliveryOf(svc, id);
    assert.equal(rec.status, "delivered");
    assert.deepEqual(
      rec.attemptLog.map((a: any) => [a.attempt, a.trigger, a.status]),
      [
        [1, "scheduled", 200],
        [2, "manual", 200],
      ],
    );
  } finally {
    await svc.close();
    await rx.close();
  }
}

async function idempotentTaskFlow(engine: Engine) {
  const gw = await startFakeGateway({ token: GW_TOKEN });
  const svc = await startService({ redis: engine.redis(), gateway: { url: gw.url, token: GW_TOKEN }, routes: twoRoutes() }).catch(async (err) => {
    await gw.stop();
    throw err;
  });
  const creates = () => gw.frames.filter((f) => f.method.endsWith("create_flow")).length;
  const create = (goal: string) =>
    post(`${svc.url}/hooks/a`, { action: "create_flow", goal }, { secret: SECRET_A, headers: { "idempotency-key": "order-42" } });
  try {
    const first = await create("ship order 42");
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers.get("idempotent-replayed"), null);
    const again = await create("ship order 42");
    assert.equal(again.status, 200, again.text);
    assert.equal(again.headers.get("idempotent-replayed"), "true");
    assert.equal(again.json.result.flow.flowId, first.json.result.flow.flowId, "the stored answer");
    assert.equal(creates(), 1, "one Gateway call: the repeat did not run again");
    const other = await create("something else");
    assert.deepEqual([other.status, other.json.code], [409, "idempotency_conflict"]);
    assert.equal(creates(), 1);
  } finally {
    await svc.close();
    await gw.stop();
  }
}

async function gatewayRelay(engine: Engine) {
  const gw = await startFakeGateway({ token: GW_TOKEN });
  const rx = await startReceiver({ secret: SECRET });
  let svc: TestService | undefined;
  try {
    svc = await egressService(engine.redis(), [{ name: "all", url: rx.url, events: ["*"] }], { gateway: { url: gw.url, token: GW_TOKEN } });
    await until(() => gw.subscribed() === 1);
    const frames = rewriteFixture("cron-command");
    const map = createGatewayMapper();
    const expected = new Set(frames.flatMap((f) => map(f.event, f.payload).map((e) => e.id)));
    assert.ok(expected.size > 0, "the fixture maps to events");
    gw.replay(frames, 0);
    await until(() => rx.received.length >= expected.size, 15_000);
    await new Promise((r) => setTimeout(r, 300)); // room for a duplicate to show up
    const got = rx.received.map((r) => JSON.parse(r.body).id as string);
    assert.deepEqual(got.toSorted(), [...expected].sort(), "each mapped event once");
    assert.ok(
      rx.received.every((r) => r.verified),
      "every delivery verifies with standardwebhooks",
    );
    assert.ok(rx.received.some((r) => JSON.parse(r.body).type === "cron.finished"));
  } finally {
    await svc?.close();
    await rx.close();
    await gw.stop();
  }
}

// ─── The same tests on each engine. ───

const ENGINES: [string, () => Promise<Engine>][] = [
  ["single Redis", singleEngine],
  ["Redis Cluster (3 masters, 3 replicas)", clusterEngine],
  ["Redis Sentinel (primary, replica, 3 sentinels)", sentinelEngine],
];

for (const [name, start] of ENGINES) {
  describe(`core behaviours on ${name}`, () => {
    let engine: Engine | undefined;
    before(async () => {
      engine = await start();
    });
    after(() => engine?.dispose());
    const on = (scenario: (e: Engine, t: TestContext) => Promise<void>) => (t: TestContext) => scenario(engine!, t);
    const opts = { timeout: 30_000 };

    test("exactly 120 requests are accepted in one window across two replicas", opts, on(limitsAcrossReplicas));
    test(
      "POST /v1/events: a signed delivery to each of four endpoints; each lane on one server, lanes spread over the primaries",
      opts,
      on(publishToSignedDelivery),
    );
    test("a 500 then a 200: the same webhook-id twice, delivered in 2 attempts", opts, on(retryAfter500));
    test("admin replay of a delivered delivery: another attempt with the same webhook-id", opts, on(replayDelivered));
    test("a TaskFlow request repeated with its Idempotency-Key gets the stored answer, no second Gateway call", opts, on(idempotentTaskFlow));
    test("a Gateway event reaches the endpoint as a signed delivery, once", opts, on(gatewayRelay));
  });
}
