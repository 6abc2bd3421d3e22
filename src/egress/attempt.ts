import { DelayedError, UnrecoverableError, type Job } from "bullmq";
import { originOf, type Endpoint } from "../config/endpoints.js";
import type { SecretResolver } from "../secrets/resolve.js";
import { renderDeep, renderTemplate } from "../util/template.js";
import { maskRequestHeaders } from "./attempt-detail.js";
import { maxAttempts, retryDelay, retryPolicy } from "./backoff.js";
import type { EgressContext, JobData } from "./context.js";
import type { Agent } from "undici";
import { attemptDelivery, type AttemptResult } from "./deliver.js";
import type { EndpointHealth } from "./endpoint-health.js";
import type { Envelope } from "./envelope.js";
import type { DeliveryStatus } from "./log.js";
import { signatureHeaders } from "./sign.js";
import type { SsrfGuard } from "./ssrf.js";

/** A failed attempt, carrying the delay chosen for the next one to the backoff strategy (worker.ts). */
export class AttemptFailed extends Error {
  constructor(
    message: string,
    readonly delayMs: number | undefined,
  ) {
    super(message);
    this.name = "AttemptFailed";
  }
}

const jitter = (min: number, max: number) => min + Math.floor(Math.random() * (max - min));

/** What `prepare` hands to `send`: the request, and where this attempt stands in the delivery. */
type Prepared = { attempt: number; from: DeliveryStatus; headers: Record<string, string>; payload: string };

/**
 * One delivery attempt, as the worker runs it for a job, in four stages:
 * 1. `admit`: the endpoint's gate in Redis (disabled, circuit breaker, concurrency lease, rate),
 *    so limits hold across replicas. A job held back is moved to the delayed set without using
 *    an attempt: a failing or slow endpoint makes its own deliveries wait, not the others.
 * 2. `prepare`: the event's body for this endpoint (its transform), signed afresh, with its headers.
 * 3. `send`: the POST (deliver.ts), behind the SSRF guard.
 * 4. `settle`: one script frees the lease, moves the breaker and logs the attempt (masked); then
 *    metrics, the 410 and Svix disable rules, and the outcome BullMQ acts on: return (delivered),
 *    `AttemptFailed` with the next delay (retry), `UnrecoverableError` (failed for good).
 */
export function createAttemptProcessor(ctx: EgressContext, deps: { secrets: SecretResolver; agent: Agent; guard: SsrfGuard; health: EndpointHealth }) {
  const { endpoints, scripts, deliveryLog, redis, keys, log, metrics, webhooks: wh } = ctx;
  let finishes = 0;

  async function admit(job: Job<JobData>, e: Endpoint, leaseId: string, token: string | undefined) {
    const gate = await scripts.gate(e, job.data.eventId, leaseId);
    if (gate[0] === 1) return { isProbe: gate[1] === 1, raw: gate[2] };
    const [, reason, waitMs] = gate;
    if (reason === "disabled") {
      await deliveryLog.markFailed(job.data.deliveryId, e.name, "endpoint disabled");
      throw new UnrecoverableError(`endpoint ${e.name} is disabled`);
    }
    // Held back, not failed: the attempt is not used up.
    const wait = reason === "circuit_open" ? waitMs + jitter(0, 1_000) : reason === "rate_limited" ? waitMs + jitter(0, 20) : jitter(50, 250);
    await job.moveToDelayed(Date.now() + wait, token);
    throw new DelayedError();
  }

  async function prepare(job: Job<JobData>, e: Endpoint, raw: string | null): Promise<Prepared> {
    const { deliveryId: id, eventId, manual } = job.data;
    if (!raw) throw new UnrecoverableError(`event ${eventId} has expired`);
    const event = JSON.parse(raw) as Envelope;
    const inputs = Array.isArray(e.secret) ? e.secret : [e.secret];
    const resolved = (await Promise.all(inputs.map((s) => deps.secrets.resolve(s, { standardKey: true })))).filter((s): s is string => s !== undefined);
    if (!resolved.length) throw new UnrecoverableError(`endpoint ${e.name}: no signing secret resolves`);
    let attempt = job.attemptsMade + 1;
    let from: DeliveryStatus = "pending";
    if (manual) {
      const st = await deliveryLog.state(id);
      attempt = (st?.attempts ?? 0) + 1;
      from = st?.status ?? "failed";
    }
    const payload = bodyFor(e, event);
    const headers = {
      ...customHeaders(e.headers),
      "content-type": "application/json",
      "user-agent": "openclaw-webhooks/1",
      "x-openclaw-event": event.type,
      ...signatureHeaders({ id, timestamp: Math.floor(Date.now() / 1000), body: payload, secrets: resolved, schemes: e.signing }),
    };
    return { attempt, from, headers, payload };
  }

  async function settle(job: Job<JobData>, e: Endpoint, leaseId: string, isProbe: boolean, p: Prepared, result: AttemptResult): Promise<void> {
    const { deliveryId: id, manual } = job.data;
    const ok = result.outcome === "delivered";
    const policy = retryPolicy(e);
    const last = manual || p.attempt >= maxAttempts(policy);
    const status: DeliveryStatus = ok ? "delivered" : result.outcome === "disable" || last ? "failed" : "pending";
    // Chosen once (with jitter), logged as nextAttemptAt, and handed to BullMQ's backoff.
    const nextDelay = status === "pending" ? retryDelay(policy, p.attempt + 1, { retryAfterMs: result.retryAfterMs }) : undefined;
    const at = Date.now();
    const [circuit, failingSince] = await scripts.finish(
      { endpoint: e.name, leaseId, ok, isProbe, breaker: wh.circuitBreaker },
      {
        id,
        from: p.from,
        status,
        lastStatus: result.status,
        lastError: result.error,
        attempt: {
          attempt: p.attempt,
          trigger: manual ? "manual" : "scheduled",
          at,
          status: result.status,
          errorClass: result.errorClass,
          error: result.error,
          durationMs: result.durationMs,
          requestHeaders: maskRequestHeaders(p.headers, envHeaders(e.headers)),
          responseHeaders: result.responseHeaders,
          responseBody: result.responseBody,
          responseTruncated: result.responseTruncated || undefined,
          nextAttemptAt: nextDelay !== undefined ? at + nextDelay : undefined,
        },
      },
    );
    if ((finishes++ & 1023) === 0) void deliveryLog.trim(e.name).catch(() => {});
    if (metrics) {
      const outcome = ok ? "delivered" : result.outcome === "disable" ? "disabled" : status === "failed" ? "failed" : "retry";
      metrics.deliveries.inc({ endpoint: e.name, outcome });
      metrics.deliveryDuration.observe({ endpoint: e.name }, result.durationMs / 1000);
      metrics.deliveryAttempt.observe({ endpoint: e.name }, p.attempt);
    }
    if (circuit === "opened") log.warn({ endpoint: e.name, probe: isProbe }, "circuit opened: deliveries to this endpoint wait");
    else if (isProbe && ok) log.info({ endpoint: e.name }, "circuit closed: endpoint is back");
    if (ok) return;
    if (result.outcome === "disable") {
      await deps.health.disable(e, `410 Gone from ${originOf(e.url)}`);
      throw new UnrecoverableError("410 Gone: endpoint disabled");
    }
    if (status === "failed" && !manual) {
      // Svix's rule: an exhausted delivery on an endpoint with no success for `disableAfter`.
      const since = Number(failingSince);
      if (since && Date.now() - since >= wh.disableAfter) {
        await deps.health.disable(e, `no successful delivery since ${new Date(since).toISOString()} and delivery ${id} exhausted its attempts`);
      }
    }
    if (manual) throw new UnrecoverableError(result.error ?? "failed");
    throw new AttemptFailed(result.error ?? "failed", nextDelay);
  }

  /** The worker's processor: one job, one attempt. */
  return async function processJob(job: Job<JobData>, token?: string): Promise<void> {
    const e = endpoints.get(job.data.endpoint);
    if (!e) throw new UnrecoverableError(`endpoint ${job.data.endpoint} is no longer configured`);
    const leaseId = `${job.id}:${job.attemptsStarted}`;
    const { isProbe, raw } = await admit(job, e, leaseId, token);
    let prepared: Prepared;
    let result: AttemptResult;
    try {
      prepared = await prepare(job, e, raw);
      result = await attemptDelivery({
        url: e.url,
        headers: prepared.headers,
        body: prepared.payload,
        timeoutMs: e.timeoutMs,
        dispatcher: deps.agent,
        guard: deps.guard,
      });
    } catch (err) {
      await redis.zrem(keys.inflight(e.name), leaseId).catch(() => {});
      if (err instanceof UnrecoverableError) await deliveryLog.markFailed(job.data.deliveryId, e.name, err.message).catch(() => {});
      throw err;
    }
    await settle(job, e, leaseId, isProbe, prepared, result);
  };
}

/** The body an endpoint gets: the envelope, or its `transform` of it. */
function bodyFor(e: Endpoint, event: Envelope): string {
  if (e.transform === undefined) return JSON.stringify(event);
  return typeof e.transform === "string" ? renderTemplate(e.transform, event) : JSON.stringify(renderDeep(e.transform, event));
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
