import type { Context, Hono } from "hono";
import type { z } from "zod";
import type { AppEnv } from "../app-env.js";
import type { Deps } from "../deps.js";
import type { Egress } from "../egress/engine.js";
import { ParkedRefused } from "../egress/publish-or-park.js";
import { adminAuth, createRequestFacts, noFraming } from "./auth.js";
import { AppError, JSON_UTF8 } from "../errors.js";
import { parseJsonBody, readBody } from "../http/body.js";
import { describeSecret } from "../secrets/resolve.js";
import { formatFirstIssue } from "../http/validation.js";
import { bulkReplayBody, deliveryListQuery, endpointStatsQuery, findQuery, inboundQuery, parkedQuery, parseTime } from "./schemas.js";

/** A parked event's replay or discard: refusals as they are; anything else is Redis being away (it parks what fails for good). */
function parkedRefused(err: unknown): never {
  if (err instanceof ParkedRefused) throw new AppError(err.code, err.message);
  throw new AppError("storage_unavailable", "Redis could not be reached; retry.", { cause: err, retryAfterS: 1 });
}

/**
 * The admin API under `/admin/api` (delivery log, replay, endpoint health, queue stats), behind
 * `admin.token` as `Authorization: Bearer`. Without a token configured it answers 404, so an
 * unconfigured deployment exposes nothing. The operations issue builds the CLI and dashboard on it.
 */
export function mountAdminRoutes(app: Hono<AppEnv>, deps: Deps): void {
  const { config } = deps;
  const egressOf = (): Egress => {
    if (!deps.egress) throw new AppError("not_found", "Outgoing webhooks are not configured (webhooks.endpoints and a Redis).");
    return deps.egress;
  };
  const ok = (c: Context<AppEnv>, result: unknown, status: 200 | 202 = 200) => c.json({ ok: true, result }, status, JSON_UTF8);
  const parse = <S extends z.ZodType>(schema: S, input: unknown): z.infer<S> => {
    const r = schema.safeParse(input);
    if (!r.success) throw new AppError("invalid_request", formatFirstIssue(r.error));
    return r.data;
  };
  const body = async (c: Context<AppEnv>) => {
    const raw = await readBody(c.env?.incoming, c.req.raw, { maxBytes: 64 * 1024, timeoutMs: config.limits.bodyTimeoutMs });
    if (!raw.length) return {};
    // A body is JSON or nothing: another media type is refused, as on every other surface.
    const media = (c.req.header("content-type") ?? "").split(";", 1)[0]!.trim().toLowerCase();
    if (media !== "application/json" && !media.endsWith("+json"))
      throw new AppError("unsupported_media_type", "Unsupported Media Type: send application/json.");
    return parseJsonBody(raw);
  };

  app.use("/admin/api/*", noFraming, adminAuth(deps, createRequestFacts(deps)));

  const inboundEndpoints = () => {
    const inbound = config.webhooks.inbound;
    if (!inbound?.enabled) return [];
    return Object.entries(inbound.endpoints).map(([name, e]) => ({
      name,
      path: `${inbound.basePath}/${name}`,
      enabled: e.enabled,
      action: e.action,
      agentId: e.agentId ?? null,
      auth: e.auth.scheme,
    }));
  };

  app.get("/admin/api/routes", (c) => {
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
      inbound: inboundEndpoints(),
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

  app.get("/admin/api/endpoints/stats", async (c) => {
    const q = parse(endpointStatsQuery, c.req.query());
    const egress = egressOf();
    if (q.endpoint !== undefined && !egress.hasEndpoint(q.endpoint)) throw new AppError("not_found", `no endpoint ${q.endpoint}`);
    return ok(c, { stats: await egress.stats(q.endpoint) });
  });

  app.get("/admin/api/deliveries", async (c) => {
    const { status, endpoint, eventType, limit, ...q } = parse(deliveryListQuery, c.req.query());
    const since = parseTime("since", q.since);
    const until = parseTime("until", q.until);
    const egress = egressOf();
    // An event-type filter reads further back (at most 20 pages), then trims to `limit`.
    const ids = await egress.log.list({
      ...(status ? { status } : {}),
      ...(endpoint ? { endpoint } : {}),
      ...(since !== undefined ? { since } : {}),
      ...(until !== undefined ? { until } : {}),
      limit: eventType ? limit * 20 : limit,
    });
    const rows = await egress.log.summaries(ids);
    return ok(c, { deliveries: rows.filter((r) => !eventType || r.eventType === eventType).slice(0, limit) });
  });
  /** A delivery id, or an event id whose deliveries are listed: the dashboard's search box. */
  app.get("/admin/api/find", async (c) => {
    const { id } = parse(findQuery, c.req.query());
    const found = await egressOf().log.find(id);
    if (!found) throw new AppError("not_found", `no delivery or event ${id}`);
    return ok(c, found);
  });
  app.get("/admin/api/deliveries/:id", async (c) => {
    const rec = await egressOf().log.get(c.req.param("id"));
    if (!rec) throw new AppError("not_found", `no delivery ${c.req.param("id")}`);
    return ok(c, { delivery: rec });
  });
  app.post("/admin/api/deliveries/:id/replay", async (c) => {
    const out = await egressOf().replay(c.req.param("id"));
    return ok(c, { id: c.req.param("id"), ...out }, 202);
  });
  app.post("/admin/api/deliveries/replay", async (c) => {
    const b = parse(bulkReplayBody, await body(c));
    const since = parseTime("since", b.since) ?? 0;
    // A dry run is answered 200 (nothing was started); the real one 202.
    const out = await egressOf().replayFailed(b.endpoint, since, { dryRun: b.dryRun });
    // `since` as epoch ms: confirming a dry run with it replays from the same instant.
    return ok(c, { endpoint: b.endpoint, since, ...out }, b.dryRun ? 200 : 202);
  });
  // Parked events: stored or queued nowhere for a reason other than Redis being away (publish-or-park.ts).
  app.get("/admin/api/parked", async (c) => {
    const q = parse(parkedQuery, c.req.query());
    return ok(c, await egressOf().parked.list(q.limit));
  });
  app.get("/admin/api/parked/:id", async (c) => {
    const entry = await egressOf().parked.get(c.req.param("id"));
    if (!entry) throw new AppError("not_found", `no parked event ${c.req.param("id")}`);
    return ok(c, { parked: entry });
  });
  app.post("/admin/api/parked/:id/replay", async (c) => ok(c, await egressOf().parked.replay(c.req.param("id")).catch(parkedRefused), 202));
  app.post("/admin/api/parked/:id/discard", async (c) => ok(c, await egressOf().parked.discard(c.req.param("id")).catch(parkedRefused)));
  /** Inbound endpoints and their newest runs (runs.ts keeps them; none without Redis and egress). */
  app.get("/admin/api/inbound", async (c) => {
    const q = parse(inboundQuery, c.req.query());
    const endpoints = inboundEndpoints();
    const runs = deps.runs
      ? await deps.runs.recent(
          endpoints.map((e) => e.name),
          q.limit,
        )
      : [];
    return ok(c, { endpoints, runs, runsRecorded: deps.runs !== undefined });
  });
  app.get("/admin/api/queue", async (c) => {
    const counts = await egressOf().jobCounts();
    return ok(c, { counts });
  });
}
