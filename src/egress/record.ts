import { UnrecoverableError, type Job } from "bullmq";
import { originOf, type Endpoint } from "../config/endpoints.js";
import { maskRequestHeaders } from "./attempt-detail.js";
import { maxAttempts, retryDelay, retryPolicy } from "./backoff.js";
import type { EgressContext, JobData, Prepared } from "./context.js";
import type { AttemptResult } from "./deliver.js";
import type { EndpointHealth } from "./endpoint-health.js";
import type { DeliveryStatus } from "./log.js";
import { isTransient } from "./failure.js";
import { exponentialDelay } from "../util/backoff.js";

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

/**
 * What an attempt leaves behind: one script (lua/finish-batch.lua) moves the breaker,
 * logs the attempt (its request headers masked) and counts it in the endpoint's stats; then the
 * metrics, the 410 and Svix disable rules, and the outcome BullMQ acts on: return (delivered),
 * `AttemptFailed` with the next delay (retry), `UnrecoverableError` (failed for good).
 */
export function createRecorder(ctx: EgressContext, health: EndpointHealth) {
  const { scripts, log, metrics, webhooks: wh } = ctx;
  return async function settle(job: Job<JobData>, e: Endpoint, isProbe: boolean, p: Prepared, result: AttemptResult): Promise<void> {
    const { deliveryId: id, manual } = job.data;
    const ok = result.outcome === "delivered";
    const policy = retryPolicy(e);
    const last = manual || p.attempt >= maxAttempts(policy);
    const status: DeliveryStatus = ok ? "delivered" : result.outcome === "disable" || last ? "failed" : "pending";
    // Chosen once (with jitter), logged as nextAttemptAt, and handed to BullMQ's backoff.
    const nextDelay = status === "pending" ? retryDelay(policy, p.attempt + 1, { retryAfterMs: result.retryAfterMs }) : undefined;
    const at = Date.now();
    const finish = () =>
      scripts.finish(
        { endpoint: e.name, ok, isProbe, breaker: wh.circuitBreaker },
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
    if (ok && !manual && !isProbe) {
      // A delivered attempt (the usual case) does not wait for its record to be written, only for
      // it to be sent: the record (gathered with the turn's other attempts to the endpoint,
      // scripts.ts) leaves at the end of this turn, and BullMQ's completion of the job after it, on
      // the same connection (the worker's: engine.ts). One Redis runs them in that order: if the
      // completion is lost the job's lock expires and the attempt is made again (same
      // webhook-id), and never is a job completed whose record was not sent first. On a Cluster
      // the record (the endpoint's tag) and the job (the lane's shard tag) may be on different
      // masters, and one may fail over while the other completes: a record that could not be
      // written for now is written again in the background until Redis answers, so a delivered
      // job never leaves its record pending. Waiting for it here instead held the lane's
      // slots through the failover, and a lane stopped taking jobs (test/reliability/failover.test.ts
      // with FAILOVER_NODE_TIMEOUT_MS=5000).
      void retryWhileTransient(finish, RECORD_RETRY_MS).catch((err: Error) =>
        log.error({ err: err.message, deliveryId: id }, "delivered, but its record was not updated"),
      );
      await scripts.finishesSent();
      metrics?.deliveries.inc({ endpoint: e.name, outcome: "delivered" });
      metrics?.deliveryDuration.observe({ endpoint: e.name }, result.durationMs / 1000);
      metrics?.deliveryAttempt.observe({ endpoint: e.name }, p.attempt);
      return;
    }
    const [circuit, failingSince] = await finish();
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
      await health.disable(e, `410 Gone from ${originOf(e.url)}`);
      throw new UnrecoverableError("410 Gone: endpoint disabled");
    }
    if (status === "failed" && !manual) {
      // Svix's rule: an exhausted delivery on an endpoint with no success for `disableAfter`.
      const since = Number(failingSince);
      if (since && Date.now() - since >= wh.disableAfter) {
        await health.disable(e, `no successful delivery since ${new Date(since).toISOString()} and delivery ${id} exhausted its attempts`);
      }
    }
    if (manual) throw new UnrecoverableError(result.error ?? "failed");
    throw new AttemptFailed(result.error ?? "failed", nextDelay);
  };
}

/** How long a delivered attempt's record is tried again while Redis is away (a failover takes seconds to tens of seconds). */
const RECORD_RETRY_MS = 120_000;

/** Runs `fn` again, backing off up to a second, while it fails with a transient error (failure.ts), for up to `forMs`. */
async function retryWhileTransient<T>(fn: () => Promise<T>, forMs: number): Promise<T> {
  const until = Date.now() + forMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err) || Date.now() >= until) throw err;
      await new Promise((r) => setTimeout(r, exponentialDelay(attempt, { baseMs: 50, maxMs: 1_000 })));
    }
  }
}

/** The (lower-case) names of an endpoint's headers whose values come from the environment: secrets, as a rule. */
function envHeaders(headers: Record<string, string>): Set<string> {
  const out = new Set<string>();
  for (const k in headers) if (headers[k]!.includes("${")) out.add(k.toLowerCase());
  return out;
}
