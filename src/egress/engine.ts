import { hostname } from "node:os";
import { Queue, UnrecoverableError, Worker, type Job } from "bullmq";
import { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Config } from "../config/schema.js";
import { matchesEvent, passesFilter, type Endpoint } from "../config/endpoints.js";
import { closeRedis } from "../deps.js";
import type { SecretResolver } from "../secrets/resolve.js";
import { renderDeep, renderTemplate } from "../util/template.js";
import { DEFAULT_RETRY, maxAttempts, retryDelay, type RetryPolicy } from "./backoff.js";
import { attemptDelivery, createDeliveryAgent } from "./deliver.js";
import { createEnvelope, deliveryId, type Envelope } from "./envelope.js";
import { createDeliveryLog } from "./log.js";
import { signatureHeaders } from "./sign.js";
import { createSsrfGuard } from "./ssrf.js";

type JobData = { deliveryId: string; eventId: string; endpoint: string };
const QUEUE = "deliveries";
const DEDUPE_S = 24 * 3600;

/** A failed attempt, carrying the delay chosen for the next one to the backoff strategy. */
class AttemptFailed extends Error {
  constructor(message: string, readonly delayMs: number | undefined) {
    super(message);
    this.name = "AttemptFailed";
  }
}

export function retryPolicy(e: Endpoint): RetryPolicy {
  if (!e.retry) return DEFAULT_RETRY;
  return "schedule" in e.retry ? { kind: "schedule", delaysMs: e.retry.schedule } : { kind: "exponential", ...e.retry };
}

/**
 * Outgoing webhooks on BullMQ. `publish` stores the event and one pending delivery record per
 * matching endpoint in one MULTI, then adds one job per delivery whose id is the delivery id (a
 * re-add is a no-op), and only then marks the event id as seen: a publish that failed half way
 * can be repeated with the same id and loses nothing. The worker signs each attempt afresh,
 * POSTs it, logs it, and leaves retry timing to the endpoint's policy through BullMQ's backoff.
 *
 * @param opts.retentionMs how long events and the delivery log are kept (default 7 days)
 */
export async function createEgress(opts: { config: Config; secrets: SecretResolver; log: Logger; retentionMs?: number }) {
  const { config, secrets } = opts;
  const url = config.redis.url;
  if (!url) throw new Error("egress needs redis.url");
  const P = config.redis.prefix;
  const log = opts.log.child({ component: "egress" });
  const endpoints = new Map(config.webhooks.endpoints.map((e) => [e.name, e]));
  const instanceId = config.webhooks.instanceId ?? hostname();
  // The producer fails fast when Redis is away (publish answers 503); workers block and retry.
  const redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true });
  redis.on("error", () => {});
  await redis.connect();
  const queue = new Queue<JobData>(QUEUE, { connection: redis, prefix: `${P}bull` });
  const deliveryLog = createDeliveryLog(redis, { prefix: P, retentionMs: opts.retentionMs ?? 7 * 24 * 3600_000 });
  const guard = createSsrfGuard({ allowCidrs: config.webhooks.allowPrivateCidrs });
  const agent = createDeliveryAgent(guard);
  const disabledKey = (name: string) => `${P}endpoint:${name}:disabled`;
  let worker: Worker<JobData> | undefined;

  async function publish(input: { type: string; data: unknown; id?: string }) {
    const seenKey = input.id ? `${P}event-id:${input.id}` : undefined;
    if (seenKey && (await redis.exists(seenKey))) return { id: input.id!, duplicate: true, deliveries: [] as string[] };
    const event = createEnvelope({ ...input, instanceId });
    const candidates = [...endpoints.values()].filter((e) => e.enabled && matchesEvent(e.events, event.type) && passesFilter(e, event.data));
    const disabled = candidates.length ? await redis.mget(candidates.map((e) => disabledKey(e.name))) : [];
    const targets = candidates.filter((_, i) => !disabled[i]);
    const now = Date.now();
    const multi = redis.multi();
    multi.set(`${P}event:${event.id}`, JSON.stringify(event), "PX", opts.retentionMs ?? 7 * 24 * 3600_000);
    const jobs = targets.map((e) => {
      const id = deliveryId(event.id, e.name);
      deliveryLog.addPending(multi, { id, eventId: event.id, eventType: event.type, endpoint: e.name, createdAt: now });
      return {
        name: event.type,
        data: { deliveryId: id, eventId: event.id, endpoint: e.name },
        opts: { jobId: id, attempts: maxAttempts(retryPolicy(e)), backoff: { type: "endpoint" }, removeOnComplete: 1000, removeOnFail: false },
      };
    });
    await multi.exec();
    if (jobs.length) await queue.addBulk(jobs);
    if (seenKey) await redis.set(seenKey, event.id, "EX", DEDUPE_S);
    return { id: event.id, duplicate: false, deliveries: jobs.map((j) => j.opts.jobId) };
  }

  function body(e: Endpoint, event: Envelope): string {
    if (e.transform === undefined) return JSON.stringify(event);
    return typeof e.transform === "string" ? renderTemplate(e.transform, event) : JSON.stringify(renderDeep(e.transform, event));
  }

  async function processJob(job: Job<JobData>): Promise<void> {
    const { deliveryId: id, eventId, endpoint: name } = job.data;
    const e = endpoints.get(name);
    if (!e) throw new UnrecoverableError(`endpoint ${name} is no longer configured`);
    if (await redis.get(disabledKey(name))) throw new UnrecoverableError(`endpoint ${name} is disabled`);
    const raw = await redis.get(`${P}event:${eventId}`);
    if (!raw) throw new UnrecoverableError(`event ${eventId} has expired`);
    const event = JSON.parse(raw) as Envelope;
    const inputs = Array.isArray(e.secret) ? e.secret : [e.secret];
    const resolved = (await Promise.all(inputs.map((s) => secrets.resolve(s)))).filter((s): s is string => s !== undefined);
    if (!resolved.length) throw new UnrecoverableError(`endpoint ${name}: no signing secret resolves`);
    const payload = body(e, event);
    const custom = Object.fromEntries(Object.entries(e.headers).map(([k, v]) => [k, v.replace(/\$\{([A-Z][A-Z0-9_]*)\}/g, (_, n: string) => envValue(n))]));
    const headers = {
      ...custom,
      "content-type": "application/json",
      "user-agent": "openclaw-webhooks/1",
      "x-openclaw-event": event.type,
      ...signatureHeaders({ id, timestamp: Math.floor(Date.now() / 1000), body: payload, secrets: resolved, schemes: e.signing }),
    };
    const attempt = job.attemptsMade + 1;
    const result = await attemptDelivery({ url: e.url, headers, body: payload, timeoutMs: e.timeoutMs, dispatcher: agent, guard });
    const policy = retryPolicy(e);
    const last = attempt >= maxAttempts(policy);
    const status = result.outcome === "delivered" ? "delivered" : result.outcome === "disable" || last ? "failed" : "pending";
    // Chosen once (with jitter), logged as nextAttemptAt, and handed to BullMQ's backoff.
    const nextDelay = status === "pending" ? retryDelay(policy, attempt + 1, { retryAfterMs: result.retryAfterMs }) : undefined;
    await deliveryLog.recordAttempt(
      id,
      name,
      {
        attempt,
        trigger: "scheduled",
        at: Date.now(),
        ...(result.status !== undefined ? { status: result.status } : {}),
        ...(result.errorClass ? { errorClass: result.errorClass } : {}),
        ...(result.error ? { error: result.error } : {}),
        durationMs: result.durationMs,
        responseBody: result.responseBody,
        ...(nextDelay !== undefined ? { nextAttemptAt: Date.now() + nextDelay } : {}),
      },
      status,
      result,
    );
    if (result.outcome === "delivered") return;
    if (result.outcome === "disable") {
      await redis.set(disabledKey(name), `410 Gone from ${e.url} at ${new Date().toISOString()}`);
      log.warn({ endpoint: name }, "endpoint answered 410 Gone: disabled");
      throw new UnrecoverableError("410 Gone: endpoint disabled");
    }
    throw new AttemptFailed(result.error ?? "failed", nextDelay);
  }

  return {
    queue,
    log: deliveryLog,
    publish,
    isDisabled: async (name: string) => Boolean(await redis.get(disabledKey(name))),
    startWorker(workerOpts: { concurrency?: number } = {}) {
      const maxTimeout = Math.max(5_000, ...[...endpoints.values()].map((e) => e.timeoutMs));
      const workerRedis = new Redis(url, { maxRetriesPerRequest: null });
      workerRedis.on("error", (err) => log.debug({ err: err.message }, "worker connection error"));
      worker = new Worker<JobData>(QUEUE, processJob, {
        connection: workerRedis,
        prefix: `${P}bull`,
        concurrency: workerOpts.concurrency ?? 50,
        // The lock outlives the longest attempt, so no attempt runs twice at once.
        lockDuration: 2 * maxTimeout + 10_000,
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
        const graceMs = Math.max(5_000, ...[...endpoints.values()].map((e) => e.timeoutMs)) + 1_000;
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
        }
      }
      (worker?.opts.connection as Redis | undefined)?.disconnect();
      await queue.close();
      await agent.close();
      await closeRedis(redis);
    },
  };
}

/** `${ENV}` in endpoint header values, read at delivery time so a rotated value is used. */
function envValue(name: string): string {
  return process.env[name] ?? "";
}

export type Egress = Awaited<ReturnType<typeof createEgress>>;
