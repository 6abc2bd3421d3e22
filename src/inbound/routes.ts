import { createHash, randomUUID } from "node:crypto";
import type { Context, Hono } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env.js";
import type { InboundEndpoint } from "../config/inbound.js";
import type { Route } from "../config/schema.js";
import type { Deps } from "../deps.js";
import { AppError, JSON_UTF8 } from "../errors.js";
import { parseJsonBody, readBody } from "../ingress/body.js";
import { createClientIpResolver } from "../ingress/client-ip.js";
import { begin, header, jsonContentType, limits, postOnly } from "../ingress/stages.js";
import { lookupPath, renderTemplate } from "../util/template.js";
import { verifyInbound } from "./verify.js";

/** Where each scheme's senders put the delivery id, when the endpoint does not say. */
const DEFAULT_DEDUPE: Record<string, { header?: string; bodyPath?: string }> = {
  "standard-webhooks": { header: "webhook-id" },
  github: { header: "x-github-delivery" },
  stripe: { bodyPath: "id" },
  token: { header: "webhook-id" },
  hmac: { header: "webhook-id" },
};

/**
 * The template context, as the Gateway's hooks.mappings has it: `{{body.x}}` (also
 * `{{payload.x}}` and, for an object body, `{{x}}`), `{{headers.x-event-type}}`, `{{query.kind}}`,
 * `{{path}}`, `{{now}}`.
 */
export function templateContext(body: unknown, headers: Record<string, string>, query: Record<string, string>, path: string, now = new Date()) {
  const top = body && typeof body === "object" && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  return { ...top, body, payload: body, headers, query, path, now: now.toISOString() };
}

/**
 * Gateway idempotency keys are at most 256 characters; longer ones, and any a sender filled with
 * something other than printable ASCII (a body's id can hold anything), are hashed.
 */
const gatewayKey = (s: string) => (s.length <= 200 && /^[\x20-\x7e]+$/.test(s) ? s : `inbound:${createHash("sha256").update(JSON.stringify(s)).digest("hex")}`);

/**
 * Mounts `POST <basePath>/<name>` for each enabled inbound endpoint (seed 002's incoming webhooks,
 * with the Gateway's hooks.mappings template rules). The pipeline is the TaskFlow routes' one:
 * method → content type → limits → auth → body → JSON. A token is checked before the body is read;
 * a signature after it is read and before it is parsed, over the exact bytes. A repeated delivery
 * id within the window answers `200 { ok, duplicate: true }` and starts nothing. `agent` answers
 * `202 { ok, runId }` once the Gateway has admitted the run; `wake` answers the Gateway's outcome.
 */
export function mountInboundRoutes(app: Hono<AppEnv>, deps: Deps): void {
  const inbound = deps.config.webhooks.inbound;
  if (!inbound?.enabled) return;
  const { config, limitStore, secrets, metrics, agent, idempotency, runs } = deps;
  const clientIp = createClientIpResolver(config.server);
  for (const [name, ep] of Object.entries(inbound.endpoints)) {
    if (!ep.enabled) continue;
    const path = `${inbound.basePath}/${name}`;
    const route = {
      id: `inbound:${name}`,
      path,
      sessionKey: ep.sessionKey ?? "",
      secret: "",
      controllerId: "",
      rateLimit: ep.rateLimit ?? config.limits.rateLimit,
      maxInFlight: ep.maxInFlight ?? config.limits.maxInFlight,
      maxBodyBytes: ep.maxBodyBytes ?? config.limits.maxBodyBytes,
    } satisfies Route;
    const inputs = ep.auth.secrets ?? [ep.auth.secret!];
    const standardKey = ep.auth.scheme === "standard-webhooks";
    const resolveSecrets = async () => (await Promise.all(inputs.map((s) => secrets.resolve(s, { standardKey })))).filter((s): s is string => !!s);
    const unauthorized = (closeConnection: boolean) => new AppError("unauthorized", "unauthorized", { closeConnection });
    // The endpoint's own header or body path replaces the scheme's default (a body path given for
    // a token endpoint must not lose to the default webhook-id header).
    const own = ep.idempotency;
    const dedupe = own?.header || own?.bodyPath ? { header: own.header, bodyPath: own.bodyPath } : (DEFAULT_DEDUPE[ep.auth.scheme] ?? {});
    const windowMs = ep.idempotency?.windowMs ?? 24 * 3_600_000;

    // A token needs no body: it is checked before reading one, like the TaskFlow routes' secret.
    const tokenAuth = createMiddleware<AppEnv>(async (c, next) => {
      if (ep.auth.scheme === "token") {
        const verdict = verifyInbound(ep.auth, await resolveSecrets(), Buffer.alloc(0), (n) => header(c, n));
        if (!verdict.ok) throw unauthorized(true);
      }
      await next();
    });

    const handler = async (c: Context<AppEnv>) => {
      const raw = await readBody(c.env?.incoming, c.req.raw, { maxBytes: route.maxBodyBytes, timeoutMs: config.limits.bodyTimeoutMs });
      if (ep.auth.scheme !== "token") {
        const verdict = verifyInbound(ep.auth, await resolveSecrets(), raw, (n) => header(c, n));
        if (!verdict.ok) {
          deps.log.info({ endpoint: name, reason: verdict.reason }, "inbound signature refused");
          throw unauthorized(false);
        }
      }
      const body = parseJsonBody(raw);
      const deliveryId = dedupe.header ? header(c, dedupe.header) : dedupe.bodyPath ? stringOf(lookupPath(body, dedupe.bodyPath)) : undefined;
      const claimKey = deliveryId ? `inbound:${name}:${deliveryId}` : undefined;
      if (claimKey) {
        const claim = await idempotency.claim(claimKey, windowMs).catch((cause) => {
          throw new AppError("storage_unavailable", "The delivery id could not be checked; retry.", { cause, retryAfterS: 1 });
        });
        if (!claim.won) {
          const first = claim.value ? (JSON.parse(claim.value) as Record<string, unknown>) : {};
          return c.json({ ok: true, duplicate: true, ...first }, 200, JSON_UTF8);
        }
      }
      try {
        const ctx = templateContext(body, headersOf(c, ep.auth.header), c.req.query(), path);
        const out = ep.action === "agent" ? await startRun(ep, name, ctx, claimKey) : await agent.wake(wakeParams(ep, ctx));
        if (claimKey) await idempotency.complete(claimKey, JSON.stringify(out), windowMs).catch(() => {});
        return ep.action === "agent" ? c.json({ ok: true, ...out }, 202, JSON_UTF8) : c.json({ ...out, ok: true }, 200, JSON_UTF8);
      } catch (err) {
        if (claimKey) await idempotency.release(claimKey).catch(() => {});
        throw err;
      }
    };

    async function startRun(e: InboundEndpoint, endpointName: string, ctx: object, claimKey: string | undefined) {
      const message = renderTemplate(e.template!, ctx);
      const { runId } = await agent.agent({
        message,
        idempotencyKey: gatewayKey(claimKey ?? `inbound:${endpointName}:${randomUUID()}`),
        ...(e.agentId ? { agentId: e.agentId } : {}),
        ...(e.sessionKey ? { sessionKey: e.sessionKey } : {}),
        label: e.name ?? endpointName,
      });
      await runs?.started(runId, { endpoint: endpointName, agentId: e.agentId, sessionKey: e.sessionKey });
      return { runId };
    }

    for (const p of [path, `${path}/`]) {
      app.all(p, begin(route, metrics), postOnly, jsonContentType, limits(route, limitStore, clientIp, metrics), tokenAuth, handler);
    }
  }
}

function wakeParams(ep: InboundEndpoint, ctx: object) {
  return {
    mode: ep.wakeMode,
    text: renderTemplate(ep.textTemplate ?? ep.template!, ctx),
    ...(ep.agentId ? { agentId: ep.agentId } : {}),
    ...(ep.sessionKey ? { sessionKey: ep.sessionKey } : {}),
  };
}

function stringOf(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : typeof v === "number" ? String(v) : undefined;
}

/** Credentials never reach a template (and so never an agent's prompt). */
const SECRET_HEADERS = /^(authorization|proxy-authorization|cookie|x-openclaw-webhook-secret|webhook-signature|x-hub-signature(-256)?|stripe-signature)$/;

function headersOf(c: Context<AppEnv>, authHeader: string | undefined): Record<string, string> {
  const incoming = c.env?.incoming;
  const all = incoming
    ? Object.entries(incoming.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : (v ?? "")] as const)
    : [...c.req.raw.headers.entries()];
  return Object.fromEntries(all.filter(([k]) => !SECRET_HEADERS.test(k) && k !== authHeader));
}
