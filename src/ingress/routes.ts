import type { Hono } from "hono";
import type { AppEnv } from "../app-env.js";
import type { Deps } from "../deps.js";
import { flowEvent } from "../egress/flow-events.js";
import { AppError, JSON_UTF8 } from "../errors.js";
import { actionRequestSchema, formatFirstIssue } from "../taskflow/schemas.js";
import { runAction } from "./actions.js";
import { parseJsonBody, readBody } from "./body.js";
import { createClientIpResolver } from "./client-ip.js";
import { begin, jsonContentType, limits, postOnly, sharedSecretAuth } from "./stages.js";

/**
 * Mounts every enabled TaskFlow route on its normalised path (and the same path with a trailing
 * slash, as the plugin serves both). The pipeline is the seed's order; see stages.ts.
 */
export function mountTaskFlowRoutes(app: Hono<AppEnv>, deps: Deps): void {
  const { config, limitStore, secrets, metrics, taskflow, events } = deps;
  const clientIp = createClientIpResolver(config.server);
  for (const route of config.routes) {
    const paths = route.path === "/" ? ["/"] : [route.path, `${route.path}/`];
    for (const path of paths) {
      app.all(
        path,
        begin(route, metrics),
        postOnly,
        jsonContentType,
        limits(route, limitStore, clientIp, metrics),
        sharedSecretAuth(route, secrets),
        async (c) => {
          const raw = await readBody(c.env?.incoming, c.req.raw, {
            maxBytes: route.maxBodyBytes,
            timeoutMs: config.limits.bodyTimeoutMs,
          });
          const parsed = actionRequestSchema.safeParse(parseJsonBody(raw));
          if (!parsed.success) throw new AppError("invalid_request", formatFirstIssue(parsed.error));
          const out = await runAction(parsed.data, route, taskflow);
          if (events) {
            const ev = flowEvent(parsed.data.action, route.id, out.status, out.result);
            if (ev) events.emit(ev);
          }
          if (out.status >= 400) {
            c.set("errorCode", out.code ?? "request_rejected");
            return c.json(
              { ok: false, routeId: route.id, code: out.code ?? "request_rejected", error: out.error ?? "request rejected", result: out.result },
              out.status as 400,
              JSON_UTF8,
            );
          }
          return c.json(
            { ok: true, routeId: route.id, ...(out.code ? { code: out.code } : {}), result: out.result },
            out.status as 200,
            JSON_UTF8,
          );
        },
      );
    }
  }
}
