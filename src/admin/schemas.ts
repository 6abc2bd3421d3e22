import { z } from "zod";
import { AppError } from "../errors.js";
import { parseDuration } from "../util/duration.js";

/**
 * The admin API's request schemas, one named export per query or body, so the routes validate
 * with them and an OpenAPI document can be generated from them. Times stay strings here (an
 * epoch-ms number, an ISO date or a duration back from now such as `1h`): `parseTime` reads them
 * in the route, so the schemas have no transforms and describe the wire as it is.
 */

const time = z.string().max(64).describe("Epoch milliseconds, an ISO 8601 date, or a duration back from now (`30m`, `1h`, `7d`).");
const endpointName = z.string().min(1).max(200);
const limit = (max: number, dflt: number) => z.coerce.number().int().min(1).max(max).default(dflt);

/** `GET /admin/api/deliveries`: newest first. With `status`, the window applies to the last update; without, to the publish time. */
export const deliveryListQuery = z.strictObject({
  status: z.enum(["pending", "delivered", "failed"]).optional(),
  endpoint: endpointName.optional(),
  eventType: z.string().min(1).max(200).optional(),
  since: time.optional(),
  until: time.optional(),
  limit: limit(1_000, 50),
});

/** `GET /admin/api/find?id=`: a delivery id, or an event id (answered with the event's deliveries). */
export const findQuery = z.strictObject({ id: z.string().min(1).max(512) });

/** `POST /admin/api/deliveries/replay`: every failed delivery of `endpoint` updated since `since`; `dryRun` counts them and sends nothing. */
export const bulkReplayBody = z.strictObject({
  endpoint: endpointName,
  status: z.literal("failed").default("failed"),
  since: z.union([time, z.number().int().nonnegative()]).optional(),
  dryRun: z.boolean().default(false),
});

/** `GET /admin/api/endpoints/stats?endpoint=`: success rate and latency over the last hour. */
export const endpointStatsQuery = z.strictObject({ endpoint: endpointName.optional() });

/** `GET /admin/api/parked`. */
export const parkedQuery = z.strictObject({ limit: limit(1_000, 50) });

/** `GET /admin/api/inbound?limit=`: inbound endpoints and their newest runs (`limit` per endpoint). */
export const inboundQuery = z.strictObject({ limit: limit(50, 20) });

/** A time as `time` above describes it, in epoch ms; undefined when absent or empty. */
export function parseTime(name: string, v: string | number | undefined, now = Date.now()): number | undefined {
  if (typeof v === "number") return v;
  if (v === undefined || v === "") return undefined;
  if (/^\d{12,}$/.test(v)) return Number(v);
  const ago = parseDuration(v);
  if (ago !== undefined && /[a-z]$/i.test(v)) return now - ago;
  const at = Date.parse(v);
  if (!Number.isNaN(at)) return at;
  throw new AppError("invalid_request", `${name}: not a time or duration: ${JSON.stringify(v)} (use e.g. 1h, an ISO date or epoch ms)`);
}
