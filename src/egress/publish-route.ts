import type { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../app-env.js";
import type { Deps } from "../deps.js";
import { AppError, JSON_UTF8 } from "../errors.js";
import { parseJsonBody, readBody } from "../http/body.js";
import { presentedSecret, secretsEqual } from "../http/credentials.js";
import { header } from "../http/header.js";
import { jsonContentType, postOnly } from "../http/stages.js";
import { formatFirstIssue } from "../http/validation.js";
import { matchesEvent } from "../config/endpoints.js";
import { eventIdProblem } from "./ids.js";
import { isSystemEventId, isSystemType, SYSTEM_ID_NAMESPACES } from "./system-events.js";

export const publishSchema = z.strictObject({
  type: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, "an event name such as lead.qualified")
    .max(200),
  data: z.json().optional(),
  // Any Unicode but control characters, 1 to 256 characters after trimming (ids.ts): ids are
  // hashed wherever they would not fit as they are, so `:`, spaces or emoji are fine.
  id: z
    .string()
    .trim()
    .superRefine((id, ctx) => {
      const problem = eventIdProblem(id);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    })
    .optional(),
});

/**
 * `POST /v1/events` (custom events, docs/outgoing-webhooks.md): `Authorization: Bearer <webhooks.publishToken>`,
 * body `{ type, data, id? }`. Answers 202 only once the event, its delivery records and its jobs
 * are in Redis; 503 `storage_unavailable` when they could not be stored (retry with the same id:
 * nothing is sent twice); a repeated `id` answers `duplicate: true` for as long as the event is kept (`webhooks.retention`).
 * An id it cannot take is 400 `invalid_request` saying why. A type of the service's own families
 * (system-events.ts) is 403 `reserved_event_type` unless `webhooks.publish.allowSystemTypes` lists
 * it, and an id in one of its namespaces is 403 `reserved_event_id`, always. An event stored nowhere for a reason
 * other than Redis being away is parked (202 with `parked: true`: an operator replays it).
 */
export function mountPublishRoute(app: Hono<AppEnv>, deps: Deps): void {
  const { egress, config, secrets } = deps;
  app.all("/v1/events", postOnly, jsonContentType, async (c) => {
    const token = config.webhooks.publishToken;
    if (!egress || token === undefined) throw new AppError("not_found", "The publish API is not configured (webhooks.publishToken).");
    const [expected] = await Promise.all([secrets.resolve(token), deps.authGate.ensureNotLocked(c, "storage_unavailable")]);
    const presented = presentedSecret((n) => header(c, n));
    if (expected === undefined || !secretsEqual(expected, presented)) {
      if (presented) await deps.authGate.failed(c);
      throw new AppError("unauthorized", "unauthorized", { closeConnection: true });
    }
    const raw = await readBody(c.env?.incoming, c.req.raw, { maxBytes: config.limits.maxBodyBytes, timeoutMs: config.limits.bodyTimeoutMs });
    const parsed = publishSchema.safeParse(parseJsonBody(raw));
    if (!parsed.success) throw new AppError("invalid_request", formatFirstIssue(parsed.error));
    // 403, not 400/422: the request is well formed, but this caller may not use the name. A type
    // is a matter of permission (config can grant it); an id namespace never is.
    const { type, id } = parsed.data;
    if (isSystemType(type) && !matchesEvent(config.webhooks.publish.allowSystemTypes, type)) {
      throw new AppError(
        "reserved_event_type",
        `${type} is an event type the service sends itself; publishing it needs webhooks.publish.allowSystemTypes to list it`,
      );
    }
    if (id !== undefined && isSystemEventId(id)) {
      throw new AppError("reserved_event_id", `the id is in a namespace the service uses for its own events (${SYSTEM_ID_NAMESPACES}); choose another`);
    }
    let out;
    try {
      out = await egress.publish({ type, data: parsed.data.data ?? {}, ...(id !== undefined ? { id } : {}) });
    } catch (cause) {
      throw new AppError("storage_unavailable", "The event could not be stored; retry with the same id.", { cause, retryAfterS: 1 });
    }
    // Parked in this replica's memory only (Redis refused that too): not safe yet, so retry.
    if (out.parked?.storedIn === "memory")
      throw new AppError("storage_unavailable", "The event could not be stored; retry with the same id.", { retryAfterS: 1 });
    return c.json(
      { ok: true, id: out.id, duplicate: out.duplicate, deliveries: out.deliveries.length, ...(out.parked ? { parked: true } : {}) },
      202,
      JSON_UTF8,
    );
  });
}
