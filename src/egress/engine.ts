import { hostname } from "node:os";
import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from "bullmq";
import { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Config } from "../config/schema.js";
import { matchesEvent, originOf, passesFilter, type Endpoint } from "../config/endpoints.js";
import { closeRedis } from "../redis.js";
import type { SecretResolver } from "../secrets/resolve.js";
import { renderDeep, renderTemplate } from "../util/template.js";
import { DEFAULT_RETRY, maxAttempts, retryDelay, type RetryPolicy } from "./backoff.js";
import { maskRequestHeaders } from "./attempt-detail.js";
import { attemptDelivery, createDeliveryAgent, type AttemptResult } from "./deliver.js";
import { createEnvelope, type Envelope } from "./envelope.js";
import { deliveryId } from "./ids.js";
import { createDeliveryLog, type DeliveryStatus } from "./log.js";
import { createParkedStore } from "./parked.js";
import { createPublisher, type PublishInput } from "./publish-or-park.js";
import { createEgressScripts } from "./scripts.js";
import type { Metrics } from "../metrics.js";
import { signatureHeaders } from "./sign.js";
import { createSsrfGuard } from "./ssrf.js";
import { createEndpointStats } from "./stats.js";

type JobData = { deliveryId: string; eventId: string; endpoint: string; manual?: boolean };
const QUEUE = "deliveries";

/** A failed attempt, carrying the delay chosen for the next one to the backoff strategy. */
class AttemptFailed extends Error {
  constructor(message: string, readonly delayMs: number | undefined) {
    super(message);
    this.name = "AttemptFailed";
  }
}

/** Why a replay was not started: the admin API maps these to 404 / 409. */
export class ReplayRefused extends Error {
  constructor(readonly code: "not_found" | "delivery_pending" | "replay_pending" | "endpoint_disabled" | "endpoint_unknown", message: string) {
    super(message);
    this.name = "ReplayRefused";
  }
}

export function retryPolicy(e: Endpoint): RetryPolicy {
  if (!e.retry) return DEFAULT_RETRY;
  return "schedule" in e.retry ? { kind: "schedule", delaysMs: e.retry.schedule } : { kind: "exponential", ...e.retry };
}

const jitter = (min: number, max: number) => min + Math.floor(Math.random() * (max - min));

/**
 * Outgoing webhooks on BullMQ.
 *
 * `publish` stores the event (first writer wins) and one pending delivery record per matching
 * endpoint in one script call, then adds one job per delivery still pending, whose id is the
 * delivery id (a re-add is a no-op): a publish that failed half way can be repeated with the same
 * id and loses nothing, and two replicas publishing the same Gateway broadcast deliver it once.
 * Event ids are never used raw in a key or a job id (ids.ts). A publish that fails for a reason
 * other than Redis being away parks the event (publish-or-park.ts) instead of throwing.
 *
 * Each attempt first passes the endpoint's gate in Redis (one script: disabled, circuit breaker,
 * concurrency lease, rate), so limits hold across replicas. A job the gate holds back is moved to
 * the delayed set without using an attempt: a failing or slow endpoint makes its own deliveries
 * wait and leaves the worker to the others. The worker signs each attempt afresh, POSTs it, logs
 * it, and leaves retry timing to the endpoint's policy through BullMQ's backoff.
 */
export async function createEgress(opts: { config: Config; secrets: SecretResolver; log: Logger; metrics?: Metrics }) {
  const { config, secrets } = opts;
  const wh = config.webhooks;
  const url = config.redis.url;
  if (!url) throw new Error("egress needs redis.url");
  const P = config.redis.prefix;
  const log = opts.log.child({ component: "egress" });
  const endpoints = new Map(wh.endpoints.map((e) => [e.name, e]));
  const instanceId = wh.instanceId ?? hostname();
  // The producer fails fast when Redis is away (publish answers 503); workers block and retry.
  const redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true, enableAutoPipelining: true });
  redis.on("error", () => {});
  await redis.connect();
  // BullMQ gets a connection of its own: it defines some fifty scripts on the connection it is
  // given, and ioredis copies every defined script onto each pipeline it builds, which made our
  // own (auto-pipelined) commands on a shared connection ~10% of a delivery's CPU.
  const queueRedis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true });
  queueRedis.on("error", () => {});
  await queueRedis.connect();
  const queue = new Queue<JobData>(QUEUE, { connection: queueRedis, prefix: `${P}bull` });
  queue.on("error", (err) => log.debug({ err: err.message }, "queue connection error"));
  const deliveryLog = createDeliveryLog(redis, { prefix: P, retentionMs: wh.retention, endpoints: [...endpoints.keys()] });
  const scripts = createEgressScripts(redis, deliveryLog, P);
  const stats = createEndpointStats(redis, P);
  const guard = createSsrfGuard({ allowCidrs: wh.allowPrivateCidrs });
  const agent = createDeliveryAgent(guard);
  const key = {
    ...scripts.endpointKeys,
    replay: (id: string) => `${P}replay:${id}`,
  };
  const parkedStore = createParkedStore(redis, {
    prefix: P,
    retentionMs: wh.retention,
    onDrop: (dropped) => {
      opts.metrics?.eventsDropped.inc(dropped.length);
      log.error({ dropped: dropped.slice(0, 20) }, "parked events dropped: the oldest beyond the cap, or entries only in this replica's memory at shutdown");
    },
  });
  opts.metrics?.setCollectors({ parked: () => parkedStore.count() });
  const longestTimeout = Math.max(1_000, ...[...endpoints.values()].map((e) => e.timeoutMs));
  let worker: Worker<JobData> | undefined;
  let finishes = 0;

  /** Stores the event and queues its jobs, or throws (publish-or-park decides what a throw means). */
  async function store(input: PublishInput & { id: string }, repair: boolean) {
    const event = createEnvelope({ type: input.type, data: input.data, id: input.id, instanceId });
    const targets = input.onlyEndpoint
      ? [...endpoints.values()].filter((e) => e.name === input.onlyEndpoint)
      : [...endpoints.values()].filter((e) => e.enabled && matchesEvent(e.events, event.type) && passesFilter(e, event.data));
    const ids = targets.map((e) => deliveryId(event.id, e.name));
    // A repeated id is told by the event itself, kept for the retention: no key per id besides
    // it. (A 24 h key per id, as before, grew Redis by ~200 bytes per publish for a day and slowed
    // it as it grew.)
    const { isNew, flags } = targets.length
      ? await scripts.publish({ id: event.id, type: event.type, json: JSON.stringify(event) }, targets.map((e, i) => ({ deliveryId: ids[i]!, endpoint: e.name })), Date.now(), repair)
      : { isNew: true, flags: [] as number[] };
    const jobs = targets.flatMap((e, i) =>
      flags[i] === 1
        ? [
            {
              name: event.type,
              data: { deliveryId: ids[i]!, eventId: event.id, endpoint: e.name },
              opts: {
                jobId: ids[i]!,
                attempts: maxAttempts(retryPolicy(e)),
                backoff: { type: "endpoint" },
                // Nothing of a delivery outlives the retention: a completed job kept longer would
                // swallow the job of the same id published again once its event has expired.
                removeOnComplete: { age: Math.min(3_600, Math.ceil(wh.retention / 1000)), count: 10_000 },
                removeOnFail: { age: Math.ceil(wh.retention / 1000) },
              },
            },
          ]
        : [],
    );
    // One job (the usual case) is one script call; addBulk wraps even one job in a MULTI.
    if (jobs.length === 1) await queue.add(jobs[0]!.name, jobs[0]!.data, jobs[0]!.opts);
    else if (jobs.length) await queue.addBulk(jobs);
    // A repeat still adds the jobs of deliveries left pending (a publish whose job was not added,
    // answered 503): that is what makes retrying with the same id safe.
    const queued = ids.filter((_, i) => flags[i] === 1);
    if (!isNew) return { id: event.id, duplicate: true, deliveries: [] as string[], queued };
    opts.metrics?.eventsReceived.inc({ source: input.source ?? "api", type: opts.metrics.eventType(event.type) });
    return { id: event.id, duplicate: false, deliveries: ids.filter((_, i) => flags[i] !== 0), queued };
  }

  const publisher = createPublisher({ store, parked: parkedStore, ready: () => redis.status === "ready" && queueRedis.status === "ready", log, metrics: opts.metrics });
  const { publish } = publisher;

  function body(e: Endpoint, event: Envelope): string {
    if (e.transform === undefined) return JSON.stringify(event);
    return typeof e.transform === "string" ? renderTemplate(e.transform, event) : JSON.stringify(renderDeep(e.transform, event));
  }

  /**
   * Disables an endpoint (410, or Svix's rule) and says so with an `endpoint.disabled` event. The
   * event goes to every subscriber and the log to whoever reads logs, so both name the endpoint by
   * its name and origin: a URL's path and query are often its credential (Slack's
   * `/services/T…/B…/<secret>`, `?token=`). The admin API, behind the admin token, shows it whole.
   */
  async function disable(e: Endpoint, reason: string) {
    const set = await redis.hsetnx(key.state(e.name), "disabled", JSON.stringify({ reason, at: Date.now() }));
    if (set !== 1) return;
    const origin = originOf(e.url);
    log.warn({ endpoint: e.name, origin, reason }, "endpoint disabled");
    await publish({ type: "endpoint.disabled", data: { endpoint: e.name, origin, reason }, id: `endpoint_disabled_${e.name}_${Date.now()}`, source: "system" }).catch(
      (err: Error) => log.error({ err: err.message }, "endpoint.disabled event not stored"),
    );
  }

  async function processJob(job: Job<JobData>, token?: string): Promise<void> {
    const { deliveryId: id, eventId, endpoint: name, manual } = job.data;
    const e = endpoints.get(name);
    if (!e) throw new UnrecoverableError(`endpoint ${name} is no longer configured`);
    const leaseId = `${job.id}:${job.attemptsStarted}`;
    const gate = await scripts.gate(e, eventId, leaseId);
    if (gate[0] === 0) {
      const [, reason, waitMs] = gate;
      if (reason === "disabled") {
        await deliveryLog.markFailed(id, name, "endpoint disabled");
        throw new UnrecoverableError(`endpoint ${name} is disabled`);
      }
      // Held back, not failed: the attempt is not used up.
      const wait = reason === "circuit_open" ? waitMs + jitter(0, 1_000) : reason === "rate_limited" ? waitMs + jitter(0, 20) : jitter(50, 250);
      await job.moveToDelayed(Date.now() + wait, token);
      throw new DelayedError();
    }
    const isProbe = gate[1] === 1;
    const raw = gate[2];
    let result: AttemptResult;
    let requestHeaders: Record<string, string>;
    let payload: string;
    let attempt: number;
    let from: DeliveryStatus = "pending";
    try {
      if (!raw) throw new UnrecoverableError(`event ${eventId} has expired`);
      const event = JSON.parse(raw) as Envelope;
      const inputs = Array.isArray(e.secret) ? e.secret : [e.secret];
      const resolved = (await Promise.all(inputs.map((s) => secrets.resolve(s, { standardKey: true })))).filter((s): s is string => s !== undefined);
      if (!resolved.length) throw new UnrecoverableError(`endpoint ${name}: no signing secret resolves`);
      if (manual) {
        const st = await deliveryLog.state(id);
        attempt = (st?.attempts ?? 0) + 1;
        from = st?.status ?? "failed";
      } else attempt = job.attemptsMade + 1;
      payload = body(e, event);
      const custom = customHeaders(e.headers);
      const headers = {
        ...custom,
        "content-type": "application/json",
        "user-agent": "openclaw-webhooks/1",
        "x-openclaw-event": event.type,
        ...signatureHeaders({ id, timestamp: Math.floor(Date.now() / 1000), body: payload, secrets: resolved, schemes: e.signing }),
      };
      result = await attemptDelivery({ url: e.url, headers, body: payload, timeoutMs: e.timeoutMs, dispatcher: agent, guard });
      requestHeaders = maskRequestHeaders(headers, envHeaders(e.headers));
    } catch (err) {
      await redis.zrem(key.inflight(name), leaseId).catch(() => {});
      if (err instanceof UnrecoverableError) await deliveryLog.markFailed(id, name, err.message).catch(() => {});
      throw err;
    }
    const ok = result.outcome === "delivered";
    const policy = retryPolicy(e);
    const last = manual || attempt >= maxAttempts(policy);
    const status: DeliveryStatus = ok ? "delivered" : result.outcome === "disable" || last ? "failed" : "pending";
    // Chosen once (with jitter), logged as nextAttemptAt, and handed to BullMQ's backoff.
    const nextDelay = status === "pending" ? retryDelay(policy, attempt + 1, { retryAfterMs: result.retryAfterMs }) : undefined;
    const at = Date.now();
    const [circuit, failingSince] = await scripts.finish(
      { endpoint: name, leaseId, ok, isProbe, breaker: wh.circuitBreaker },
      {
        id,
        from,
        status,
        lastStatus: result.status,
        lastError: result.error,
        attempt: {
          attempt,
          trigger: manual ? "manual" : "scheduled",
          at,
          ...(result.status !== undefined ? { status: result.status } : {}),
          ...(result.errorClass ? { errorClass: result.errorClass } : {}),
          ...(result.error ? { error: result.error } : {}),
          durationMs: result.durationMs,
          requestHeaders,
          ...(result.responseHeaders ? { responseHeaders: result.responseHeaders } : {}),
          responseBody: result.responseBody,
          ...(result.responseTruncated ? { responseTruncated: true } : {}),
          ...(nextDelay !== undefined ? { nextAttemptAt: at + nextDelay } : {}),
        },
      },
    );
    if ((finishes++ & 1023) === 0) void deliveryLog.trim(name).catch(() => {});
    if (opts.metrics) {
      const outcome = ok ? "delivered" : result.outcome === "disable" ? "disabled" : status === "failed" ? "failed" : "retry";
      opts.metrics.deliveries.inc({ endpoint: name, outcome });
      opts.metrics.deliveryDuration.observe({ endpoint: name }, result.durationMs / 1000);
      opts.metrics.deliveryAttempt.observe({ endpoint: name }, attempt);
    }
    if (circuit === "opened") log.warn({ endpoint: name, probe: isProbe }, "circuit opened: deliveries to this endpoint wait");
    else if (isProbe && ok) log.info({ endpoint: name }, "circuit closed: endpoint is back");
    if (ok) return;
    if (result.outcome === "disable") {
      await disable(e, `410 Gone from ${originOf(e.url)}`);
      throw new UnrecoverableError("410 Gone: endpoint disabled");
    }
    if (status === "failed" && !manual) {
      // Svix's rule: an exhausted delivery on an endpoint with no success for `disableAfter`.
      const since = Number(failingSince);
      if (since && Date.now() - since >= wh.disableAfter) {
        await disable(e, `no successful delivery since ${new Date(since).toISOString()} and delivery ${id} exhausted its attempts`);
      }
    }
    if (manual) throw new UnrecoverableError(result.error ?? "failed");
    throw new AttemptFailed(result.error ?? "failed", nextDelay);
  }

  /**
   * One manual, one-shot attempt of a delivery. A marker taken with SET NX makes a second request
   * for the same delivery fail (409) until the first attempt has ended, so no replay runs twice
   * even when asked twice at once. A delivery still pending is left to its schedule.
   */
  async function replay(id: string): Promise<{ jobId: string }> {
    const { rec, e } = await replayable(id);
    const jobId = `${id}_replay_${Date.now()}`;
    const taken = await redis.set(key.replay(id), jobId, "PX", 2 * e.timeoutMs + 60_000, "NX");
    if (taken !== "OK") throw new ReplayRefused("replay_pending", "a replay of this delivery is already under way");
    try {
      await queue.add(rec.eventType, { deliveryId: id, eventId: rec.eventId, endpoint: e.name, manual: true }, { jobId, attempts: 1, removeOnComplete: true, removeOnFail: { age: 3_600 } });
    } catch (err) {
      await redis.del(key.replay(id)).catch(() => {});
      throw err;
    }
    return { jobId };
  }

  /** The checks a replay makes before it takes its marker; throws ReplayRefused. */
  async function replayable(id: string) {
    // The record's own fields (one HMGET), not its attempts.
    const [rec] = await deliveryLog.summaries([id]);
    if (!rec) throw new ReplayRefused("not_found", `no delivery ${id}`);
    const e = endpoints.get(rec.endpoint);
    if (!e) throw new ReplayRefused("endpoint_unknown", `endpoint ${rec.endpoint} is no longer configured`);
    if (rec.status === "pending") throw new ReplayRefused("delivery_pending", "the delivery is still scheduled; it will be attempted on its schedule");
    if (await redis.hexists(key.state(e.name), "disabled")) throw new ReplayRefused("endpoint_disabled", `endpoint ${e.name} is disabled; enable it first`);
    return { rec, e };
  }

  /**
   * Replays every failed delivery of an endpoint updated since `since` (ms); counts what started.
   * A dry run makes the same checks, the replay marker included, and starts nothing: its `started`
   * is what the real run would start unless deliveries change in between (Convoy's dry run).
   */
  async function replayFailed(endpoint: string, since: number, opts: { dryRun?: boolean } = {}) {
    if (!endpoints.has(endpoint)) throw new ReplayRefused("endpoint_unknown", `no endpoint ${endpoint}`);
    if (await redis.hexists(key.state(endpoint), "disabled")) throw new ReplayRefused("endpoint_disabled", `endpoint ${endpoint} is disabled; enable it first`);
    const ids = await deliveryLog.list({ status: "failed", endpoint, since, limit: 10_000 });
    let started = 0;
    const skipped: { id: string; reason: string }[] = [];
    for (const id of ids) {
      try {
        if (opts.dryRun) {
          await replayable(id);
          if (await redis.exists(key.replay(id))) throw new ReplayRefused("replay_pending", "a replay of this delivery is already under way");
        } else await replay(id);
        started++;
      } catch (err) {
        if (!(err instanceof ReplayRefused)) throw err;
        skipped.push({ id, reason: err.code });
      }
    }
    return { dryRun: opts.dryRun === true, started, skipped };
  }

  async function endpointStatus() {
    return Promise.all(
      [...endpoints.values()].map(async (e) => {
        const [breaker, inFlight] = await Promise.all([redis.hgetall(key.state(e.name)), redis.zcount(key.inflight(e.name), Date.now(), "+inf")]);
        const disabledRaw = breaker.disabled;
        const n = (v: string | undefined) => (v ? Number(v) : undefined);
        return {
          name: e.name,
          url: e.url,
          events: e.events,
          enabled: e.enabled && !disabledRaw,
          disabled: disabledRaw ? (JSON.parse(disabledRaw) as { reason: string; at: number }) : undefined,
          circuit: {
            state: (breaker.state as "open" | "closed" | undefined) ?? "closed",
            failures: n(breaker.failures) ?? 0,
            openUntil: n(breaker.openUntil),
            lastSuccessAt: n(breaker.lastSuccessAt),
            failingSince: n(breaker.failingSince),
          },
          inFlight,
        };
      }),
    );
  }

  function onSettled(job: Job<JobData> | undefined) {
    if (job?.data.manual) void redis.del(key.replay(job.data.deliveryId)).catch(() => {});
  }

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
    replay,
    replayFailed,
    endpointStatus,
    /** Success rate and latency of each configured endpoint (or one) over the last hour (stats.ts). */
    stats: (only?: string) => Promise.all([...endpoints.keys()].filter((n) => only === undefined || n === only).map((n) => stats.read(n))),
    hasEndpoint: (name: string) => endpoints.has(name),
    /** Undefined before startWorker; then whether the worker is running. */
    workerRunning: () => (worker ? worker.isRunning() : undefined),
    isDisabled: async (name: string) => (await redis.hexists(key.state(name), "disabled")) === 1,
    /** Sends a `webhook.test` event to one endpoint, whatever it subscribes to (the CLI's `endpoints test`). */
    async sendTest(name: string) {
      if (!endpoints.has(name)) return undefined;
      return publish({ type: "webhook.test", data: { endpoint: name, message: "A test delivery from openclaw-webhooks." }, source: "system", onlyEndpoint: name });
    },
    /** Disables an endpoint by name (an operator's choice); false when there is no such endpoint. */
    async disable(name: string, reason: string) {
      const e = endpoints.get(name);
      if (!e) return false;
      await disable(e, reason);
      return true;
    },
    /** Re-enables a disabled endpoint and closes its circuit; failed deliveries can then be replayed. */
    async enable(name: string) {
      if (!endpoints.has(name)) return false;
      await redis.del(key.state(name));
      return true;
    },
    startWorker(workerOpts: { concurrency?: number } = {}) {
      const workerRedis = new Redis(url, { maxRetriesPerRequest: null });
      workerRedis.on("error", (err) => log.debug({ err: err.message }, "worker connection error"));
      worker = new Worker<JobData>(QUEUE, processJob, {
        connection: workerRedis,
        prefix: `${P}bull`,
        concurrency: workerOpts.concurrency ?? wh.worker.concurrency,
        // The lock outlives the longest attempt, so no attempt runs twice at once; a worker that
        // dies loses its lock and the stalled check hands its jobs to another (same webhook-id).
        lockDuration: 2 * longestTimeout + 2_000,
        stalledInterval: wh.worker.stalledIntervalMs,
        maxStalledCount: 1_000,
        settings: {
          backoffStrategy: (attemptsMade, _type, err, job) => {
            if (err instanceof AttemptFailed && err.delayMs !== undefined) return err.delayMs;
            // Any other error thrown by an attempt (Redis hiccup while logging): the policy's delay.
            const e = endpoints.get((job?.data as JobData | undefined)?.endpoint ?? "");
            return (e && retryDelay(retryPolicy(e), attemptsMade + 1)) ?? -1;
          },
        },
      });
      worker.on("error", (err) => log.error({ err: err.message }, "worker error"));
      worker.on("completed", onSettled);
      worker.on("failed", onSettled);
      return worker;
    },
    /**
     * Lets the worker finish its current attempts (bounded by the longest endpoint timeout plus a
     * second), then drops its connections: BullMQ's close can wait forever on a blocking
     * connection that lived through a Redis restart. An attempt cut off here is retried later
     * with the same webhook-id (at least once), never lost.
     */
    async close() {
      if (worker) {
        const w = worker;
        const graceMs = longestTimeout + 1_000;
        let timer: NodeJS.Timeout | undefined;
        const finished = await Promise.race([
          w.close().then(() => true),
          new Promise<false>((r) => (timer = setTimeout(() => r(false), graceMs))),
        ]);
        clearTimeout(timer);
        if (!finished) {
          // Neither close(true) nor disconnect() is awaited: both can wait on the same stuck
          // blocking connection. Dropping the connections ends whatever is left.
          log.warn({ graceMs }, "worker did not close in time; disconnecting");
          void w.close(true).catch(() => {});
          void w.disconnect().catch(() => {});
          // BullMQ runs its close steps in sequence and stops its own timers only at the end; a
          // step stuck on a connection that lived through a Redis restart would keep the stalled
          // checker and the lock extender alive (and the process with them). Stop both here.
          const internals = w as unknown as { stalledCheckStopper?: () => void; lockManager?: { close(): Promise<void> } };
          internals.stalledCheckStopper?.();
          void internals.lockManager?.close().catch(() => {});
        }
      }
      (worker?.opts.connection as Redis | undefined)?.disconnect();
      await queue.close();
      await agent.close();
      parkedStore.close();
      await closeRedis(redis);
      await closeRedis(queueRedis);
    },
  };
}

/** The (lower-case) names of an endpoint's headers whose values come from the environment: secrets, as a rule. */
function envHeaders(headers: Record<string, string>): Set<string> {
  const out = new Set<string>();
  for (const k in headers) if (headers[k]!.includes("${")) out.add(k.toLowerCase());
  return out;
}

/** An endpoint's own headers, with `${ENV}` read at delivery time so a rotated value is used. */
function customHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k in headers) {
    const v = headers[k]!;
    out[k] = v.includes("${") ? v.replace(/\$\{([A-Z][A-Z0-9_]*)\}/g, (_, n: string) => process.env[n] ?? "") : v;
  }
  return out;
}

export type Egress = Awaited<ReturnType<typeof createEgress>>;
