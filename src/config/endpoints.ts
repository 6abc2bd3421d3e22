import { z } from "zod";
import { durationSchema } from "../util/duration.js";
import { inboundSchema } from "./inbound.js";

import { secretInputSchema as secretInput, trimmed } from "./common.js";

/** Headers the service owns on every delivery; an endpoint cannot set or override them. */
const RESERVED_HEADERS =
  /^(webhook-.*|content-type|content-length|host|x-openclaw-signature|x-openclaw-timestamp|x-openclaw-event|transfer-encoding|connection)$/i;

/** `message.sent`, `message.*` (prefix) or `*` (everything). */
const eventPattern = z
  .string()
  .trim()
  .regex(/^(\*|[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*(\.\*)?)$/, "an event name, a prefix such as message.*, or *");

export const endpointSchema = z
  .strictObject({
    name: z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "letters, digits, . _ - (at most 64)")
      .describe("Unique name: part of delivery ids, metric labels, logs and the admin API."),
    url: z.url({ protocol: /^https?$/ }).describe("Where deliveries are POSTed."),
    secret: z.union([secretInput, z.array(secretInput).min(1)]).describe("Signing secret, or a list (newest first) during rotation."),
    events: z.array(eventPattern).min(1).describe("Event types it receives: exact names, prefixes such as message.*, or *."),
    filter: z
      .strictObject({ agentIds: z.array(trimmed).min(1).optional().describe("Only events whose data.agentId is listed.") })
      .optional()
      .describe("Narrows the subscribed events."),
    retry: z
      .union([
        z.strictObject({
          maxAttempts: z.number().int().min(1).max(50).describe("Attempts in all, the first included."),
          backoffMs: durationSchema.describe("Delay before the first retry; doubles per retry (±20% jitter)."),
        }),
        z.strictObject({
          schedule: z.array(durationSchema).max(50).describe("Delay before each retry (±20% jitter); after the last, the delivery has failed."),
        }),
      ])
      .optional()
      .describe("Default: 30s, 5m, 30m, then failed."),
    timeoutMs: durationSchema.default(5_000).describe("Per-attempt timeout; a timeout is a failed attempt."),
    headers: z
      .record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "not a header name"), z.string())
      .default({})
      .refine(
        (h) => Object.keys(h).every((k) => !RESERVED_HEADERS.test(k)),
        "webhook-*, content-type, content-length, host and the signature headers cannot be overridden",
      )
      .describe(
        "Extra headers on every delivery; ${VAR} in a value is read from the environment. webhook-*, the signature headers and framing headers cannot be set.",
      ),
    transform: z
      .union([z.string(), z.record(z.string(), z.unknown())])
      .optional()
      .describe('A template for the body, e.g. { text: "{{data.error.message}}" }.'),
    signing: z
      .array(z.enum(["openclaw", "standard", "legacy-body"]))
      .min(1)
      .default(["openclaw", "standard"])
      .describe(
        "Signature schemes: openclaw (X-OpenClaw-Signature over timestamp.body), standard (Standard Webhooks), legacy-body (HMAC of the body alone; not with openclaw).",
      ),
    enabled: z.boolean().default(true).describe("Deliver to this endpoint (false: it receives nothing)."),
    concurrency: z.number().int().min(1).max(1_000).default(10).describe("Attempts in flight to this endpoint, all replicas together."),
    rateLimit: z
      .strictObject({
        perSecond: z
          .number()
          .positive()
          .describe("Attempts per second, all replicas together (the rate limit of the endpoint's lane, in windows of about a tenth of a second)."),
      })
      .optional()
      .describe("Attempts per second to this endpoint."),
  })
  .refine((e) => !(e.signing.includes("openclaw") && e.signing.includes("legacy-body")), {
    message: "openclaw and legacy-body both set X-OpenClaw-Signature: choose one",
    path: ["signing"],
  });

export type Endpoint = z.infer<typeof endpointSchema>;

const breakerSchema = z.strictObject({
  failureThreshold: z.number().int().min(1).max(1_000).default(5).describe("Consecutive failed attempts that open the circuit."),
  cooldownMs: durationSchema.default(30_000).describe("How long an open circuit waits before one probe; doubles per failed probe."),
  maxCooldownMs: durationSchema.default(600_000).describe("Longest cooldown a failing probe can double to."),
});

const workerSchema = z.strictObject({
  concurrency: z
    .number()
    .int()
    .min(1)
    .max(1_000)
    .default(50)
    .describe("Attempts in flight per replica and endpoint: each endpoint's lane gets min(its concurrency, this) slots on each replica."),
  // 5 s, not BullMQ's 30 s: a Redis restart strands a job now and then (a fetch that Redis ran
  // and whose answer the restart lost: ioredis sends it again and the job it fetched first stays
  // active, locked by no attempt), and the stalled check is what hands it back. With 30 s such a
  // delivery arrived 57 s after Redis was back (test/reliability, "Redis restarted"); with 5 s,
  // within the lock plus 10 s. The check is one script per lane and replica per interval.
  stalledIntervalMs: durationSchema
    .default(5_000)
    .describe(
      "How often a lost worker's jobs are looked for (BullMQ stalled check), per endpoint lane: one short Redis script per lane and replica each time. A job a dead worker, or a Redis crash, left in no worker's hands is attempted again within its lock (2 × its endpoint's timeout + 2 s) plus two of these. Replicas should share one value: a lane's check is skipped until the interval of the replica that last ran it has passed.",
    ),
});

export const webhooksSchema = z
  .strictObject({
    publishToken: secretInput.optional().describe("Bearer token for POST /v1/events."),
    publish: z
      .strictObject({
        allowSystemTypes: z
          .array(eventPattern)
          .default([])
          .describe(
            "System event types (message.*, flow.*, inbound.completed, …) POST /v1/events may publish: exact names or prefixes. Default none. Their id namespaces stay reserved.",
          ),
      })
      .prefault({})
      .describe("What POST /v1/events accepts besides custom types."),
    retention: durationSchema.default(7 * 86_400_000).describe("How long events and the delivery log are kept."),
    disableAfter: durationSchema
      .default(5 * 86_400_000)
      .describe("An endpoint with no success for this long and an exhausted delivery is disabled (Svix's rule)."),
    circuitBreaker: breakerSchema
      .describe("Per endpoint, all replicas together: pauses deliveries to a failing receiver without spending attempts.")
      .prefault({}),
    worker: workerSchema.describe("The BullMQ delivery worker of each replica.").prefault({}),
    relayBuffer: z.number().int().min(1).default(10_000).describe("Gateway and flow events kept in memory while Redis is away."),
    inbound: inboundSchema.optional().describe("Inbound endpoints: POST <basePath>/<name> starts an agent run or a wake."),
    allowPrivateCidrs: z.array(trimmed).default([]).describe("Ranges the SSRF guard lets deliveries reach, e.g. 127.0.0.0/8."),
    instanceId: trimmed.optional().describe("The envelope's instanceId; default the host name."),
    endpoints: z
      .array(endpointSchema)
      .default([])
      .refine((list) => new Set(list.map((e) => e.name)).size === list.length, "endpoint names must be unique"),
  })
  .prefault({});

/** Whether an endpoint subscribes to an event type: exact name, `prefix.*`, or `*`. */
export function matchesEvent(patterns: readonly string[], type: string): boolean {
  return patterns.some((p) => p === "*" || p === type || (p.endsWith(".*") && type.startsWith(p.slice(0, -1))));
}

/** The endpoint's filter: with `agentIds`, only events whose `data.agentId` is listed. */
export function passesFilter(endpoint: Pick<Endpoint, "filter">, data: unknown): boolean {
  const ids = endpoint.filter?.agentIds;
  if (!ids) return true;
  const agentId = (data as { agentId?: unknown } | null)?.agentId;
  return typeof agentId === "string" && ids.includes(agentId);
}

/**
 * How events and logs name an endpoint's address: its origin, `scheme://host[:port]`. The path and
 * query are left out (and so is any `user:pass@`): they often are the endpoint's credential.
 */
export function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "(invalid URL)";
  }
}
