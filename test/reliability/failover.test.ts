import assert from "node:assert/strict";
import { appendFileSync } from "node:fs";
import { describe, test, type TestContext } from "node:test";
import { placeLanes, shardTag, slotOf } from "../../src/egress/shards.js";
import { startFakeGateway } from "../support/fake-gateway.js";
import { startServiceProcess, type ServiceProcess } from "../support/process.js";
import { startReceiver } from "../support/receiver.js";
import { startRedisCluster } from "../support/redis-cluster.js";
import { startRedisSentinel } from "../support/redis-sentinel.js";
import { until } from "../support/until.js";
import {
  ADMIN,
  admin,
  GW_TOKEN,
  indexArrivals,
  logSummary,
  longestGap,
  metricSum,
  n,
  PUBLISH,
  publishOnce,
  pushGatewayEvents,
  record,
  ROUTE_SECRET,
  routeOnce,
  s,
  sampleReadyz,
  sleep,
  steadyIngress,
  stream,
  tally,
  watchDashboard,
  WHSEC,
} from "./failover-support.js";

/**
 * Issue #19: a Redis master SIGKILLed while events stream in, on a Cluster (the master holding one
 * endpoint's lane) and behind Sentinel, as a user sees it. The service runs as its own process
 * beside the fake Gateway; events are published over HTTP at a fixed rate (open loop), and a
 * publish answered anything but 2xx is sent again with the same id until it is stored, as a
 * publisher told "503, retry with the same id" would. Meanwhile a TaskFlow route is called at a
 * steady rate (each request once: ingress must fail closed, 503, and carry on), the Gateway
 * broadcasts events the service relays to an endpoint, and the dashboard's live stream is held
 * open. Loopback receivers verify every signature. Figures print as `[scenario] figure` lines, as
 * in reliability.test.ts.
 */
const ENDPOINTS = ["crm", "billing", "audit", "ops"];
const SHARDS = 3;
const RATE = 100; // events/s, each to every endpoint
const SECONDS = 20;
const KILL_AFTER_MS = 5_000;
const FINAL_BATCH = 50;
const INGRESS_RATE = 20; // TaskFlow route requests/s
const GATEWAY_RATE = 10; // Gateway events/s
const CRON_JOB = "failover-relay";

type Fault = {
  /** The endpoint whose lane's master is killed (any on Sentinel: one master holds them all). */
  victim: string;
  /** The TaskFlow route's path: on the Cluster, one whose rate-limit keys are on the killed master. */
  ingressPath: string;
  /**
   * The endpoint subscribed to the Gateway's events. On the Cluster its lane is on a master that
   * survives: a relayed event then fails only while its own key is on the killed one, while the
   * others are stored, which a relay must not take for an event failing on its own.
   */
  relayTo: string;
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
  const gw = await startFakeGateway({ token: GW_TOKEN, recordFrames: false });
  let svc: ServiceProcess | undefined;
  let dashboard: Awaited<ReturnType<typeof watchDashboard>> | undefined;
  const logs: string[] = [];
  try {
    svc = await startServiceProcess(
      {
        redis,
        gateway: { url: gw.url, token: GW_TOKEN },
        admin: { token: ADMIN },
        limits: { rateLimit: { windowMs: 60_000, maxRequests: 1_000_000 }, maxInFlight: 1_000 },
        plugins: {
          entries: {
            webhooks: { enabled: true, config: { routes: { flows: { path: fault.ingressPath, sessionKey: "agent:main:hook:flows", secret: ROUTE_SECRET } } } },
          },
        },
        webhooks: {
          publishToken: PUBLISH,
          allowPrivateCidrs: ["127.0.0.0/8"],
          endpoints: ENDPOINTS.map((name) => ({
            name,
            url: rxOf.get(name)!.url,
            secret: WHSEC,
            events: name === fault.relayTo ? ["order.*", "cron.*"] : ["order.*"],
          })),
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
    await until(() => gw.subscribed() === 1, 10_000); // the service's Gateway connection is up

    const readyz = sampleReadyz(url);
    dashboard = await watchDashboard(url);
    const live = dashboard;
    await until(() => live.snapshots.length > 0, 5_000);
    const streamStart = Date.now();
    const publishing = stream(url, { rate: RATE, count: RATE * SECONDS, prefix: "ev", deadline: streamStart + SECONDS * 1_000 + 30_000 });
    const routing = steadyIngress(url, { path: fault.ingressPath, rate: INGRESS_RATE, count: INGRESS_RATE * SECONDS, prefix: "failover" });
    const relaying = pushGatewayEvents(gw, { rate: GATEWAY_RATE, count: GATEWAY_RATE * SECONDS, jobId: CRON_JOB });
    await sleep(KILL_AFTER_MS);
    const killedAt = await fault.kill();
    const failoverMs = await fault.waitForFailover();
    const [published, routed, pushed] = await Promise.all([publishing, routing, relaying]);

    // Every (event, endpoint) pair of a stored event arrives, within 30 s of the stream's end, and
    // so does every event the Gateway sent, at the endpoint subscribed to them.
    const expected = [...published.accepted.keys()];
    const arrived = indexArrivals(rxOf);
    const missing = () => [
      ...ENDPOINTS.flatMap((e) => {
        const got = arrived(e);
        return expected.filter((id) => !got.has(id)).map((id) => `${e}/${id}`);
      }),
      ...[...pushed.keys()].filter((id) => !arrived(fault.relayTo).has(id)).map((id) => `${fault.relayTo}/${id}`),
    ];
    await until(() => missing().length === 0, 30_000).catch(() => {});
    const lost = missing();

    // After recovery: a final batch is stored at the first try and delivered to every endpoint,
    // the failed-over one included, within a few seconds; the route answers 200 at once; the
    // dashboard's stream, opened before the kill, shows those deliveries.
    const finalAt = Date.now();
    const [finals, finalRoutes] = await Promise.all([
      Promise.all(Array.from({ length: FINAL_BATCH }, (_, i) => publishOnce(url, `final-${i}`, { i }))),
      Promise.all(Array.from({ length: INGRESS_RATE }, (_, i) => routeOnce(url, fault.ingressPath, `final ${i}`))),
    ]);
    const finalArrived = (e: string) => [...arrived(e).keys()].filter((id) => id.startsWith("final-")).length;
    await until(() => ENDPOINTS.every((e) => finalArrived(e) === FINAL_BATCH), 5_000).catch(() => {});
    const finalMs = Date.now() - finalAt;
    const finalShort = ENDPOINTS.filter((e) => finalArrived(e) < FINAL_BATCH).map((e) => `${e} ${finalArrived(e)}/${FINAL_BATCH}`);
    const showsFinals = (x: { at: number; eventIds: Set<string> }) => x.at > finalAt && [...x.eventIds].some((id) => id.startsWith("final-"));
    await until(() => live.snapshots.some(showsFinals), 5_000).catch(() => {});
    // Nothing left waiting or in flight a few seconds on (a stuck worker keeps its jobs active).
    let counts: Record<string, number> = {};
    const idle = async () => {
      counts = (await admin(url, "/queue")).counts;
      return (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0) + (counts.prioritized ?? 0) === 0;
    };
    await until(idle, 5_000).catch(() => {});
    await sleep(300); // /readyz is sampled until after the final batch
    await readyz.stop();
    const streamEnded = live.ended;
    live.close();

    const failedRecords = (await admin(url, "/deliveries?status=failed&limit=1000")).deliveries.length;
    const pendingRecords = (await admin(url, "/deliveries?status=pending&limit=1000")).deliveries.length;
    const parked = await admin(url, "/parked");
    const failedAttempts = await metricSum(url, "deliveries_total", 'outcome="failed"');
    const dropped = await metricSum(url, "events_dropped_total");
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
    const refusedByStatus = tally(published.refused, (r) => r.status);
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

    // Ingress: what each request was answered; the 503s' span, and when the route said 200 again.
    const routeStatuses = tally(routed, (a) => a.status);
    const route503 = routed.filter((a) => a.status === 503);
    const route503Span = route503.length ? route503.at(-1)!.at - route503[0]!.at : 0;
    const lastRefusal = Math.max(killedAt, ...route503.map((a) => a.at));
    const routeBack = routed.filter((a) => a.status === 200 && a.sentAt >= lastRefusal).map((a) => a.at);
    const killToRoute = routeBack.length ? Math.min(...routeBack) - killedAt : Number.NaN;
    const routeOdd = routed.filter((a) => a.status !== 200 && a.status !== 503);
    const routeTail = routed.filter((a) => a.sentAt >= streamStart + (SECONDS - 2) * 1_000);

    // Relay: the Gateway's events as the endpoint received them.
    const relayed = [...pushed.keys()].filter((id) => arrived(fault.relayTo).has(id));
    const relayGap = longestGap(relayed.map((id) => arrived(fault.relayTo).get(id)!.at[0]!));
    const relayParked = (parked.parked as { eventId: string }[]).filter((p) => pushed.has(p.eventId)).length;

    // Dashboard: the snapshots' gaps while the stream was held, and the first to show the final batch.
    const snaps = live.snapshots;
    const snapGap = longestGap(snaps.map((x) => x.at));
    const errorSnaps = snaps.filter((x) => x.error).length;
    const beforeKill = snaps.filter((x) => x.at < killedAt).at(-1);
    const recovered = snaps.find(showsFinals);

    record(
      scenario,
      `${n(expected.length)} events × ${ENDPOINTS.length} endpoints, ${lost.length} lost, ${twice} delivered twice (${twiceNewId ? `${twiceNewId} with a new webhook-id` : "same webhook-id"}); ` +
        `publishes refused ${n(published.refused.length)} times (${n(refusedIds.size)} events, ${JSON.stringify(refusedByStatus)}) over ${s(refusedSpan)}; ` +
        `failover ${s(failoverMs)}, kill → publishes ${s(killToPublish)}, kill → ${fault.victim}'s deliveries ${s(killToDeliveries)}; ` +
        `longest gap ${fault.victim} ${s(victimGap.ms)}, all ${s(allGap.ms)}; readyz 503 for ${s(notReadyMs)} (${notReady.length} samples); ` +
        `final ${FINAL_BATCH} × ${ENDPOINTS.length} delivered in ${s(finalMs)}; ` +
        `ingress ${n(routed.length)} × create_flow ${JSON.stringify(routeStatuses)}, 503 over ${s(route503Span)}, kill → 200 again ${s(killToRoute)}; ` +
        `Gateway events ${relayed.length}/${pushed.size} delivered to ${fault.relayTo} (longest gap ${s(relayGap.ms)}), ${relayParked} parked, ${dropped} dropped; ` +
        `dashboard stream ${snaps.length} snapshots (${errorSnaps} "Redis is not answering"), longest gap ${s(snapGap.ms)}, ` +
        `${recovered ? `the final batch shown ${s(recovered.at - finalAt)} after it was sent` : "the final batch never shown"}${streamEnded ? `, ended: ${streamEnded}` : ", never reconnected"}`,
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
    t.diagnostic(`ingress answers other than 200 and 503: ${JSON.stringify(routeOdd.slice(0, 10))}`);
    t.diagnostic(`ingress 503 codes: ${JSON.stringify(tally(route503, (a) => a.code ?? "none"))}`);
    t.diagnostic(`service warnings and errors: ${JSON.stringify(logSummary(logs).slice(0, 30))}`);
    // Where the first few undelivered events stand, as the admin API tells it.
    for (const id of [...new Set(lost.map((pair) => pair.split("/")[1]!))].slice(0, 3)) {
      const res = await fetch(`${url}/admin/api/find?id=${encodeURIComponent(id)}`, { headers: { authorization: `Bearer ${ADMIN}` } });
      t.diagnostic(`undelivered ${id}: ${(await res.text()).slice(0, 1_500)}`);
    }
    t.diagnostic(
      `queue ${JSON.stringify(counts)}; records failed ${failedRecords}, pending ${pendingRecords}; parked ${parked.total} ${JSON.stringify(parked.parked.slice(0, 3))}; failed attempts ${failedAttempts}`,
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
    assert.equal(parked.total, 0, "nothing parked");
    assert.equal(failedAttempts, 0, "no delivery failed for good");
    // 503 from the moment the master is gone (not only once the cluster has marked it failed,
    // ~1.5 s later), until the failover: a load balancer stops sending while writes are refused.
    assert.ok(notReady.length > 0 && notReady[0]!.at - killedAt <= 1_000, `/readyz says 503 within 1 s of the kill (${runs.join(", ")})`);
    assert.ok(notReadyMs >= failoverMs / 2, `/readyz says 503 for most of the failover (${s(notReadyMs)} of ${s(failoverMs)})`);
    assert.equal(lastReadyz?.status, 200, "/readyz is 200 again after the failover");
    assert.equal(finalReady.status, 200);
    assert.equal(finalChecks.workers, true, "every worker runs");
    // Ingress fails closed while its limit keys' master is away, never anything else, and carries on.
    assert.deepEqual(routeOdd.slice(0, 5), [], "every route request is answered 200 or 503: no other status, no connection error");
    assert.ok(route503.length > 0, "the route fails closed (503) while the master holding its limit keys is away");
    assert.ok(
      route503.every((a) => a.code === "limits_unavailable"),
      `the 503s say the limit store is away: ${JSON.stringify(tally(route503, (a) => a.code ?? "none"))}`,
    );
    assert.ok(killToRoute < 15_000, `the route answers 200 again within 15 s of the kill (${s(killToRoute)})`);
    assert.ok(
      routeTail.every((a) => a.status === 200),
      `the stream's last 2 s of route requests are all 200: ${JSON.stringify(tally(routeTail, (a) => a.status))}`,
    );
    assert.ok(
      finalRoutes.every((a) => a.status === 200),
      `after recovery the route answers 200 at once: ${JSON.stringify(tally(finalRoutes, (a) => a.status))}`,
    );
    // The relay buffered what it could not store and stored it once the master was back.
    assert.equal(relayed.length, pushed.size, `every Gateway event delivered (${relayed.length}/${pushed.size})`);
    assert.equal(relayParked + dropped, 0, "no Gateway event parked or dropped");
    // The dashboard's stream carried on by itself, and shows deliveries made after the failover.
    assert.equal(streamEnded, undefined, "the dashboard's live stream was never ended (no reconnect needed)");
    assert.ok(recovered, "a snapshot after recovery shows the final batch's deliveries");
    assert.ok(beforeKill && [...recovered.eventIds].some((id) => !beforeKill.eventIds.has(id)), "it differs from the last one before the kill");
    assert.ok(snapGap.ms < 15_000, `snapshots resume within 15 s (longest gap ${s(snapGap.ms)})`);
  } catch (err) {
    t.diagnostic(`service output (tail): ${(svc?.output() ?? "").slice(-4_000)}`);
    throw err;
  } finally {
    dashboard?.close();
    await svc?.stop();
    await gw.stop();
    await Promise.all(rxs.map((rx) => rx.close()));
  }
}

/** The first of `/hooks/flows`, `/hooks/flows-1`, … whose rate-limit keys (hash tag `<path>|127.0.0.1`, src/redis-keys.ts) `onVictim` accepts. */
async function pathWhere(onVictim: (key: string) => Promise<boolean>): Promise<string> {
  for (let k = 0; k < 100; k++) {
    const path = k ? `/hooks/flows-${k}` : "/hooks/flows";
    if (await onVictim(`{${path}|127.0.0.1}`)) return path;
  }
  throw new Error("no route path whose limit keys are on the killed master");
}

/**
 * The Cluster scenario with a given cluster-node-timeout: the master holding one endpoint's lane
 * is SIGKILLed mid-stream, its replica takes over.
 */
async function clusterFailover(t: TestContext, scenario: string, nodeTimeoutMs: number) {
  const cluster = await startRedisCluster({ nodeTimeoutMs });
  try {
    const victim = ENDPOINTS[0]!;
    const placement = placeLanes(ENDPOINTS, SHARDS);
    const laneOf = (e: string) => slotOf(`{${shardTag(placement.get(e)!, SHARDS)}}`);
    const laneSlot = laneOf(victim);
    const victimPort = (await cluster.masterOf(laneSlot)).port;
    const onVictim = async (slotOrKey: number | string) => (await cluster.masterOf(slotOrKey)).port === victimPort;
    const relayTo = ENDPOINTS.find((e) => placement.get(e) !== placement.get(victim))!;
    assert.equal(await onVictim(laneOf(relayTo)), false, `${relayTo}'s lane is on another master than ${victim}'s`);
    await streamThroughFailover(
      t,
      scenario,
      { cluster: { nodes: cluster.urls }, prefix: "ocwh:", shards: SHARDS },
      {
        victim,
        ingressPath: await pathWhere(onVictim),
        relayTo,
        kill: async () => (await cluster.killMaster(laneSlot)).killedAt,
        waitForFailover: async () => (await cluster.waitForFailover()).ms,
      },
    );
  } finally {
    await cluster.dispose();
  }
}

describe("reliability: Redis failover under load", () => {
  test("cluster: the master holding one endpoint's lane is SIGKILLed mid-stream; its replica takes over, nothing is lost", async (t) => {
    // FAILOVER_NODE_TIMEOUT_MS: the Cluster's cluster-node-timeout (1 s by default here).
    await clusterFailover(t, "cluster failover", Number(process.env.FAILOVER_NODE_TIMEOUT_MS ?? 1_000));
  });

  // FAILOVER_LONG=1: the Cluster scenario with cluster-node-timeout 5 s (Redis's own default is
  // 15 s), a failover of 7–9 s. It found BullMQ's 15 s runRetryDelay leaving a lane idle, lanes
  // whose workers and their connection took no job after the failover (now replaced, engine.ts),
  // and records left pending (record.ts). It is not in the default run: in one run of five the
  // replaced workers took up to 40 s to deliver again, which breaks its "at once" (nothing was
  // lost, and nothing was left waiting or pending): docs/redis-topologies.md.
  test("cluster, a longer failover (cluster-node-timeout 5 s): every lane takes jobs again at once, nothing is lost, no record left pending", {
    skip: process.env.FAILOVER_LONG === "1" ? false : "FAILOVER_LONG=1 runs it",
  }, async (t) => {
    await clusterFailover(t, "cluster failover, 5 s node timeout", 5_000);
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
          ingressPath: "/hooks/flows",
          relayTo: ENDPOINTS[1]!,
          kill: async () => (await sentinel.killMaster()).killedAt,
          waitForFailover: async () => (await sentinel.waitForFailover()).ms,
        },
      );
    } finally {
      await sentinel.dispose();
    }
  });
});
