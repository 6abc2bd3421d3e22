import { createHash } from "node:crypto";
import type { Context, Hono } from "hono";
import type { AppEnv } from "../app-env.js";
import type { Deps } from "../deps.js";
import { flowEvent } from "../egress/flow-events.js";
import { AppError, JSON_UTF8 } from "../errors.js";
import { actionRequestSchema, formatFirstIssue } from "../taskflow/schemas.js";
import { awaitAnswer, type IdempotencyStore } from "../inbound/idempotency.js";
import { runAction } from "./actions.js";
import { parseJsonBody, readBody } from "./body.js";
import { createClientIpResolver } from "./client-ip.js";
import { begin, header, jsonContentType, limits, postOnly, sharedSecretAuth } from "./stages.js";

/** Actions that create something: an `Idempotency-Key` makes their retries safe. */
const IDEMPOTENT_ACTIONS = new Set(["create_flow", "run_task"]);
const IDEMPOTENCY_WINDOW_MS = 24 * 3_600_000;
type Stored = { hash: string; status: number; body: unknown };

/**
 * Mounts every enabled TaskFlow route on its normalised path (and the same path with a trailing
 * slash, as the plugin serves both). The pipeline is the seed's order; see stages.ts.
 */
export function mountTaskFlowRoutes(app: Hono<AppEnv>, deps: Deps): void {
  const { config, limitStore, secrets, metrics, taskflow, events, idempotency } = deps;
  const waitMs = (config.gateway.mode === "remote" ? config.gateway.callTimeoutMs : 1_000) + 2_000;
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
          const idemKey = IDEMPOTENT_ACTIONS.has(parsed.data.action) ? header(c, "idempotency-key")?.trim() : undefined;
          if (idemKey) return idempotent(c, idemKey, raw, () => answer(c, parsed.data));
          const out = await answer(c, parsed.data);
          return c.json(out.body as object, out.status as 200, JSON_UTF8);
        },
      );
    }

    /** Runs the action and renders its envelope; the JSON body and status are what is stored for a retry. */
    async function answer(c: Context<AppEnv>, request: Parameters<typeof runAction>[0]) {
      const out = await runAction(request, route, taskflow);
      if (events) {
        const ev = flowEvent(request.action, route.id, out.status, out.result);
        if (ev) events.emit({ ...ev, source: "flow" });
      }
      if (out.status >= 400) {
        c.set("errorCode", out.code ?? "request_rejected");
        const body = { ok: false, routeId: route.id, code: out.code ?? "request_rejected", error: out.error ?? "request rejected", result: out.result };
        return { status: out.status, body };
      }
      return { status: out.status, body: { ok: true, routeId: route.id, ...(out.code ? { code: out.code } : {}), result: out.result } };
    }
  }

  /**
   * `Idempotency-Key` on create_flow and run_task (Stripe's rule): the first request with a key runs
   * and its answer is kept for 24 h; a retry with the same key and body gets that answer (with
   * `Idempotent-Replayed: true`) and no second Gateway call; concurrent retries wait for the first;
   * the same key with another body is 409 `idempotency_conflict`. Answers of 500 and above are not
   * kept, so a retry after a Gateway outage runs again.
   */
  async function idempotent(c: Context<AppEnv>, idemKey: string, raw: Buffer, run: () => Promise<{ status: number; body: unknown }>) {
    const route = c.get("route")!;
    if (idemKey.length > 255) throw new AppError("invalid_request", "Idempotency-Key: at most 255 characters");
    const key = `taskflow:${route.id}:${idemKey}`;
    const hash = createHash("sha256").update(raw).digest("base64url");
    const store: IdempotencyStore = idempotency;
    for (let round = 0; round < 2; round++) {
      const claim = await store.claim(key, IDEMPOTENCY_WINDOW_MS).catch((cause) => {
        throw new AppError("storage_unavailable", "The idempotency key could not be checked; retry.", { cause, retryAfterS: 1 });
      });
      if (claim.won) {
        let out: { status: number; body: unknown };
        try {
          out = await run();
        } catch (err) {
          await store.release(key).catch(() => {});
          throw err;
        }
        if (out.status < 500) await store.complete(key, JSON.stringify({ hash, ...out } satisfies Stored), IDEMPOTENCY_WINDOW_MS).catch(() => {});
        else await store.release(key).catch(() => {});
        return c.json(out.body as object, out.status as 200, JSON_UTF8);
      }
      const value = claim.value || (await awaitAnswer(store, key, waitMs));
      if (value === undefined) continue; // the first request failed and gave the key up: run now
      if (value === "") throw new AppError("idempotency_in_progress", "A request with this Idempotency-Key is still running; retry later.", { retryAfterS: 1 });
      const stored = JSON.parse(value) as Stored;
      if (stored.hash !== hash) throw new AppError("idempotency_conflict", "This Idempotency-Key was used with a different request body.");
      return c.json(stored.body as object, stored.status as 200, { ...JSON_UTF8, "Idempotent-Replayed": "true" });
    }
    throw new AppError("idempotency_in_progress", "A request with this Idempotency-Key is still running; retry later.", { retryAfterS: 1 });
  }
}
