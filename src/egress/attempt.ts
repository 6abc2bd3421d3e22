import { UnrecoverableError, type Job } from "bullmq";
import type { Endpoint } from "../config/endpoints.js";
import type { SecretResolver } from "../secrets/resolve.js";
import { renderDeep, renderTemplate } from "../util/template.js";
import type { EgressContext, JobData, Prepared } from "./context.js";
import type { Agent } from "undici";
import { attemptDelivery, type AttemptResult } from "./deliver.js";
import type { EndpointHealth } from "./endpoint-health.js";
import { admit } from "./gate.js";
import { createRecorder } from "./record.js";
import type { Envelope } from "./envelope.js";
import type { DeliveryStatus } from "./log.js";
import { signatureHeaders } from "./sign.js";
import type { SsrfGuard } from "./ssrf.js";

/**
 * One delivery attempt, as the worker runs it for a job, in four stages:
 * 1. `admit` (gate.ts): the endpoint's disabled marker and circuit breaker, for every replica; a
 *    job held back goes back to its lane without using an attempt (concurrency and rate are the
 *    lane's own BullMQ limits: lanes.ts).
 * 2. `prepare`: the event's body for this endpoint (its transform), signed afresh, with its headers.
 * 3. `send`: the POST (deliver.ts), behind the SSRF guard.
 * 4. `settle` (record.ts): one script moves the breaker and logs the attempt (masked); then
 *    metrics, the 410 and Svix disable rules, and the outcome BullMQ acts on: return (delivered),
 *    `AttemptFailed` with the next delay (retry), `UnrecoverableError` (failed for good).
 */
export function createAttemptProcessor(ctx: EgressContext, deps: { secrets: SecretResolver; agent: Agent; guard: SsrfGuard; health: EndpointHealth }) {
  const { endpoints, deliveryLog } = ctx;
  const settle = createRecorder(ctx, deps.health);

  async function prepare(job: Job<JobData>, e: Endpoint, raw: string | null): Promise<Prepared> {
    const { deliveryId: id, eventId, manual } = job.data;
    if (!raw) throw new UnrecoverableError(`event ${eventId} has expired`);
    const event = JSON.parse(raw) as Envelope;
    const inputs = Array.isArray(e.secret) ? e.secret : [e.secret];
    const resolved = (await Promise.all(inputs.map((s) => deps.secrets.resolve(s, { standardKey: true })))).filter((s): s is string => s !== undefined);
    if (!resolved.length) throw new UnrecoverableError(`endpoint ${e.name}: no signing secret resolves`);
    let attempt = job.attemptsMade + 1 + (job.data.attemptsBefore ?? 0);
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

  /** The worker's processor: one job, one attempt. */
  return async function processJob(job: Job<JobData>): Promise<void> {
    const e = endpoints.get(job.data.endpoint);
    if (!e) throw new UnrecoverableError(`endpoint ${job.data.endpoint} is no longer configured`);
    const { isProbe, raw } = await admit(ctx, job, e);
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
      if (err instanceof UnrecoverableError) await deliveryLog.markFailed(job.data.deliveryId, e.name, err.message).catch(() => {});
      throw err;
    }
    await settle(job, e, isProbe, prepared, result);
  };
}

/** The body an endpoint gets: the envelope, or its `transform` of it. */
function bodyFor(e: Endpoint, event: Envelope): string {
  if (e.transform === undefined) return JSON.stringify(event);
  return typeof e.transform === "string" ? renderTemplate(e.transform, event) : JSON.stringify(renderDeep(e.transform, event));
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
