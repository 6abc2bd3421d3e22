import { hostname } from "node:os";
import type { Job, Processor, Worker } from "bullmq";
import type { Logger } from "pino";
import type { Config } from "../config/schema.js";
import type { Endpoint } from "../config/endpoints.js";
import type { Metrics } from "../metrics.js";
import { closeRedis, type EgressConnections, type RedisClient } from "../redis.js";
import type { SecretResolver } from "../secrets/resolve.js";
import { createAttemptProcessor } from "./attempt.js";
import type { EgressContext, JobData } from "./context.js";
import { createDeliveryAgent } from "./deliver.js";
import { createEndpointHealth } from "./endpoint-health.js";
import { createLanes, type QueueRef } from "./lanes.js";
import { createDeliveryLog } from "./log.js";
import { createParkedStore } from "./parked.js";
import { createEventStore } from "./publish.js";
import { createPublisher } from "./publish-or-park.js";
import { createReplay } from "./replay.js";
import { createEgressScripts } from "./scripts.js";
import { createSsrfGuard } from "./ssrf.js";
import { createEndpointStats } from "./stats.js";
import { closeDeliveryWorkers, startDeliveryWorker } from "./worker.js";
import { createKeys } from "../redis-keys.js";

/** How often a running replica looks for queues that hold jobs but are no lane (engine.ts startWorker). */
const STRAY_SCAN_MS = 60_000;
/**
 * A lane with jobs waiting, none active, no hold, and no job started by this replica for this long
 * has a worker that stopped taking jobs: the replica's delivery workers are replaced, with their
 * connection (startWorker). Checked every third of it.
 */
const LANE_IDLE_MS = 4_500;

/**
 * Outgoing webhooks on BullMQ, composed from its stages:
 * - publish.ts: an event and its delivery records stored, one job per delivery in its endpoint's
 *   lane (lanes.ts: one BullMQ queue per endpoint; publish-or-park.ts parks an event that fails
 *   for a reason other than Redis being away);
 * - attempt.ts: admit (gate.ts: the endpoint's gate) → prepare (body, signature) → send (deliver.ts) →
 *   settle (record.ts: log, breaker, retry or give up), run by worker.ts;
 * - replay.ts: manual attempts; endpoint-health.ts: disable, enable, status; stats.ts: the last hour.
 * Event ids are never used raw in a key or a job id (ids.ts). The connections come from the
 * caller (src/redis.ts `openEgressConnections`), and are closed by close().
 */
export async function createEgress(opts: { config: Config; secrets: SecretResolver; log: Logger; metrics?: Metrics; connections: EgressConnections }) {
  const { config, connections } = opts;
  const wh = config.webhooks;
  const prefix = config.redis.prefix;
  const log = opts.log.child({ component: "egress" });
  const endpoints = new Map(wh.endpoints.map((e) => [e.name, e]));
  const redis = connections.producer;
  const keys = createKeys(prefix);
  const lanes = createLanes(connections.queue, keys.bullPrefix, endpoints, config.redis.shards);
  const deliveryLog = createDeliveryLog(redis, { prefix, retentionMs: wh.retention, endpoints: [...endpoints.keys()] });
  const scripts = createEgressScripts(redis, deliveryLog, prefix);
  const ctx: EgressContext = {
    webhooks: wh,
    prefix,
    log,
    metrics: opts.metrics,
    endpoints,
    redis,
    lanes,
    deliveryLog,
    scripts,
    keys: { ...scripts.endpointKeys, replay: keys.replay },
  };

  const parkedStore = createParkedStore(redis, {
    prefix,
    retentionMs: wh.retention,
    onDrop: (dropped) => {
      opts.metrics?.eventsDropped.inc(dropped.length);
      log.error({ dropped: dropped.slice(0, 20) }, "parked events dropped: the oldest beyond the cap, or entries only in this replica's memory at shutdown");
    },
  });
  opts.metrics?.setCollectors({ parked: () => parkedStore.count() });
  const publisher = createPublisher({
    store: createEventStore(ctx, wh.instanceId ?? hostname()),
    parked: parkedStore,
    ready: () => redis.status === "ready" && connections.queue.status === "ready",
    log,
    metrics: opts.metrics,
  });
  const { publish } = publisher;
  const health = createEndpointHealth(ctx, publish);
  const replays = createReplay(ctx);
  const stats = createEndpointStats(redis, prefix);
  const guard = createSsrfGuard({ allowCidrs: wh.allowPrivateCidrs });
  // Connections per origin: as many as this replica's lanes can have attempts in flight (endpoints
  // may share an origin), so a slow receiver's lane is held by its own concurrency, not by a pool
  // of 64 shared with the rest (bench:open-loop's 100 ms receiver topped out at 64 × 10/s).
  const slots = [...endpoints.values()].reduce((n, e) => n + Math.min(e.concurrency, wh.worker.concurrency), 0);
  const agent = createDeliveryAgent(guard, { connections: Math.max(64, slots) });
  /**
   * The attempts run with their reads and scripts on the workers' own connection (startWorker),
   * where BullMQ fetches and completes jobs: a delivered attempt's record then leaves in the same
   * write as the job's completion (record.ts).
   */
  let processJob: ReturnType<typeof createAttemptProcessor> = () => Promise.reject(new Error("the worker has not started"));
  /**
   * A job of a queue that is not a lane (an earlier version's single queue, the lane of an
   * endpoint no longer configured) moves to its endpoint's lane when it comes due, with the
   * attempts it has left, so it keeps to the endpoint's limits; with no such endpoint it fails
   * as any delivery to a removed endpoint does.
   */
  const moveToLane = async (job: Job<JobData>) => {
    const e = endpoints.get(job.data.endpoint);
    if (!e) return processJob(job);
    const before = (job.data.attemptsBefore ?? 0) + job.attemptsMade;
    const { attempts = 1, backoff, removeOnComplete, removeOnFail } = job.opts;
    await lanes.queue(e.name).add(
      job.name,
      { ...job.data, attemptsBefore: before },
      {
        jobId: job.id!,
        attempts: Math.max(1, attempts - job.attemptsMade),
        ...(backoff !== undefined ? { backoff } : {}),
        ...(removeOnComplete !== undefined ? { removeOnComplete } : {}),
        ...(removeOnFail !== undefined ? { removeOnFail } : {}),
      },
    );
  };
  const longestTimeoutMs = Math.max(1_000, ...[...endpoints.values()].map((e) => e.timeoutMs));
  const workers: Worker<JobData>[] = [];
  let workerConnection: ReturnType<EgressConnections["worker"]> | undefined;
  let strayTimer: NodeJS.Timeout | undefined;
  let idleTimer: NodeJS.Timeout | undefined;
  // The delivery indexes drop entries past the retention (their records have expired) on a timer,
  // traffic or not, so an endpoint that goes quiet does not keep a retention's worth of ids.
  const trimmer = setInterval(
    () => {
      for (const name of endpoints.keys()) void deliveryLog.trim(name).catch(() => {});
    },
    Math.min(60_000, Math.max(1_000, wh.retention)),
  );
  trimmer.unref();

  return {
    lanes,
    /** BullMQ job counts by state, over every lane or one endpoint's. */
    jobCounts: (endpoint?: string) => lanes.counts(endpoint),
    log: deliveryLog,
    /**
     * Publishes an event (any id: see ids.ts). Resolves once it is stored and queued, or parked
     * (`parked` set) when it failed for good; throws only when Redis is away (retry the same id).
     */
    publish,
    /** Parks an event the caller gave up on (the relay's, after repeated failures); never throws. */
    park: publisher.park,
    /** Parked events: list, get, replay (publish again), discard. */
    parked: { list: publisher.list, get: publisher.get, replay: publisher.replay, discard: publisher.discard, count: publisher.count },
    replay: replays.replay,
    replayFailed: replays.replayFailed,
    endpointStatus: health.status,
    /** Success rate and latency of each configured endpoint (or one) over the last hour (stats.ts). */
    stats: (only?: string) => Promise.all([...endpoints.keys()].filter((n) => only === undefined || n === only).map((n) => stats.read(n))),
    hasEndpoint: (name: string) => endpoints.has(name),
    /** The workers startWorker started (one per lane, and one per queue being drained). */
    workers: (): readonly Worker<JobData>[] => workers,
    /** Undefined before startWorker; then whether every lane's worker is running. */
    workerRunning: () => (workers.length ? workers.every((w) => w.isRunning()) : undefined),
    isDisabled: health.isDisabled,
    /** Sends a `webhook.test` event to one endpoint, whatever it subscribes to (the CLI's `endpoints test`). */
    async sendTest(name: string) {
      if (!endpoints.has(name)) return undefined;
      return publish({
        type: "webhook.test",
        data: { endpoint: name, message: "A test delivery from openclaw-webhooks." },
        source: "system",
        onlyEndpoint: name,
      });
    },
    disable: health.disableByName,
    enable: health.enable,
    /**
     * Starts this replica's workers: one per lane, at the endpoint's concurrency (at most
     * `webhooks.worker.concurrency`), and one for each queue that holds jobs but is no lane here
     * (the single queue of earlier versions, the lanes of endpoints no longer configured). Resolves
     * once all are ready.
     */
    async startWorker(workerOpts: { concurrency?: number } = {}) {
      await lanes.configure();
      const perReplica = workerOpts.concurrency ?? wh.worker.concurrency;
      let connection: RedisClient;
      const start = (queue: QueueRef, process: Processor<JobData>, concurrency: number, timeoutMs: number) => {
        const w = startDeliveryWorker(ctx, { queue, connection, process, settled: replays.settled, concurrency, timeoutMs });
        workers.push(w);
        return w;
      };
      const lastStart = new Map<string, number>();
      const startLane = (e: Endpoint) => {
        const w = start(lanes.ref(e.name), processJob, Math.min(e.concurrency, perReplica), e.timeoutMs);
        lastStart.set(e.name, Date.now());
        w.on("active", () => lastStart.set(e.name, Date.now()));
      };
      const strays: QueueRef[] = [];
      /** A new shared connection, the attempt processor on it, and every lane's and drained queue's worker on it. */
      const spawn = () => {
        connection = workerConnection = connections.worker();
        connection.on("error", (err) => log.debug({ err: err.message }, "worker connection error"));
        const workerCtx: EgressContext = { ...ctx, scripts: createEgressScripts(connection, deliveryLog, prefix) };
        processJob = createAttemptProcessor(workerCtx, { secrets: opts.secrets, agent, guard, health });
        for (const e of endpoints.values()) startLane(e);
        for (const ref of strays) start(ref, moveToLane, perReplica, longestTimeoutMs);
      };
      spawn();
      // Workers that stopped taking jobs are replaced, with their connection. BullMQ's workers
      // carry on by themselves after Redis comes back as a rule, but after a Cluster failover of
      // several seconds lanes were seen with jobs waiting and none taken, and new workers on the
      // same connection took none either (test/reliability/failover.test.ts, the 5 s node timeout).
      // A lane that is held (an open circuit: its rate-limit TTL), busy elsewhere (active jobs) or
      // slow by its rate (a job started lately) is left alone.
      const replaceIdle = async () => {
        const idle: { endpoint: string; waiting: number }[] = [];
        for (const e of endpoints.values()) {
          if (Date.now() - (lastStart.get(e.name) ?? 0) < LANE_IDLE_MS) continue;
          const q = lanes.queue(e.name);
          const [c, holdMs] = await Promise.all([q.getJobCounts("waiting", "active"), q.getRateLimitTtl()]);
          if (!c.waiting || c.active || holdMs > 0 || Date.now() - (lastStart.get(e.name) ?? 0) < LANE_IDLE_MS) continue;
          idle.push({ endpoint: e.name, waiting: c.waiting });
        }
        if (!idle.length) return;
        log.warn({ lanes: idle }, "lanes took no job while jobs waited: new delivery workers on a new connection");
        for (const { endpoint } of idle) opts.metrics?.laneWorkersReplaced.inc({ endpoint });
        const [old, oldConnection] = [workers.splice(0), connection];
        spawn();
        void closeDeliveryWorkers(old, oldConnection, longestTimeoutMs + 1_000, log);
      };
      const drainStrays = async () => {
        for (const stray of await lanes.strays(redis)) {
          if (strays.some((r) => r.prefix === stray.prefix && r.name === stray.name)) continue;
          log.info({ queue: `${stray.prefix}:${stray.name}` }, "draining a queue that is not an endpoint's lane");
          strays.push(stray);
          start(stray, moveToLane, perReplica, longestTimeoutMs);
        }
      };
      await drainStrays();
      await Promise.all(workers.map((w) => w.waitUntilReady()));
      // Looked for again every minute: during a rolling restart that changes the endpoints or
      // redis.shards, replicas still on the old config keep adding to lanes this one does not
      // work, and stop when they are replaced; their jobs must not wait for this replica's restart.
      strayTimer = setInterval(
        () => void drainStrays().catch((err: Error) => log.warn({ err: err.message }, "could not look for queues to drain")),
        STRAY_SCAN_MS,
      );
      strayTimer.unref();
      idleTimer = setInterval(
        () => void replaceIdle().catch((err: Error) => log.debug({ err: err.message }, "could not check the lanes for idle workers")),
        LANE_IDLE_MS / 3,
      );
      idleTimer.unref();
    },
    /** Stops the workers (letting attempts finish, worker.ts), then the lanes and the connections. */
    async close() {
      clearInterval(trimmer);
      clearInterval(strayTimer);
      clearInterval(idleTimer);
      await closeDeliveryWorkers(workers, workerConnection, longestTimeoutMs + 1_000, log);
      await lanes.close();
      await agent.close();
      parkedStore.close();
      await closeRedis(redis);
      await closeRedis(connections.queue);
    },
  };
}

export type Egress = Awaited<ReturnType<typeof createEgress>>;
