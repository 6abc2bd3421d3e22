import { hostname } from "node:os";
import { Queue, type Worker } from "bullmq";
import type { Logger } from "pino";
import type { Config } from "../config/schema.js";
import type { Metrics } from "../metrics.js";
import { closeRedis, type EgressConnections } from "../redis.js";
import type { SecretResolver } from "../secrets/resolve.js";
import { createAttemptProcessor } from "./attempt.js";
import { QUEUE, type EgressContext, type JobData } from "./context.js";
import { createDeliveryAgent } from "./deliver.js";
import { createEndpointHealth } from "./endpoint-health.js";
import { createDeliveryLog } from "./log.js";
import { createParkedStore } from "./parked.js";
import { createEventStore } from "./publish.js";
import { createPublisher } from "./publish-or-park.js";
import { createReplay } from "./replay.js";
import { createEgressScripts } from "./scripts.js";
import { createSsrfGuard } from "./ssrf.js";
import { createEndpointStats } from "./stats.js";
import { closeDeliveryWorker, startDeliveryWorker } from "./worker.js";
import { createKeys } from "../redis-keys.js";

/**
 * Outgoing webhooks on BullMQ, composed from its stages:
 * - publish.ts: an event and its delivery records stored, one job per delivery (publish-or-park.ts
 *   parks an event that fails for a reason other than Redis being away);
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
  const queue = new Queue<JobData>(QUEUE, { connection: connections.queue, prefix: keys.bullPrefix });
  queue.on("error", (err) => log.debug({ err: err.message }, "queue connection error"));
  const deliveryLog = createDeliveryLog(redis, { prefix, retentionMs: wh.retention, endpoints: [...endpoints.keys()] });
  const scripts = createEgressScripts(redis, deliveryLog, prefix);
  const ctx: EgressContext = {
    webhooks: wh,
    prefix,
    log,
    metrics: opts.metrics,
    endpoints,
    redis,
    queue,
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
  const agent = createDeliveryAgent(guard);
  const processJob = createAttemptProcessor(ctx, { secrets: opts.secrets, agent, guard, health });
  const longestTimeoutMs = Math.max(1_000, ...[...endpoints.values()].map((e) => e.timeoutMs));
  let worker: Worker<JobData> | undefined;
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
    queue,
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
    /** Undefined before startWorker; then whether the worker is running. */
    workerRunning: () => (worker ? worker.isRunning() : undefined),
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
    startWorker(workerOpts: { concurrency?: number } = {}) {
      const connection = connections.worker();
      connection.on("error", (err) => log.debug({ err: err.message }, "worker connection error"));
      worker = startDeliveryWorker(ctx, {
        connection,
        process: processJob,
        settled: replays.settled,
        concurrency: workerOpts.concurrency ?? wh.worker.concurrency,
        longestTimeoutMs,
      });
      return worker;
    },
    /** Stops the worker (letting attempts finish, worker.ts), then the queue and the connections. */
    async close() {
      clearInterval(trimmer);
      if (worker) await closeDeliveryWorker(worker, longestTimeoutMs + 1_000, log);
      await queue.close();
      await agent.close();
      parkedStore.close();
      await closeRedis(redis);
      await closeRedis(connections.queue);
    },
  };
}

export type Egress = Awaited<ReturnType<typeof createEgress>>;
