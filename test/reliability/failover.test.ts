import assert from "node:assert/strict";
import { appendFileSync } from "node:fs";
import { describe, test, type TestContext } from "node:test";
import { Agent, request } from "undici";
import { shardOf, shardTag, slotOf } from "../../src/egress/shards.js";
import { startServiceProcess, type ServiceProcess } from "../support/process.js";
import { startReceiver } from "../support/receiver.js";
import { startRedisCluster } from "../support/redis-cluster.js";
import { startRedisSentinel } from "../support/redis-sentinel.js";
import { until } from "../support/until.js";

/**
 * Issue #19: a Redis master SIGKILLed while events stream in, on a Cluster (the master holding one
 * endpoint's lane) and behind Sentinel, as a user sees it. The service runs as its own process;
 * events are published over HTTP at a fixed rate (open loop), and a publish answered anything but
 * 2xx is sent again with the same id until it is stored, as a publisher told "503, retry with the
 * same id" would. Loopback receivers verify every signature. Figures print as `[scenario] figure`
 * lines, as in reliability.test.ts.
 */
const PUBLISH = "publish-token-0123456789";
const ADMIN = "admin-token-0123456789";
const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ENDPOINTS = ["crm", "billing", "audit", "ops"];
const SHARDS = 3;
const RATE = 100; // events/s, each to every endpoint
const SECONDS = 20;
const KILL_AFTER_MS = 5_000;
const FINAL_BATCH = 50;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const record = (scenario: string, figure: string) => console.log(`  [${scenario}] ${figure}`);
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const n = (x: number) => x.toLocaleString("en-US");

/** Keep-alive connections the publishes share; a publish held by a failover gives up after 10 s (status 0) and is sent again. */
const publisher = new Agent({ connections: 256, headersTimeout: 10_000, bodyTimeout: 10_000 });

type Answer = { status: number; parked: boolean; retryAfterMs: number };

async function publishOnce(url: string, id: string, data: unknown): Promise<Answer> {
  try {
    const res = await request(`${url}/v1/events`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${PUBLISH}` },
      body: JSON.stringify({ type: "order.created", id, data }),
      dispatcher: publisher,
    });
    const text = await res.body.text();
    const retryAfter = Number(res.headers["retry-after"]);
    const parked = res.statusCode < 300 && (JSON.parse(text) as { parked?: boolean }).parked === true;
    // Retry-After honoured (the service says 1 s), capped so the figures keep a fine grain.
    return { status: res.statusCode, parked, retryAfterMs: Number.isFinite(retryAfter) ? Math.min(retryAfter * 1_000, 1_000) : 250 };
  } catch {
    return { status: 0, parked: false, retryAfterMs: 250 };
  }
}

type Published = {
  /** Each stored event's id and when its 2xx came. */
  accepted: Map<string, number>;
  /** Every answer that was not 2xx (0: the request itself failed). */
  refused: { id: string; at: number; status: number }[];
  /** Events answered 202 `parked: true`: stored nowhere a worker looks, waiting for an operator. */
  parked: string[];
  /** Events never stored by the deadline. */
  lost: string[];
};

/** Publishes `count` events at `rate` a second (open loop), each sent again with its id until 2xx or `deadline`. */
async function stream(url: string, o: { rate: number; count: number; prefix: string; deadline: number }): Promise<Published> {
  const out: Published = { accepted: new Map(), refused: [], parked: [], lost: [] };
  const one = async (id: string, i: number) => {
    for (;;) {
      const a = await publishOnce(url, id, { i });
      if (a.status >= 200 && a.status < 300) {
        out.accepted.set(id, Date.now());
        if (a.parked) out.parked.push(id);
        return;
      }
      out.refused.push({ id, at: Date.now(), status: a.status });
      if (Date.now() > o.deadline) return void out.lost.push(id);
      await sleep(a.retryAfterMs);
    }
  };
  const t0 = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < o.count; i++) {
    const wait = t0 + (i * 1000) / o.rate - performance.now();
    if (wait > 1) await sleep(wait);
    pending.push(one(`${o.prefix}-${i}`, i));
  }
  await Promise.all(pending);
  return out;
}

/** GET /readyz every 200 ms (one at a time) until stopped. */
function sampleReadyz(url: string) {
  const samples: { at: number; status: number; workers: boolean | undefined }[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const t0 = Date.now();
      try {
        const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(3_000) });
        const body = (await res.json()) as { checks?: { workers?: boolean } };
        samples.push({ at: t0, status: res.status, workers: body.checks?.workers });
      } catch {
        samples.push({ at: t0, status: 0, workers: undefined });
      }
      await sleep(Math.max(0, 200 - (Date.now() - t0)));
    }
  })();
  return {
    samples,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

async function admin(url: string, path: string) {
  const res = await fetch(`${url}/admin/api${path}`, { headers: { authorization: `Bearer ${ADMIN}` } });
  assert.equal(res.status, 200, `GET ${path}`);
  return ((await res.json()) as { result: any }).result;
}

/** The sum of a metric's series whose labels include `match`, from the service's /metrics. */
async function metricSum(url: string, name: string, match = "") {
  const text = await (await fetch(`${url}/metrics`)).text();
  const lines = [...text.matchAll(new RegExp(`^openclaw_webhooks_${name}(\\{[^}]*\\})? (\\S+)$`, "gm"))];
  return lines.filter((m) => (m[1] ?? "").includes(match)).reduce((sum, m) => sum + Number(m[2]), 0);
}

/**
 * Each endpoint's arrivals by event id (the webhook-id of every copy, and when each came), parsed
 * once per delivery: the checks poll it every 20 ms, and this process's receivers must keep
 * answering meanwhile.
 */
function indexArrivals(rxOf: Map<string, Awaited<ReturnType<typeof startReceiver>>>) {
  const index = new Map([...rxOf.keys()].map((e) => [e, { seen: 0, byId: new Map<string, { webhookIds: string[]; at: number[] }>() }]));
  return (e: string) => {
    const i = index.get(e)!;
    const received = rxOf.get(e)!.received;
    for (; i.seen < received.length; i.seen++) {
      const r = received[i.seen]!;
      const id = JSON.parse(r.body).id as string;
      const got = i.byId.get(id) ?? { webhookIds: [], at: [] };
      got.webhookIds.push(String(r.headers["webhook-id"]));
      got.at.push(r.at);
      i.byId.set(id, got);
    }
    return i.byId;
  };
}

/** The longest gap between consecutive times, and where it ends. */
function longestGap(times: number[]) {
  const sorted = [...times].sort((a, b) => a - b);
  let gap = { ms: 0, from: sorted[0] ?? 0, to: sorted[0] ?? 0 };
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i]! - sorted[i - 1]! > gap.ms) gap = { ms: sorted[i]! - sorted[i - 1]!, from: sorted[i - 1]!, to: sorted[i]! };
  return gap;
}

/** Warn- and error-level log lines of the service, grouped by message, for the diagnostics. */
function logSummary(lines: string[]) {
  const byMsg = new Map<string, number>();
  for (const line of lines) {
    try {
      const j = JSON.parse(line) as { level?: number; msg?: string; err?: unknown; reason?: string };
      if ((j.level ?? 0) < 40) continue;
      const key = `${j.level === 40 ? "warn" : "error"} ${j.msg}${j.err ? `: ${String(typeof j.err === "object" ? (j.err as { message?: string }).message : j.err).slice(0, 160)}` : ""}${j.reason ? ` (${j.reason.slice(0, 160)})` : ""}`;
      byMsg.set(key, (byMsg.get(key) ?? 0) + 1);
    } catch {
      if (line.trim()) byMsg.set(`raw ${line.slice(0, 200)}`, (byMsg.get(`raw ${line.slice(0, 200)}`) ?? 0) + 1);
    }
  }
  return [...byMsg].map(([k, c]) => `${c} × ${k}`);
}

type Fault = {
  /** The endpoint whose lane's master is killed (any on Sentinel: one master holds them all). */
  victim: string;
  kill: () => Promise<number>;
  /** Resolves once the topology has a new master; the helper's view, from the kill. */
  waitForFailover: () => Promise<number>;
};

/**
 * The scenario both topologies run: the stream, the kill after KILL_AFTER_MS, then every check a
 * user would notice. Returns nothing; prints the figure and asserts.
 */
async function streamThroughFailover(t: TestContext, scenario: string, redis: Record<string, unknown>, fault: Fault) {
  const rxs = await Promise.all(ENDPOINTS.map(() => startReceiver({ secret: WHSEC })));
  const rxOf = new Map(ENDPOINTS.map((e, i) => [e, rxs[i]!]));
  let svc: ServiceProcess | undefined;
  const logs: string[] = [];
  try {
    svc = await startServiceProcess(
      {
        redis,
        admin: { token: ADMIN },
        limits: { rateLimit: { windowMs: 60_000, maxRequests: 1_000_000 }, maxInFlight: 1_000 },
        webhooks: {
          publishToken: PUBLISH,
          allowPrivateCidrs: ["127.0.0.0/8"],
          endpoints: ENDPOINTS.map((name) => ({ name, url: rxOf.get(name)!.url, secret: WHSEC, events: ["order.*"] })),
        },
      },
      // FAILOVER_LOG_LEVEL=info (with FAILOVER_LOG_FILE=<path> to keep every line) when diagnosing.
      { env: { LOG_LEVEL: process.env.FAILOVER_LOG_LEVEL ?? "warn" } },
    );
    let partial = "";
    const collect = (d: Buffer) => {
      const text = partial + d.toString("utf8");
      const lines = text.split("\n");
      partial = lines.pop() ?? "";
      logs.push(...lines);
      if (process.env.FAILOVER_LOG_FILE) appendFileSync(process.env.FAILOVER_LOG_FILE, lines.map((l) => `${l}\n`).join(""));
    };
    svc.child.stdout!.on("data", collect);
    svc.child.stderr!.on("data", collect);
    const url = svc.url;
    await until(async () => (await fetch(`${url}/readyz`)).status === 200, 15_000);

    const readyz = sampleReadyz(url);
    const streamStart = Date.now();
    const publishing = stream(url, { rate: RATE, count: RATE * SECONDS, prefix: "ev", deadline: streamStart + SECONDS * 1_000 + 30_000 });
    await sleep(KILL_AFTER_MS);
    const killedAt = await fault.kill();
    const failoverMs = await fault.waitForFailover();
    const published = await publishing;

    // Every (event, endpoint) pair of a stored event arrives, within 30 s of the stream's end.
    const expected = [...published.accepted.keys()];
    const arrived = indexArrivals(rxOf);
    const missing = () =>
      ENDPOINTS.flatMap((e) => {
        const got = arrived(e);
        return expected.filter((id) => !got.has(id)).map((id) => `${e}/${id}`);
      });
    await until(() => missing().length === 0, 30_000).catch(() => {});
    const lost = missing();

    // After recovery: a final batch is stored at the first try and delivered to every endpoint,
    // the failed-over one included, within a few seconds.
    const finalAt = Date.now();
    const finals = await Promise.all(Array.from({ length: FINAL_BATCH }, (_, i) => publishOnce(url, `final-${i}`, { i })));
    const finalArrived = (e: string) => [...arrived(e).keys()].filter((id) => id.startsWith("final-")).length;
    await until(() => ENDPOINTS.every((e) => finalArrived(e) === FINAL_BATCH), 5_000).catch(() => {});
    const finalMs = Date.now() - finalAt;
    const finalShort = ENDPOINTS.filter((e) => finalArrived(e) < FINAL_BATCH).map((e) => `${e} ${finalArrived(e)}/${FINAL_BATCH}`);
    // Nothing left waiting or in flight a few seconds on (a stuck worker keeps its jobs active).
    let counts: Record<string, number> = {};
    const idle = async () => {
      counts = (await admin(url, "/queue")).counts;
      return (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0) + (counts.prioritized ?? 0) === 0;
    };
    await until(idle, 5_000).catch(() => {});
    await sleep(300); // /readyz is sampled until after the final batch
    await readyz.stop();

    const failedRecords = (await admin(url, "/deliveries?status=failed&limit=1000")).deliveries.length;
    const pendingRecords = (await admin(url, "/deliveries?status=pending&limit=1000")).deliveries.length;
    const parkedTotal = (await admin(url, "/parked")).total;
    const failedAttempts = await metricSum(url, "deliveries_total", 'outcome="failed"');
    const finalReady = await fetch(`${url}/readyz`);
    const finalChecks = ((await finalReady.json()) as { checks: Record<string, boolean> }).checks;

    // Duplicates: a pair received more than once, and whether every copy had the same webhook-id.
    let twice = 0;
    let twiceNewId = 0;
    for (const e of ENDPOINTS) {
      for (const { webhookIds } of arrived(e).values()) {
        if (webhookIds.length < 2) continue;
        twice++;
        if (new Set(webhookIds).size > 1) twiceNewId++;
      }
    }
    const unverified = rxs.flatMap((rx) => rx.received.filter((r) => !r.verified)).length;

    // Recovery times.
    const acceptedAfter = [...published.accepted.values()].filter((at) => at > killedAt);
    const killToPublish = Math.min(...acceptedAfter) - killedAt;
    const refusedAt = published.refused.map((r) => r.at);
    const refusedIds = new Set(published.refused.map((r) => r.id));
    const refusedSpan = refusedAt.length ? Math.max(...refusedAt) - Math.min(...refusedAt) : 0;
    const refusedByStatus: Record<number, number> = {};
    for (const r of published.refused) refusedByStatus[r.status] = (refusedByStatus[r.status] ?? 0) + 1;
    // Gaps among the stream's own deliveries (not the final batch's, which comes after a pause).
    const streamTimes = (e: string) => [...arrived(e)].flatMap(([id, got]) => (id.startsWith("ev-") ? got.at : []));
    const victimGap = longestGap(streamTimes(fault.victim));
    const allGap = longestGap(ENDPOINTS.flatMap(streamTimes));
    // The victim's deliveries stop at the kill (give or take attempts in flight) and resume at the end of this gap.
    const killToDeliveries = victimGap.to - killedAt;
    const after = readyz.samples.filter((x) => x.at >= killedAt - 200);
    const notReady = after.filter((x) => x.status !== 200);
    const notReadyMs = notReady.length ? (after.find((x) => x.at > notReady.at(-1)!.at)?.at ?? Date.now()) - notReady[0]!.at : 0;
    const lastReadyz = readyz.samples.at(-1);

    record(
      scenario,
      `${n(expected.length)} events × ${ENDPOINTS.length} endpoints, ${lost.length} lost, ${twice} delivered twice (${twiceNewId ? `${twiceNewId} with a new webhook-id` : "same webhook-id"}); ` +
        `publishes refused ${n(published.refused.length)} times (${n(refusedIds.size)} events, ${JSON.stringify(refusedByStatus)}) over ${s(refusedSpan)}; ` +
        `failover ${s(failoverMs)}, kill → publishes ${s(killToPublish)}, kill → ${fault.victim}'s deliveries ${s(killToDeliveries)}; ` +
        `longest gap ${fault.victim} ${s(victimGap.ms)}, all ${s(allGap.ms)}; readyz 503 for ${s(notReadyMs)} (${notReady.length} samples); ` +
        `final ${FINAL_BATCH} × ${ENDPOINTS.length} delivered in ${s(finalMs)}`,
    );
    // /readyz from the kill on, run-length encoded: "+0.1 s 503 ×12" is twelve samples of 503 from 0.1 s after the kill.
    const runs: string[] = [];
    for (let i = 0; i < after.length; i++) {
      let j = i;
      while (j + 1 < after.length && after[j + 1]!.status === after[i]!.status) j++;
      runs.push(`${s(after[i]!.at - killedAt)} ${after[i]!.status} ×${j - i + 1}`);
      i = j;
    }
    t.diagnostic(`readyz from the kill: ${runs.join(", ")}`);
    t.diagnostic(`service warnings and errors: ${JSON.stringify(logSummary(logs).slice(0, 30))}`);
    // Where the first few undelivered events stand, as the admin API tells it.
    for (const id of [...new Set(lost.map((pair) => pair.split("/")[1]!))].slice(0, 3)) {
      const res = await fetch(`${url}/admin/api/find?id=${encodeURIComponent(id)}`, { headers: { authorization: `Bearer ${ADMIN}` } });
      t.diagnostic(`undelivered ${id}: ${(await res.text()).slice(0, 1_500)}`);
    }
    t.diagnostic(
      `queue ${JSON.stringify(counts)}; records failed ${failedRecords}, pending ${pendingRecords}; parked ${parkedTotal}; failed attempts ${failedAttempts}`,
    );

    assert.deepEqual(published.lost, [], "every publish is stored at last");
    assert.deepEqual(published.parked, [], "no event parked because of the failover");
    assert.deepEqual(lost.slice(0, 10), [], `${lost.length} (event, endpoint) pairs never delivered`);
    assert.equal(twiceNewId, 0, "a pair delivered twice carries the same webhook-id (at least once, deduplicable)");
    assert.equal(unverified, 0, "every delivery's signature verifies");
    assert.ok(published.refused.length > 0, "the failover was felt: some publishes were refused");
    assert.ok(victimGap.from <= killedAt + 1_000 && victimGap.to > killedAt, `the ${fault.victim} lane's longest gap spans the kill`);
    assert.ok(killToPublish < 15_000 && killToDeliveries < 15_000, "publishes and deliveries resume within 15 s of the kill");
    assert.ok(
      finals.every((a) => a.status === 202),
      `after recovery a publish is stored at the first try: ${finals.map((a) => a.status)}`,
    );
    assert.deepEqual(finalShort, [], "the final batch reaches every endpoint within 5 s");
    assert.deepEqual(
      [counts.waiting, counts.active, counts.delayed, counts.prioritized, counts.failed],
      [0, 0, 0, 0, 0],
      `no job waiting, active or failed: ${JSON.stringify(counts)}`,
    );
    assert.equal(failedRecords + pendingRecords, 0, "no delivery record left failed or pending");
    assert.equal(parkedTotal, 0, "nothing parked");
    assert.equal(failedAttempts, 0, "no delivery failed for good");
    // 503 from the moment the master is gone (not only once the cluster has marked it failed,
    // ~1.5 s later), until the failover: a load balancer stops sending while writes are refused.
    assert.ok(notReady.length > 0 && notReady[0]!.at - killedAt <= 1_000, `/readyz says 503 within 1 s of the kill (${runs.join(", ")})`);
    assert.ok(notReadyMs >= failoverMs / 2, `/readyz says 503 for most of the failover (${s(notReadyMs)} of ${s(failoverMs)})`);
    assert.equal(lastReadyz?.status, 200, "/readyz is 200 again after the failover");
    assert.equal(finalReady.status, 200);
    assert.equal(finalChecks.workers, true, "every worker runs");
  } catch (err) {
    t.diagnostic(`service output (tail): ${(svc?.output() ?? "").slice(-4_000)}`);
    throw err;
  } finally {
    await svc?.stop();
    await Promise.all(rxs.map((rx) => rx.close()));
  }
}

describe("reliability: Redis failover under load", () => {
  test("cluster: the master holding one endpoint's lane is SIGKILLed mid-stream; its replica takes over, nothing is lost", async (t) => {
    const cluster = await startRedisCluster();
    try {
      const victim = ENDPOINTS[0]!;
      const laneSlot = slotOf(`{${shardTag(shardOf(victim, SHARDS), SHARDS)}}`);
      await streamThroughFailover(
        t,
        "cluster failover",
        { cluster: { nodes: cluster.urls }, prefix: "ocwh:", shards: SHARDS },
        {
          victim,
          kill: async () => (await cluster.killMaster(laneSlot)).killedAt,
          waitForFailover: async () => (await cluster.waitForFailover()).ms,
        },
      );
    } finally {
      await cluster.dispose();
    }
  });

  test("sentinel: the master is SIGKILLed mid-stream; the replica is promoted, nothing is lost", async (t) => {
    const sentinel = await startRedisSentinel();
    try {
      await streamThroughFailover(
        t,
        "sentinel failover",
        { sentinel: { sentinels: sentinel.sentinels, name: sentinel.name }, prefix: "ocwh:" },
        {
          victim: ENDPOINTS[0]!,
          kill: async () => (await sentinel.killMaster()).killedAt,
          waitForFailover: async () => (await sentinel.waitForFailover()).ms,
        },
      );
    } finally {
      await sentinel.dispose();
    }
  });
});
