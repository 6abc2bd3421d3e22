import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { configFrom } from "../src/config/load.js";
import { LEGACY_QUEUE, laneName, limiterOf } from "../src/egress/lanes.js";
import { createKeys } from "../src/redis-keys.js";
import { lanePrefix, placeLanes, shardOf, shardTag, slotOf } from "../src/egress/shards.js";
import { openTestEgress } from "./support/egress.js";
import { startReceiver } from "./support/receiver.js";
import { startRedis, type TestRedis } from "./support/redis.js";
import { until } from "./support/until.js";

const SECRET = `whsec_${randomBytes(24).toString("base64")}`;
let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(() => redis.dispose());

async function egressFor(prefix: string, endpoints: Record<string, unknown>[], webhooks: Record<string, unknown> = {}, shards = 1) {
  const config = configFrom({
    redis: { url: redis.url, prefix, shards },
    webhooks: { allowPrivateCidrs: ["127.0.0.0/8"], endpoints, ...webhooks } as never,
  });
  return openTestEgress(config);
}

describe("lanes: one queue per endpoint", () => {
  test("each endpoint's deliveries go to its own lane, whose limits are the endpoint's", async () => {
    const prefix = redis.prefix();
    const rx = await startReceiver({ secret: SECRET });
    const eg = await egressFor(prefix, [
      { name: "a", url: rx.url, secret: SECRET, events: ["*"], concurrency: 3, rateLimit: { perSecond: 2.5 } },
      { name: "b", url: rx.url, secret: SECRET, events: ["b.*"] },
    ]);
    try {
      await eg.publish({ type: "a.only", data: {} });
      await eg.publish({ type: "b.both", data: {} });
      assert.deepEqual(
        { a: (await eg.jobCounts("a")).waiting, b: (await eg.jobCounts("b")).waiting, all: (await eg.jobCounts()).waiting },
        { a: 2, b: 1, all: 3 },
      );
      await eg.startWorker();
      const probe = new Redis(redis.url);
      const lane = eg.lanes.ref("a");
      const meta = await probe.hgetall(`${lane.prefix}:${lane.name}:meta`);
      probe.disconnect();
      assert.equal(meta.concurrency, "3");
      assert.deepEqual({ max: meta.max, duration: meta.duration }, { max: "1", duration: "400" }, "2.5/s as 1 per 0.4 s");
      await until(() => rx.received.length === 3);
    } finally {
      await eg.close();
      await rx.close();
    }
  });

  test("limiterOf keeps the average rate in whole numbers, in windows of about a tenth of a second", () => {
    assert.deepEqual(limiterOf({ rateLimit: { perSecond: 250 } }), { max: 25, duration: 100 });
    assert.deepEqual(limiterOf({ rateLimit: { perSecond: 33 } }), { max: 3, duration: 91 });
    assert.deepEqual(limiterOf({ rateLimit: { perSecond: 0.5 } }), { max: 1, duration: 2000 });
    assert.deepEqual(limiterOf({ rateLimit: undefined }), { max: 1_000_000, duration: 1000 });
  });

  test("an upgrade: jobs left in the single queue of earlier versions move to their lanes, keep their attempts, and are delivered once", async () => {
    const prefix = redis.prefix();
    const rx = await startReceiver({ secret: SECRET });
    const endpoints = [{ name: "crm", url: rx.url, secret: SECRET, events: ["*"], retry: { schedule: ["50ms", "50ms"] } }];
    const first = await egressFor(prefix, endpoints);
    const out = await first.publish({ type: "order.created", data: { n: 1 } });
    await first.close();
    // As an earlier version left it: the same job in the one `deliveries` queue, one attempt made.
    const conn = new Redis(redis.url, { maxRetriesPerRequest: null });
    const bull = createKeys(prefix).bullPrefix;
    const lane = new Queue(laneName("crm"), { connection: conn, prefix: lanePrefix(bull, 0, 1) });
    const job = (await lane.getJob(out.deliveries[0]!))!;
    await job.remove();
    const legacy = new Queue(LEGACY_QUEUE, { connection: conn, prefix: bull });
    await legacy.add(job.name, job.data, { jobId: job.id!, attempts: 3, backoff: { type: "endpoint" } });
    rx.next({ status: 500 });
    const second = await egressFor(prefix, endpoints);
    try {
      await second.startWorker();
      await until(() => rx.received.length === 2, 10_000);
      // The record is written once the receiver's answer is read, a moment after it arrived.
      await until(async () => (await second.log.get(out.deliveries[0]!))?.status !== "pending", 5_000);
      const rec = await second.log.get(out.deliveries[0]!);
      assert.equal(rec?.status, "delivered");
      assert.equal(rec?.attempts, 2, "one failed attempt, then delivered on the second");
      assert.equal(new Set(rx.received.map((r) => r.headers["webhook-id"])).size, 1, "the same webhook-id");
      assert.deepEqual(await legacy.getJobCounts("waiting", "delayed", "active"), { waiting: 0, delayed: 0, active: 0 });
    } finally {
      await second.close();
      await legacy.close();
      await lane.close();
      conn.disconnect();
      await rx.close();
    }
  });

  test("the lane of an endpoint removed from the config is drained: its deliveries fail instead of waiting forever", async () => {
    const prefix = redis.prefix();
    const rx = await startReceiver({ secret: SECRET });
    const first = await egressFor(prefix, [
      { name: "kept", url: rx.url, secret: SECRET, events: ["*"] },
      { name: "gone", url: rx.url, secret: SECRET, events: ["*"] },
    ]);
    await first.publish({ type: "order.created", data: {} });
    await first.close();
    const second = await egressFor(prefix, [{ name: "kept", url: rx.url, secret: SECRET, events: ["*"] }]);
    const conn = new Redis(redis.url, { maxRetriesPerRequest: null });
    const gone = new Queue(laneName("gone"), { connection: conn, prefix: lanePrefix(createKeys(prefix).bullPrefix, 0, 1) });
    try {
      await second.startWorker();
      await until(async () => (await gone.getJobCounts("failed")).failed === 1, 10_000);
      assert.deepEqual(await gone.getJobCounts("waiting", "delayed", "active"), { waiting: 0, delayed: 0, active: 0 });
      await until(() => rx.received.length === 1);
    } finally {
      await second.close();
      await gone.close();
      conn.disconnect();
      await rx.close();
    }
  });

  test("changing redis.shards moves queued deliveries to their endpoints' new lanes: none lost, each delivered once", async () => {
    const prefix = redis.prefix();
    const rx = await startReceiver({ secret: SECRET });
    const names = ["n0", "n1", "n2", "n3", "n4", "n5"];
    const endpoints = names.map((name) => ({ name, url: rx.url, secret: SECRET, events: ["*"] }));
    const first = await egressFor(prefix, endpoints, {}, 1);
    for (let i = 0; i < 5; i++) await first.publish({ type: "order.created", data: { i } });
    await first.close();
    // With 3 shards at least one endpoint's lane moves (the names were chosen so: asserted).
    const placed = placeLanes(names, 3);
    const moved = names.filter((n) => shardTag(placed.get(n)!, 3) !== shardTag(0, 1));
    assert.ok(moved.length > 0, "some lane moves");
    const second = await egressFor(prefix, endpoints, {}, 3);
    try {
      for (const n of moved) assert.equal((await second.jobCounts(n)).waiting, 0, "a moved endpoint's new lane starts empty: its jobs are in the old one");
      await second.startWorker();
      await until(() => rx.received.length === 30, 15_000);
      assert.equal(new Set(rx.received.map((r) => r.headers["webhook-id"])).size, 30, "30 deliveries, none twice");
      const ids = await second.log.list({ endpoint: moved[0]! });
      assert.equal(ids.length, 5);
      for (const id of ids) assert.equal((await second.log.get(id))?.status, "delivered");
    } finally {
      await second.close();
      await rx.close();
    }
  });

  test("shard tags spread over the slot space: with n shards, shard i's tag hashes into the i-th n-th of the slots", () => {
    for (const n of [1, 2, 3, 5, 16]) {
      for (let i = 0; i < n; i++) {
        const slot = slotOf(`{${shardTag(i, n)}}`);
        assert.ok(slot >= Math.floor((i * 16384) / n) && slot < Math.floor(((i + 1) * 16384) / n), `shard ${i} of ${n}: slot ${slot}`);
      }
    }
    const counts = [0, 0, 0];
    for (let e = 0; e < 300; e++) counts[shardOf(`endpoint-${e}`, 3)]!++;
    assert.ok(
      counts.every((c) => c > 70),
      `300 endpoints' preferences over 3 shards: ${counts.join(", ")}`,
    );
    // Growing from 3 to 4 shards changes about a quarter of the preferences, not most of them.
    let movedOnGrow = 0;
    for (let e = 0; e < 300; e++) if (shardOf(`endpoint-${e}`, 3) !== shardOf(`endpoint-${e}`, 4)) movedOnGrow++;
    assert.ok(movedOnGrow > 40 && movedOnGrow < 110, `moved ${movedOnGrow} of 300`);
  });

  test("lanes are placed evenly over the shards, and a new endpoint or shard moves few of them", () => {
    const names = Array.from({ length: 12 }, (_, i) => `endpoint-${i}`);
    const loads = (p: Map<string, number>, n: number) => Array.from({ length: n }, (_, s) => [...p.values()].filter((x) => x === s).length);
    const three = placeLanes(names, 3);
    // Hashed freely, these twelve names leave one of three shards with no lane at all.
    assert.ok(loads(new Map(names.map((e) => [e, shardOf(e, 3)])), 3).includes(0));
    assert.deepEqual(loads(three, 3), [4, 4, 4]);
    assert.deepEqual(placeLanes([...names].reverse(), 3), three, "the order of the config does not matter");
    const moves = (a: Map<string, number>, b: Map<string, number>) => names.filter((e) => a.get(e) !== b.get(e)).length;
    const plusOne = placeLanes([...names, "endpoint-new"], 3);
    assert.ok(Math.max(...loads(plusOne, 3)) <= 5);
    assert.ok(moves(three, plusOne) <= 3, `a 13th endpoint moved ${moves(three, plusOne)} of 12 lanes`);
    const four = placeLanes(names, 4);
    assert.deepEqual(loads(four, 4), [3, 3, 3, 3]);
    assert.ok(moves(three, four) <= 6, `a 4th shard moved ${moves(three, four)} of 12 lanes`);
  });

  test("a lane whose worker stopped taking jobs gets a new worker, and its waiting deliveries go out", async () => {
    const prefix = redis.prefix();
    const rx = await startReceiver({ secret: SECRET });
    const eg = await egressFor(prefix, [{ name: "crm", url: rx.url, secret: SECRET, events: ["*"] }]);
    try {
      await eg.startWorker();
      const [stuck] = eg.workers();
      // As a worker whose blocking connection never came back would: it takes no job.
      await stuck!.pause(true);
      for (let i = 0; i < 3; i++) await eg.publish({ type: "order.created", data: { i } });
      await new Promise((r) => setTimeout(r, 1_000));
      // A fetch already under way when it stopped may still bring in one job.
      assert.ok(rx.received.length < 3, `the stuck worker left jobs waiting (${rx.received.length} of 3 taken)`);
      await until(() => rx.received.length === 3, 15_000);
      assert.ok(!eg.workers().includes(stuck!), "the stuck worker was replaced");
      assert.equal(eg.workerRunning(), true);
    } finally {
      await eg.close();
      await rx.close();
    }
  });
});
