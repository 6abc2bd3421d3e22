import { randomUUID } from "node:crypto";
import { Hono } from "hono";
import type { AppEnv } from "./app-env.js";
import type { Deps } from "./deps.js";
import { AppError, envelope, JSON_UTF8, toErrorResponse } from "./errors.js";
import { mountDashboard } from "./admin/dashboard.js";
import { mountAdminRoutes } from "./admin/routes.js";
import { mountPublishRoute } from "./egress/publish-route.js";
import { mountInboundRoutes } from "./inbound/routes.js";
import { mountTaskFlowRoutes } from "./ingress/routes.js";
import { redisAnswers } from "./redis.js";
import { buildOpenApi } from "./openapi/document.js";
import { header } from "./http/header.js";
import { version } from "./version.js";

/** Builds the HTTP app from its dependencies. No I/O happens here; main.ts serves it. */
export function createApp(deps: Deps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  // One log line per request: its id (X-Request-Id when the caller sent a sane one, else a new
  // one, returned either way), route, status, error code and duration. No headers, no bodies, no
  // query strings: nothing that could carry a secret.
  app.use("*", async (c, next) => {
    const started = performance.now();
    const given = header(c, "x-request-id");
    const id = given && given.length <= 128 && /^[\w.:-]+$/.test(given) ? given : randomUUID();
    // On Node the header goes on the ServerResponse, which merges it into the answer's head:
    // reading `c.res.headers` would turn the answer's plain header object into a web `Headers`
    // and take @hono/node-server off its fast path.
    const outgoing = c.env?.outgoing;
    if (outgoing) outgoing.setHeader("X-Request-Id", id);
    await next();
    if (!outgoing) c.res.headers.set("X-Request-Id", id);
    if (c.req.path === "/healthz" || c.req.path === "/readyz" || c.req.path === "/metrics") return;
    deps.log.info(
      {
        reqId: id,
        method: c.req.method,
        path: c.req.path,
        route: c.get("route")?.id ?? null,
        status: c.res.status,
        code: c.get("errorCode") ?? null,
        durationMs: Math.round((performance.now() - started) * 100) / 100,
      },
      "request",
    );
  });

  app.get("/healthz", (c) => c.json({ ok: true, version: version() }));
  app.get("/readyz", async (c) => {
    // Each check is true when it holds: `accepting` turns false once shutdown begins.
    const checks: Record<string, boolean> = { accepting: !deps.state.shuttingDown };
    if (deps.redis) checks.redis = await redisAnswers(deps.redis);
    if (deps.gateway) checks.gateway = deps.gateway.connected;
    const workers = deps.egress?.workerRunning();
    if (workers !== undefined) checks.workers = workers;
    const ready = Object.values(checks).every(Boolean);
    return c.json({ ok: ready, checks }, ready ? 200 : 503);
  });
  app.get("/metrics", async (c) => c.text(await deps.metrics.registry.metrics(), 200, { "Content-Type": deps.metrics.registry.contentType }));

  // The API description of what this deployment serves (openapi/document.ts), built on first use.
  let openapi: string | undefined;
  app.get("/openapi.json", (c) => {
    openapi ??= JSON.stringify(buildOpenApi(deps.config));
    return c.body(openapi, 200, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-cache" });
  });

  mountTaskFlowRoutes(app, deps);
  mountPublishRoute(app, deps);
  mountInboundRoutes(app, deps);
  mountAdminRoutes(app, deps);
  mountDashboard(app, deps);

  app.notFound((c) => {
    c.set("errorCode", "not_found");
    return c.json(envelope(null, "not_found", "No route at this path."), 404, JSON_UTF8);
  });
  app.onError((err, c) => {
    const routeId = c.get("route")?.id ?? null;
    const { status, body, headers } = toErrorResponse(err, routeId);
    c.set("errorCode", body.code);
    if (!(err instanceof AppError) || status >= 500) {
      deps.log.error({ err, cause: err instanceof AppError ? err.cause : undefined, routeId, code: body.code }, "request failed");
    }
    return c.json(body, status, headers);
  });
  return app;
}
