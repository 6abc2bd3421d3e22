import { createMiddleware } from "hono/factory";
import { AppError } from "../errors.js";
import type { Metrics } from "../metrics.js";
import type { LimitStore } from "../limits/store.js";
import type { ClientIpResolver } from "./client-ip.js";
import { header } from "./header.js";
import type { AppEnv } from "../app-env.js";

/**
 * What the stages read of a route: its id (the envelope's `routeId`, metric labels), its
 * normalised path (the limits' key) and its limits. TaskFlow routes and inbound endpoints are both.
 */
export type StageRoute = { id: string; path: string; rateLimit: { windowMs: number; maxRequests: number }; maxInFlight: number };

/**
 * The request pipeline's stages, one middleware each, in its order: method → content type → limits (fixed
 * window, then in-flight) → auth; the body and the schema follow in the handler. A stage that
 * rejects throws an AppError, so no later stage runs. Rejections before the body is read close
 * the connection (keep-alive poisoning: docs/http-contract.md, "Why the stages are hand-written").
 */

/**
 * Records the route id for the envelope and the metrics, and the outcome once the request ends.
 * The metric children are looked up once per route and outcome: prom-client hashes a label
 * object (sorting its keys) on every `inc({…})`, which is on every request's path.
 */
export const begin = (route: StageRoute, metrics: Metrics) => {
  const duration = metrics.ingressDuration.labels(route.id);
  const outcomes = new Map<string, ReturnType<Metrics["ingressRequests"]["labels"]>>();
  return createMiddleware<AppEnv>(async (c, next) => {
    const started = performance.now();
    c.set("route", route);
    await next();
    const status = String(c.res.status);
    const code = c.get("errorCode") ?? "";
    const key = `${status} ${code}`;
    let counter = outcomes.get(key);
    if (!counter) outcomes.set(key, (counter = metrics.ingressRequests.labels(route.id, status, code)));
    counter.inc();
    duration.observe((performance.now() - started) / 1000);
  });
};

export const postOnly = createMiddleware<AppEnv>(async (c, next) => {
  if (c.req.method !== "POST") throw new AppError("method_not_allowed", "Method Not Allowed", { closeConnection: true });
  await next();
});

/** `application/json` or any `*+json` media type, parameters ignored. */
export const jsonContentType = createMiddleware<AppEnv>(async (c, next) => {
  const media = (header(c, "content-type") ?? "").split(";", 1)[0]!.trim().toLowerCase();
  if (media !== "application/json" && !media.endsWith("+json")) {
    throw new AppError("unsupported_media_type", "Unsupported Media Type: send application/json.", { closeConnection: true });
  }
  await next();
});

/**
 * Takes the window count and an in-flight lease in one store call, keyed by the route's
 * normalised path and the client IP, and gives the lease back on every exit path: success,
 * thrown errors, and client aborts (the body read then fails and unwinds through here).
 */
export const limits = (route: StageRoute, store: LimitStore, clientIp: ClientIpResolver, metrics: Metrics) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const ip = clientIp(c.env?.incoming?.socket?.remoteAddress, (name) => header(c, name));
    const key = `${route.path}|${ip}`;
    let acquired;
    try {
      acquired = await store.acquire(key, {
        windowMs: route.rateLimit.windowMs,
        maxRequests: route.rateLimit.maxRequests,
        maxInFlight: route.maxInFlight,
      });
    } catch (cause) {
      throw new AppError("limits_unavailable", "Rate-limit store unavailable; try again.", {
        cause,
        retryAfterS: 1,
        closeConnection: true,
      });
    }
    if (!acquired.ok) {
      metrics.limitRejections.inc({ route: route.id, limit: acquired.reason === "rate_limited" ? "rate" : "in_flight" });
      if (acquired.reason === "rate_limited") {
        throw new AppError("rate_limited", "Too Many Requests", {
          retryAfterS: Math.max(1, Math.ceil(acquired.retryAfterMs / 1000)),
          closeConnection: true,
        });
      }
      throw new AppError("in_flight_limited", "Too many requests in flight for this client.", {
        retryAfterS: 1,
        closeConnection: true,
      });
    }
    try {
      await next();
    } finally {
      // Not awaited: the answer need not wait for the release round trip. Commands on one Redis
      // connection run in order, so an acquire this replica asks for in a later event-loop turn
      // sees the slot freed; one in the same turn may not (a turn's batches leave at its end,
      // limits/redis-store.ts, in the order they were first asked for).
      void acquired.release();
    }
  });
