import type { Context, Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../app-env.js";
import type { Deps } from "../deps.js";
import { ReplayRefused, type Egress } from "../egress/engine.js";
import { ParkedRefused } from "../egress/publish-or-park.js";
import { adminAuth, createRequestFacts, noFraming } from "./auth.js";
import { AppError, JSON_UTF8 } from "../errors.js";
import { parseJsonBody, readBody } from "../http/body.js";
import { describeSecret } from "../secrets/resolve.js";
import { formatFirstIssue } from "../http/validation.js";
import { parseDuration } from "../util/duration.js";

/** `since`: epoch milliseconds, an ISO date, or a duration back from now ("1h", "30m"). */
export function parseSince(v: string | undefined, now = Date.now()): number | undefined {
  if (v === undefined || v === "") return undefined;
  if (/^\d{12,}$/.test(v)) return Number(v);
  const ago = parseDuration(v);
  if (ago !== undefined && /[a-z]$/i.test(v)) return now - ago;
  const at = Date.parse(v);
  if (!Number.isNaN(at)) return at;
  throw new AppError("invalid_request", `since: not a time or duration: ${JSON.stringify(v)} (use e.g. 1h, an ISO date or epoch ms)`);
}

export const listQuery = z.strictObject({
  status: z.enum(["pending", "delivered", "failed"]).optional(),
  endpoint: z.string().min(1).optional(),
  eventType: z.string().min(1).optional(),
  since: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(1_000).default(50),
});
export const bulkReplay = z.strictObject({ endpoint: z.string().min(1), status: z.literal("failed").default("failed"), since: z.union([z.string(), z.number()]).optional() });

export const parkedQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(1_000).default(50) });

/** A parked event's replay or discard: refusals as they are; anything else is Redis being away (it parks what fails for good). */
function parkedRefused(err: unknown): never {
  if (err instanceof ParkedRefused) throw new AppError(err.code, err.message);
  throw new AppError("storage_unavailable", "Redis could not be reached; retry.", { cause: err, retryAfterS: 1 });
}

function refused(err: unknown): never {
  if (err instanceof ReplayRefused) {
    const code = err.code === "endpoint_unknown" ? "not_found" : err.code;
    throw new AppError(code, err.message);
  }
  throw err;
}

/**
 * The admin API under `/admin/api` (delivery log, replay, endpoint health, queue stats), behind
 * `admin.token` as `Authorization: Bearer`. Without a token configured it answers 404, so an
 * unconfigured deployment exposes nothing. The operations issue builds the CLI and dashboard on it.
 */
export function mountAdminRoutes(app: Hono<AppEnv>, deps: Deps): void {
  const { config } = deps;
  const egressOf = (): Egress => {
    if (!deps.egress) throw new AppError("not_found", "Outgoing webhooks are not configured (webhooks.endpoints and redis.url).");
    return deps.egress;
  };
  const ok = (c: Context<AppEnv>, result: unknown, status: 200 | 202 = 200) => c.json({ ok: true, result }, status, JSON_UTF8);
  const body = async (c: Context<AppEnv>) => {
    const raw = await readBody(c.env?.incoming, c.req.raw, { maxBytes: 64 * 1024, timeoutMs: config.limits.bodyTimeoutMs });
    if (!raw.length) return {};
    // A body is JSON or nothing: another media type is refused, as on every other surface.
    const media = (c.req.header("content-type") ?? "").split(";", 1)[0]!.trim().toLowerCase();
    if (media !== "application/json" && !media.endsWith("+json")) throw new AppError("unsupported_media_type", "Unsupported Media Type: send application/json.");
    return parseJsonBody(raw);
  };

  app.use("/admin/api/*", noFraming, adminAuth(deps, createRequestFacts(deps)));

  app.get("/admin/api/routes", (c) => {
    const inbound = config.webhooks.inbound;
    return ok(c, {
      taskflow: config.routes.map((r) => ({
        id: r.id,
        path: r.path,
        sessionKey: r.sessionKey,
        controllerId: r.controllerId,
        secret: describeSecret(r.secret),
        rateLimit: r.rateLimit,
        maxInFlight: r.maxInFlight,
      })),
      inbound: inbound?.enabled
        ? Object.entries(inbound.endpoints).map(([name, e]) => ({
            name,
            path: `${inbound.basePath}/${name}`,
            enabled: e.enabled,
            action: e.action,
            agentId: e.agentId ?? null,
            auth: e.auth.scheme,
          }))
        : [],
    });
  });
  app.get("/admin/api/endpoints", async (c) => ok(c, { endpoints: deps.egress ? await deps.egress.endpointStatus() : [] }));
  app.post("/admin/api/endpoints/:name/test", async (c) => {
    const out = await egressOf().sendTest(c.req.param("name"));
    if (!out) throw new AppError("not_found", `no endpoint ${c.req.param("name")}`);
    return ok(c, { eventId: out.id, deliveryId: out.deliveries[0] ?? null }, 202);
  });
  app.post("/admin/api/endpoints/:name/enable", async (c) => {
    if (!(await egressOf().enable(c.req.param("name")))) throw new AppError("not_found", `no endpoint ${c.req.param("name")}`);
    return ok(c, { name: c.req.param("name"), enabled: true });
  });
  app.post("/admin/api/endpoints/:name/disable", async (c) => {
    if (!(await egressOf().disable(c.req.param("name"), "disabled by an operator"))) throw new AppError("not_found", `no endpoint ${c.req.param("name")}`);
    return ok(c, { name: c.req.param("name"), enabled: false });
  });

  app.get("/admin/api/deliveries", async (c) => {
    const q = listQuery.safeParse(c.req.query());
    if (!q.success) throw new AppError("invalid_request", formatFirstIssue(q.error));
    const { status, endpoint, eventType, limit } = q.data;
    const since = parseSince(q.data.since);
    const egress = egressOf();
    // An event-type filter reads further back, then trims to `limit`.
    const ids = await egress.log.list({ ...(status ? { status } : {}), ...(endpoint ? { endpoint } : {}), ...(since !== undefined ? { since } : {}), limit: eventType ? limit * 20 : limit });
    const records = (await Promise.all(ids.map((id) => egress.log.get(id)))).filter((r) => r !== undefined);
    const deliveries = records
      .filter((r) => !eventType || r.eventType === eventType)
      .slice(0, limit)
      .map(({ attemptLog, ...r }) => ({ ...r, lastDurationMs: attemptLog.at(-1)?.durationMs, lastErrorClass: attemptLog.at(-1)?.errorClass }));
    return ok(c, { deliveries });
  });
  app.get("/admin/api/deliveries/:id", async (c) => {
    const rec = await egressOf().log.get(c.req.param("id"));
    if (!rec) throw new AppError("not_found", `no delivery ${c.req.param("id")}`);
    return ok(c, { delivery: rec });
  });
  app.post("/admin/api/deliveries/:id/replay", async (c) => {
    const out = await egressOf().replay(c.req.param("id")).catch(refused);
    return ok(c, { id: c.req.param("id"), ...out }, 202);
  });
  app.post("/admin/api/deliveries/replay", async (c) => {
    const parsed = bulkReplay.safeParse(await body(c));
    if (!parsed.success) throw new AppError("invalid_request", formatFirstIssue(parsed.error));
    const since = typeof parsed.data.since === "number" ? parsed.data.since : (parseSince(parsed.data.since) ?? 0);
    const out = await egressOf().replayFailed(parsed.data.endpoint, since).catch(refused);
    return ok(c, out, 202);
  });
  // Parked events: stored or queued nowhere for a reason other than Redis being away (publish-or-park.ts).
  app.get("/admin/api/parked", async (c) => {
    const q = parkedQuery.safeParse(c.req.query());
    if (!q.success) throw new AppError("invalid_request", formatFirstIssue(q.error));
    return ok(c, await egressOf().parked.list(q.data.limit));
  });
  app.get("/admin/api/parked/:id", async (c) => {
    const entry = await egressOf().parked.get(c.req.param("id"));
    if (!entry) throw new AppError("not_found", `no parked event ${c.req.param("id")}`);
    return ok(c, { parked: entry });
  });
  app.post("/admin/api/parked/:id/replay", async (c) => ok(c, await egressOf().parked.replay(c.req.param("id")).catch(parkedRefused), 202));
  app.post("/admin/api/parked/:id/discard", async (c) => ok(c, await egressOf().parked.discard(c.req.param("id")).catch(parkedRefused)));
  app.get("/admin/api/queue", async (c) => {
    const counts = await egressOf().queue.getJobCounts("waiting", "active", "delayed", "completed", "failed", "prioritized");
    return ok(c, { counts });
  });
}
