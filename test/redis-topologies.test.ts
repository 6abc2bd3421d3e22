import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test, type TestContext } from "node:test";
import { Queue, Worker } from "bullmq";
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from "ioredis";
import { startRedisCluster, type TestRedisCluster } from "./support/redis-cluster.js";
import { startRedisSentinel, type TestRedisSentinel } from "./support/redis-sentinel.js";
import { parseInfo } from "./support/redis-node.js";
import { until } from "./support/until.js";

// The client options under test; docs/redis-topologies-notes.md says what each one changed.

/** Reconnect every 100 ms, 200 ms, … up to 1 s (ioredis's default backs off to 5 s). */
const reconnectFast = (times: number) => Math.min(times * 100, 1_000);

/**
 * Cluster, for BullMQ workers: a command whose master died is retried every retryDelayOnFailover ms
 * (refreshing the slot map each time); CLUSTERDOWN answers while the slot is uncovered and MOVED
 * ping-pong while nodes disagree are retried too, and every retry counts against maxRedirections.
 * 300 ms × 40 outlasts a failover of a few seconds. With the defaults (100 ms × 16) a completion
 * failed mid-failover in 2 runs of 3, and BullMQ marked the processed job failed.
 */
const clusterWorker = (): ClusterOptions => ({
  retryDelayOnFailover: 300,
  retryDelayOnClusterDown: 300,
  retryDelayOnMoved: 100,
  maxRedirections: 40,
  redisOptions: { maxRetriesPerRequest: null },
});
/**
 * Cluster, for the producer: no offline queue and the default retry budget, so an add during a
 * failover errors (after ~1.6 s of redirections, not at once) and the caller retries it.
 */
const clusterProducer = (): ClusterOptions => ({ enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 1 } });

const sentinelBase = (s: TestRedisSentinel): RedisOptions => ({
  sentinels: s.sentinelAddrs,
  name: s.name,
  retryStrategy: reconnectFast,
  // Reconnects on +switch-master; without it a client stays on a demoted master that is still up.
  failoverDetector: true,
});
const sentinelProducer = (s: TestRedisSentinel): RedisOptions => ({ ...sentinelBase(s), enableOfflineQueue: false, maxRetriesPerRequest: 1 });
const sentinelWorker = (s: TestRedisSentinel): RedisOptions => ({ ...sentinelBase(s), maxRetriesPerRequest: null });

/**
 * BullMQ worker options. A job whose fetch answer was lost with the master stays active until its
 * lock expires (lockDuration, 30 s by default) and the stalled check (stalledInterval, 30 s) takes
 * it back; after a connection error reaches the worker loop it waits runRetryDelay (15 s). None of
 * these fired in the runs measured, but each would blow this file's time budget if it did.
 */
const workerOpts = { runRetryDelay: 250, lockDuration: 5_000, stalledInterval: 1_000, maxStalledCount: 10 };

type Tally = { processed: Map<string, number>; completedAt: number[] };

function tallyingWorker(name: string, connection: Redis | Cluster, prefix: string, tally: Tally) {
  const worker = new Worker(
    name,
    async (job) => {
      tally.processed.set(job.id!, (tally.processed.get(job.id!) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 2));
    },
    { connection, prefix, concurrency: 4, ...workerOpts },
  );
  worker.on("completed", () => tally.completedAt.push(Date.now()));
  worker.on("error", () => {}); // connection errors during the fault are expected; the counts judge
  return worker;
}

/**
 * Adds `ids` one every `paceMs`. An add that fails (the master is away) is retried with the same
 * jobId, which BullMQ ignores if the first add did land, until `deadline`.
 */
async function produce(queue: Queue, ids: string[], paceMs: number, deadline: number): Promise<{ retries: number }> {
  let retries = 0;
  for (const id of ids) {
    for (;;) {
      try {
        await queue.add("d", { id }, { jobId: id });
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`add ${id} still failing at the deadline`, { cause: err });
        retries++;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await new Promise((r) => setTimeout(r, paceMs));
  }
  return { retries };
}

/**
 * Streams `total` jobs through the worker and runs `fault` once `killAfter` were processed; then
 * waits (bounded) for every job id to be processed. Returns the measured timings.
 */
async function streamThroughFault(
  queue: Queue,
  tally: Tally,
  opts: { total: number; paceMs: number; killAfter: number; fault: () => Promise<{ killedAt: number; failoverMs: number }> },
) {
  const ids = Array.from({ length: opts.total }, (_, i) => `job-${i}`);
  const deadline = Date.now() + 40_000;
  const producing = produce(queue, ids, opts.paceMs, deadline);
  producing.catch(() => {});
  await until(() => tally.processed.size >= opts.killAfter, 10_000);
  const { killedAt, failoverMs } = await opts.fault();
  const { retries } = await producing;
  await until(() => tally.processed.size === opts.total, Math.max(1_000, deadline - Date.now()));
  const afterKill = tally.completedAt.filter((t) => t > killedAt);
  const sorted = [...tally.completedAt].sort((a, b) => a - b);
  let gap = 0;
  for (let i = 1; i < sorted.length; i++) gap = Math.max(gap, sorted[i]! - sorted[i - 1]!);
  return {
    failoverMs,
    firstCompletionAfterKillMs: (afterKill[0] ?? Number.NaN) - killedAt,
    longestGapMs: gap,
    addRetries: retries,
    processedTwice: [...tally.processed.values()].filter((n) => n > 1).length,
    missing: ids.filter((id) => !tally.processed.has(id)),
  };
}

/** BullMQ's close can wait on a blocking connection that lived through a failover: bounded. */
async function closeWithin(c: { close: () => Promise<unknown> }, ms: number) {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([c.close().catch(() => {}), new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

const report = (t: TestContext, m: Record<string, unknown>) => t.diagnostic(JSON.stringify(m));

describe("Redis Cluster: three masters, three replicas", () => {
  let cluster: TestRedisCluster;
  const clients: { close: () => Promise<unknown> }[] = [];
  before(async () => {
    cluster = await startRedisCluster();
  });
  after(async () => {
    for (const c of clients.reverse()) await closeWithin(c, 3_000);
    await cluster?.dispose();
  });
  /** A Cluster client, connected (a producer without an offline queue refuses commands before "ready"). */
  const open = async (opts: ClusterOptions) => {
    const c = new Cluster(cluster.startupNodes, { ...opts, lazyConnect: true });
    c.on("error", () => {});
    clients.push({ close: async () => c.disconnect() });
    await c.connect();
    return c;
  };

  test("a Cluster client writes and reads keys spread over every master", async () => {
    const c = await open(clusterProducer());
    const keys = Array.from({ length: 300 }, (_, i) => `k:${i}`);
    await Promise.all(keys.map((k) => c.set(k, k)));
    assert.deepEqual(await Promise.all(keys.map((k) => c.get(k))), keys);
    const perMaster = await Promise.all(c.nodes("master").map((n) => n.dbsize()));
    assert.equal(perMaster.length, 3);
    assert.ok(
      perMaster.every((n) => n > 50),
      `keys per master: ${perMaster}`,
    );
  });

  test("maxmemory-policy is read per node: every master and replica answers its own", async () => {
    const c = await open(clusterProducer());
    // A replica is tomorrow's master: check all six. `c.nodes("all")` is no list of them: it holds
    // what CLUSTER SLOTS named, and Redis 7 leaves out replicas that have replicated nothing yet.
    // CLUSTER NODES names every node.
    const listing = String(await c.nodes("master")[0]!.cluster("NODES"));
    const addrs = listing
      .trim()
      .split("\n")
      .map((line) => line.split(" ")[1]!.split("@")[0]!);
    assert.equal(addrs.length, 6);
    const policies = await Promise.all(
      addrs.map(async (addr) => {
        const [host, port] = addr.split(":");
        const node = new Redis({ host, port: Number(port), lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        try {
          await node.connect();
          return ((await node.config("GET", "maxmemory-policy")) as string[])[1];
        } finally {
          node.disconnect();
        }
      }),
    );
    assert.deepEqual(policies, Array(6).fill("noeviction"));
  });

  test("a Lua script's keys must share one slot; an undeclared key must too", async () => {
    const c = await open(clusterProducer());
    assert.notEqual(await cluster.slotOf("a"), await cluster.slotOf("b"));
    await assert.rejects(c.eval("return redis.call('GET', KEYS[2])", 2, "a", "b"), /CROSSSLOT/);
    // A key built inside the script works only when a hash tag keeps it on the slot of the declared
    // key (acquire-batch.lua used to build its window's; every script now declares each key it uses).
    assert.equal(await c.eval("return redis.call('INCR', KEYS[1] .. ':7')", 1, "window:{r1}"), 1);
    await assert.rejects(c.eval("return redis.call('INCR', ARGV[1])", 1, "window:{r1}", "elsewhere"), /non local key/);
  });

  test("BullMQ without a hash tag in the prefix fails with CROSSSLOT", async () => {
    const queue = new Queue(`q-${randomUUID()}`, { connection: await open(clusterProducer()), prefix: "ocwh" });
    clients.push(queue);
    await assert.rejects(queue.add("d", {}), /CROSSSLOT/);
  });

  test("BullMQ with prefix {ocwh} processes 100 jobs", async () => {
    const name = `q-${randomUUID()}`;
    const queue = new Queue(name, { connection: await open(clusterProducer()), prefix: "{ocwh}" });
    queue.on("error", () => {});
    const tally: Tally = { processed: new Map(), completedAt: [] };
    const worker = tallyingWorker(name, await open(clusterWorker()), "{ocwh}", tally);
    clients.push(queue, worker);
    await queue.addBulk(Array.from({ length: 100 }, (_, i) => ({ name: "d", data: { i }, opts: { jobId: `j${i}` } })));
    await until(() => tally.processed.size === 100, 15_000);
    await until(async () => (await queue.getCompletedCount()) === 100, 5_000);
  });

  test("the master of the queue's slot is SIGKILLed mid-stream: its replica is promoted and the worker carries on", async (t) => {
    const name = `q-${randomUUID()}`;
    const queue = new Queue(name, { connection: await open(clusterProducer()), prefix: "{ocwh}" });
    queue.on("error", () => {});
    const tally: Tally = { processed: new Map(), completedAt: [] };
    const worker = tallyingWorker(name, await open(clusterWorker()), "{ocwh}", tally);
    clients.push(queue, worker);
    let killed: TestRedisCluster["nodes"][number] | undefined;
    const m = await streamThroughFault(queue, tally, {
      total: 300,
      paceMs: 15,
      killAfter: 60,
      fault: async () => {
        const k = await cluster.killMaster("{ocwh}");
        killed = k.node;
        const f = await cluster.waitForFailover();
        return { killedAt: k.killedAt, failoverMs: f.ms };
      },
    });
    report(t, m);
    assert.deepEqual(m.missing, []);
    const counts = await queue.getJobCounts("completed", "failed", "wait", "active");
    report(t, counts);
    assert.equal(counts.completed, 300);
    const restartedAt = Date.now();
    await cluster.restart(killed!);
    report(t, { restartToSyncedReplicaMs: Date.now() - restartedAt, roles: cluster.nodes.map((n) => n.role) });
    assert.equal(killed!.role, "replica");
  });
});

describe("Redis Sentinel: a master, a replica, three sentinels", () => {
  let sentinel: TestRedisSentinel;
  const clients: { close: () => Promise<unknown> }[] = [];
  before(async () => {
    sentinel = await startRedisSentinel();
  });
  after(async () => {
    for (const c of clients.reverse()) await closeWithin(c, 3_000);
    await sentinel?.dispose();
  });
  const open = (opts: RedisOptions) => {
    const r = new Redis(opts);
    r.on("error", () => {});
    clients.push({ close: async () => r.disconnect() });
    return r;
  };

  test("an ioredis client with { sentinels, name } reaches the master", async () => {
    const r = open(sentinelWorker(sentinel));
    await r.set("k", "v");
    assert.equal(await r.get("k"), "v");
    assert.equal(`127.0.0.1:${parseInfo(await r.info("server")).tcp_port}`, await sentinel.master());
  });

  test("the master is SIGKILLed mid-stream: Sentinel promotes the replica and every job completes", async (t) => {
    const name = `q-${randomUUID()}`;
    const queue = new Queue(name, { connection: open(sentinelProducer(sentinel)), prefix: "ocwh" });
    queue.on("error", () => {});
    const tally: Tally = { processed: new Map(), completedAt: [] };
    const worker = tallyingWorker(name, open(sentinelWorker(sentinel)), "ocwh", tally);
    clients.push(queue, worker);
    const m = await streamThroughFault(queue, tally, {
      total: 300,
      paceMs: 15,
      killAfter: 60,
      fault: async () => {
        const k = await sentinel.killMaster();
        const f = await sentinel.waitForFailover();
        return { killedAt: k.killedAt, failoverMs: f.ms };
      },
    });
    report(t, m);
    assert.deepEqual(m.missing, []);
    const counts = await queue.getJobCounts("completed", "failed", "wait", "active");
    report(t, counts);
    assert.equal(counts.completed, 300);
  });
});
