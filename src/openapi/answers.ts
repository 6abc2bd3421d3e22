import { z } from "zod";
import { ERROR_STATUS } from "../errors.js";

/**
 * The answers each surface gives, as zod schemas for `/openapi.json` (document.ts). The request
 * schemas are the ones the routes validate with; these describe what comes back, and the tests
 * check every route's real answers against them (test/openapi.test.ts).
 */

const id = z.string().min(1);

/** Every refusal, on every surface (errors.ts `toErrorResponse`, and the 404 for an unknown path). */
export const errorEnvelope = z.strictObject({
  ok: z.literal(false),
  routeId: z.string().nullable().describe("The TaskFlow or inbound route, or null."),
  code: z
    .string()
    .describe(`One of: ${Object.keys(ERROR_STATUS).join(", ")}; a TaskFlow refusal may carry the runtime's code (revision_conflict, terminal, …).`),
  error: z.string(),
  result: z.record(z.string(), z.unknown()),
});

/** A TaskFlow route's success (200, or 202 `cancel_pending`): the plugin's envelope. */
export const taskflowEnvelope = z.strictObject({
  ok: z.literal(true),
  routeId: id,
  code: z.string().optional(),
  result: z.record(z.string(), z.unknown()).describe("The action's result: `flow`, `flows`, `task`, `summary`, … as the bundled plugin answers."),
});

export const publishAnswer = z.strictObject({
  ok: z.literal(true),
  id: id.describe("The event id (given, or made up as evt_ + 32 hex)."),
  duplicate: z.boolean().describe("True when an event with this id is already kept: nothing new was queued."),
  deliveries: z.number().int().nonnegative().describe("Deliveries queued (one per subscribed endpoint)."),
  parked: z.literal(true).optional().describe("Stored for an operator to replay: it could not be queued for a reason retrying cannot fix."),
});

export const inboundAgentAnswer = z.strictObject({ ok: z.literal(true), runId: id, duplicate: z.literal(true).optional() });
export const inboundWakeAnswer = z.looseObject({ ok: z.literal(true), duplicate: z.literal(true).optional() });

export const healthAnswer = z.strictObject({ ok: z.literal(true), version: z.string() });
export const readyAnswer = z.strictObject({ ok: z.boolean(), checks: z.record(z.string(), z.boolean()) });

/** The admin API's success envelope around `result`. */
export const adminOk = <T extends z.ZodType>(result: T) => z.strictObject({ ok: z.literal(true), result });

const attempt = z.looseObject({
  attempt: z.number().int().positive(),
  trigger: z.enum(["scheduled", "manual"]),
  at: z.number(),
  status: z.number().int().optional(),
  errorClass: z.string().optional(),
  error: z.string().optional(),
  durationMs: z.number(),
  requestHeaders: z.record(z.string(), z.string()).optional().describe("The request headers sent, credentials masked."),
  responseHeaders: z.record(z.string(), z.string()).optional().describe("The receiver's headers (bounded, credentials masked)."),
  responseBody: z.string().describe("The first KiB of the receiver's body."),
  responseTruncated: z.boolean().optional(),
  nextAttemptAt: z.number().optional(),
});
const delivery = z.looseObject({
  id,
  eventId: id,
  eventType: id,
  endpoint: id,
  status: z.enum(["pending", "delivered", "failed"]),
  attempts: z.number().int().nonnegative(),
  createdAt: z.number(),
  updatedAt: z.number(),
  lastStatus: z.number().int().optional(),
  lastError: z.string().optional(),
  nextAttemptAt: z.number().optional(),
});
const summary = delivery.extend({ lastDurationMs: z.number().nullable(), lastErrorClass: z.string().nullable() });
const inboundEndpoint = z.looseObject({
  name: id,
  path: z.string(),
  enabled: z.boolean(),
  action: z.string(),
  agentId: z.string().nullable(),
  auth: z.string(),
});
const endpointStatus = z.looseObject({
  name: id,
  url: z.string(),
  events: z.array(z.string()),
  enabled: z.boolean(),
  disabled: z.looseObject({ reason: z.string(), at: z.number() }).optional(),
  circuit: z.looseObject({
    state: z.enum(["open", "closed"]),
    failures: z.number().int(),
    openUntil: z.number().optional(),
    lastSuccessAt: z.number().optional(),
    failingSince: z.number().optional(),
  }),
  inFlight: z.number().int().nonnegative(),
});
const parkedEntry = z.looseObject({
  parkedId: id,
  eventId: id,
  type: id,
  source: z.string(),
  reason: z.string(),
  firstParkedAt: z.number(),
  parkedAt: z.number(),
  times: z.number().int(),
  replayable: z.boolean(),
  storedIn: z.enum(["redis", "memory"]).optional(),
});

export const adminAnswers = {
  routes: adminOk(
    z.strictObject({
      taskflow: z.array(
        z.looseObject({
          id,
          path: z.string(),
          sessionKey: z.string(),
          controllerId: z.string().optional(),
          secret: z.string().describe("How the secret is configured, never its value."),
        }),
      ),
      inbound: z.array(inboundEndpoint),
    }),
  ),
  endpoints: adminOk(z.strictObject({ endpoints: z.array(endpointStatus) })),
  endpointTest: adminOk(z.strictObject({ eventId: id, deliveryId: z.string().nullable() })),
  endpointToggle: adminOk(z.strictObject({ name: id, enabled: z.boolean() })),
  deliveries: adminOk(z.strictObject({ deliveries: z.array(summary) })),
  find: adminOk(
    z.union([
      z.strictObject({ kind: z.literal("delivery"), delivery: delivery.extend({ attemptLog: z.array(attempt) }) }),
      z.strictObject({ kind: z.literal("event"), eventId: id, deliveries: z.array(summary) }),
    ]),
  ),
  endpointStats: adminOk(
    z.strictObject({
      stats: z.array(
        z.looseObject({
          endpoint: id,
          windowMinutes: z.number().int(),
          attempts: z.number().int().nonnegative(),
          succeeded: z.number().int().nonnegative(),
          successRate: z.number().min(0).max(1).nullable(),
          answered: z.number().int().nonnegative(),
          p50Ms: z.number().nullable().describe("Upper bound of the histogram bucket holding the median."),
          p95Ms: z.number().nullable(),
        }),
      ),
    }),
  ),
  inbound: adminOk(
    z.strictObject({
      endpoints: z.array(inboundEndpoint),
      runs: z.array(
        z.looseObject({
          runId: id,
          endpoint: id,
          agentId: z.string().optional(),
          sessionKey: z.string().optional(),
          startedAt: z.number().optional(),
          status: z.enum(["running", "ok", "error"]),
          endedAt: z.number().optional(),
          error: z.string().optional(),
          completionEventId: z.string().optional(),
        }),
      ),
      runsRecorded: z.boolean(),
    }),
  ),
  delivery: adminOk(z.strictObject({ delivery: delivery.extend({ attemptLog: z.array(attempt) }) })),
  replay: adminOk(z.looseObject({ id, jobId: id })),
  bulkReplay: adminOk(
    z.looseObject({
      endpoint: id,
      since: z.number().describe("From when, in epoch ms: confirm a dry run with this value to replay the same set."),
      dryRun: z.boolean(),
      started: z.number().int().nonnegative().describe("Replays started, or with dryRun the number that would be."),
      skipped: z.array(z.looseObject({ id, reason: z.string() })),
    }),
  ),
  parkedList: adminOk(z.strictObject({ parked: z.array(parkedEntry), total: z.number().int().nonnegative() })),
  parked: adminOk(z.strictObject({ parked: parkedEntry })),
  parkedReplay: adminOk(z.looseObject({ parkedId: id, eventId: id, duplicate: z.boolean(), deliveries: z.array(z.unknown()) })),
  parkedDiscard: adminOk(z.strictObject({ parkedId: id, eventId: id })),
  queue: adminOk(z.strictObject({ counts: z.record(z.string(), z.number().int().nonnegative()) })),
};

/** What each admin API answer's `result` is: the CLI (src/cli/admin.ts) reads these types. */
export type AdminResult<K extends keyof typeof adminAnswers> = z.infer<(typeof adminAnswers)[K]>["result"];
