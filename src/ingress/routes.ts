import { createHash } from "node:crypto";
import type { Context, Hono } from "hono";
import type { AppEnv } from "../app-env.js";
import type { Deps } from "../deps.js";
import { flowEvent } from "../egress/flow-events.js";
import { AppError, envelope, JSON_UTF8 } from "../errors.js";
import { ACTIONS, actionRequestSchema } from "../taskflow/actions.js";
import { formatFirstIssue } from "../http/validation.js";
import type { Answer } from "../idempotency/idempotency.js";
import { idempotencyKey } from "../idempotency/keys.js";
import { runAction } from "./actions.js";
import { parseJsonBody, readBody } from "../http/body.js";
import { createClientIpResolver } from "../http/client-ip.js";
import { header } from "../http/header.js";
import { begin, jsonContentType, limits, postOnly } from "../http/stages.js";
import { sharedSecretAuth } from "./auth.js";

const IDEMPOTENCY_WINDOW_MS = 24 * 3_600_000;

/**
 * Mounts every enabled TaskFlow route on its normalised path (and the same path with a trailing
 * slash, as the plugin serves both). The pipeline's order is the contract (docs/http-contract.md); see src/http/stages.ts.
 */
export function mountTaskFlowRoutes(app: Hono<AppEnv>, deps: Deps): void {
  const { config, limitStore, secrets, metrics, taskflow, events, idempotency } = deps;
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
        sharedSecretAuth(route, secrets, deps.authGate),
        async (c) => {
          const raw = await readBody(c.env?.incoming, c.req.raw, {
            maxBytes: route.maxBodyBytes,
            timeoutMs: config.limits.bodyTimeoutMs,
          });
          const parsed = actionRequestSchema.safeParse(parseJsonBody(raw));
          if (!parsed.success) throw new AppError("invalid_request", formatFirstIssue(parsed.error));
          const idemKey = "idempotent" in ACTIONS[parsed.data.action] ? header(c, "idempotency-key")?.trim() : undefined;
          if (idemKey) return idempotent(c, idemKey, raw, (key) => answer(c, parsed.data, key));
          const out = await answer(c, parsed.data);
          return c.json(out.body as object, out.status as 200, JSON_UTF8);
        },
      );
    }

    /** Runs the action and renders its envelope; the JSON body and status are what is stored for a retry. */
    async function answer(c: Context<AppEnv>, request: Parameters<typeof runAction>[0], runtimeKey?: string) {
      const out = await runAction(request, route, taskflow, runtimeKey);
      if (events) {
        const ev = flowEvent(request.action, route.id, out.status, out.result);
        if (ev) events.emit({ ...ev, source: "flow" });
      }
      if (out.status >= 400) {
        c.set("errorCode", out.code ?? "request_rejected");
        return {
          status: out.status,
          body: envelope(route.id, out.code ?? "request_rejected", out.error ?? "request rejected", out.result as Record<string, unknown>),
        };
      }
      return { status: out.status, body: { ok: true, routeId: route.id, ...(out.code ? { code: out.code } : {}), result: out.result } };
    }
  }

  /**
   * `Idempotency-Key` on create_flow and run_task (Stripe's rule, src/idempotency): the first
   * request with a key runs and its answer is kept for 24 h; a retry with the same key and body gets
   * that answer (with `Idempotent-Replayed: true`) and no second Gateway call; a retry while the
   * first is still running waits for it briefly, then gets 409 `idempotency_in_progress` with
   * `Retry-After`; the same key with another body is 409 `idempotency_conflict`. Answers of 500
   * and above are not kept, so a retry after a Gateway outage runs again. Keys are per route.
   */
  async function idempotent(c: Context<AppEnv>, idemKey: string, raw: Buffer, run: (runtimeKey: string) => Promise<Answer>) {
    const route = c.get("route")!;
    if (idemKey.length > 255) throw new AppError("invalid_request", "Idempotency-Key: at most 255 characters");
    const fingerprint = createHash("sha256").update(raw).digest("base64url");
    const key = idempotencyKey("taskflow", route.id, idemKey);
    // The same key goes to the runtime (the bridge plugin on the Gateway), which answers a repeat
    // with what it created the first time: a crash after the Gateway created a flow or task and
    // before the answer was stored cannot create a second one when the sender retries.
    const { answer, replayed } = await idempotency.run(key, { windowMs: IDEMPOTENCY_WINDOW_MS, fingerprint, label: "Idempotency-Key" }, () => run(key));
    return c.json(answer.body as object, answer.status as 200, replayed ? { ...JSON_UTF8, "Idempotent-Replayed": "true" } : JSON_UTF8);
  }
}
