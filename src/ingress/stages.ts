import { createMiddleware } from "hono/factory";
import type { Route } from "../config/schema.js";
import { AppError } from "../errors.js";
import type { Metrics } from "../metrics.js";
import type { SecretResolver } from "../secrets/resolve.js";
import type { LimitStore } from "../limits/store.js";
import type { ClientIpResolver } from "./client-ip.js";
import { presentedSecret, secretsEqual } from "./auth.js";
import type { AppEnv } from "../app-env.js";

/**
 * The seed's stages, one middleware each, in its order: method → content type → limits (fixed
 * window, then in-flight) → auth; the body and the schema follow in the handler. A stage that
 * rejects throws an AppError, so no later stage runs. Rejections before the body is read close
 * the connection (keep-alive poisoning: reference/stack-measurements.md §2.2).
 */

/** Records the route id for the envelope and the metrics, and the outcome once the request ends. */
export const begin = (route: Route, metrics: Metrics) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const started = performance.now();
    c.set("route", route);
    await next();
    metrics.ingressRequests.inc({ route: route.id, status: String(c.res.status), code: c.get("errorCode") ?? "" });
    metrics.ingressDuration.observe({ route: route.id }, (performance.now() - started) / 1000);
  });

export const postOnly = createMiddleware<AppEnv>(async (c, next) => {
  if (c.req.method !== "POST") throw new AppError("method_not_allowed", "Method Not Allowed", { closeConnection: true });
  await next();
});

/** `application/json` or any `*+json` media type, parameters ignored. */
export const jsonContentType = createMiddleware<AppEnv>(async (c, next) => {
  const media = (c.req.header("content-type") ?? "").split(";", 1)[0]!.trim().toLowerCase();
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
export const limits = (route: Route, store: LimitStore, clientIp: ClientIpResolver, metrics: Metrics) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const ip = clientIp(c.env?.incoming?.socket?.remoteAddress, (name) => c.req.header(name));
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
      await acquired.release();
    }
  });

/** Re-resolves the route's secret on every request; a secret that does not resolve matches nothing. */
export const sharedSecretAuth = (route: Route, secrets: SecretResolver) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const expected = await secrets.resolve(route.secret);
    const presented = presentedSecret((name) => c.req.header(name));
    if (expected === undefined || !secretsEqual(expected, presented)) {
      throw new AppError("unauthorized", "unauthorized", { closeConnection: true });
    }
    await next();
  });
