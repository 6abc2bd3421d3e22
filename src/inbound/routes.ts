import { randomUUID } from "node:crypto";
import type { Context, Hono } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env.js";
import type { InboundEndpoint } from "../config/inbound.js";
import type { Deps } from "../deps.js";
import { AppError, JSON_UTF8 } from "../errors.js";
import type { Answer } from "../idempotency/idempotency.js";
import { idempotencyKey, inboundGatewayKey } from "../idempotency/keys.js";
import { parseJsonBody, readBody } from "../http/body.js";
import { createClientIpResolver } from "../http/client-ip.js";
import { header } from "../http/header.js";
import { begin, jsonContentType, limits, postOnly, type StageRoute } from "../http/stages.js";
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
 * Mounts `POST <basePath>/<name>` for each enabled inbound endpoint (docs/inbound.md,
 * with the Gateway's hooks.mappings template rules). The pipeline is the TaskFlow routes' one:
 * method → content type → limits → auth → body → JSON. A token is checked before the body is read;
 * a signature after it is read and before it is parsed, over the exact bytes. `agent` answers
 * `202 { ok, runId }` once the Gateway has admitted the run; `wake` answers the Gateway's outcome.
 * A delivery id is an idempotency key (src/idempotency): a repeat within the window gets the first
 * answer again, with `duplicate: true` and `Idempotent-Replayed: true`, and starts nothing; a repeat
 * while the first is still running gets 409 `idempotency_in_progress` with `Retry-After`, so a
 * sender never hears "done" for a run that then fails to start.
 */
export function mountInboundRoutes(app: Hono<AppEnv>, deps: Deps): void {
  const inbound = deps.config.webhooks.inbound;
  if (!inbound?.enabled) return;
  const { config, limitStore, secrets, metrics, agent, idempotency, runs } = deps;
  const clientIp = createClientIpResolver(config.server);
  for (const [name, ep] of Object.entries(inbound.endpoints)) {
    if (!ep.enabled) continue;
    const path = `${inbound.basePath}/${name}`;
    const route: StageRoute = {
      id: `inbound:${name}`,
      path,
      rateLimit: ep.rateLimit ?? config.limits.rateLimit,
      maxInFlight: ep.maxInFlight ?? config.limits.maxInFlight,
    };
    const maxBodyBytes = ep.maxBodyBytes ?? config.limits.maxBodyBytes;
    const inputs = ep.auth.secrets ?? [ep.auth.secret!];
    const standardKey = ep.auth.scheme === "standard-webhooks";
    const resolveSecrets = async () => (await Promise.all(inputs.map((s) => secrets.resolve(s, { standardKey })))).filter((s): s is string => !!s);
    const unauthorized = (closeConnection: boolean) => new AppError("unauthorized", "unauthorized", { closeConnection });
    // The endpoint's own header or body path replaces the scheme's default (a body path given for
    // a token endpoint must not lose to the default webhook-id header).
    const own = ep.idempotency;
    const dedupe = own?.header || own?.bodyPath ? { header: own.header, bodyPath: own.bodyPath } : (DEFAULT_DEDUPE[ep.auth.scheme] ?? {});
    const windowMs = ep.idempotency?.windowMs ?? 24 * 3_600_000;

    // A sender that presented something and failed is counted against its IP (auth-gate.ts); a
    // request missing the credential entirely is not a guess.
    const failed = async (c: Context<AppEnv>, reason: string) => {
      if (!reason.startsWith("missing") && reason !== "no secret resolves") await deps.authGate.failed(c);
    };
    // A locked-out client is refused before its body is read. A token needs no body: it is
    // checked before reading one, like the TaskFlow routes' secret.
    const tokenAuth = createMiddleware<AppEnv>(async (c, next) => {
      await deps.authGate.ensureNotLocked(c);
      if (ep.auth.scheme === "token") {
        const verdict = verifyInbound(ep.auth, await resolveSecrets(), Buffer.alloc(0), (n) => header(c, n));
        if (!verdict.ok) {
          await failed(c, verdict.reason);
          throw unauthorized(true);
        }
      }
      await next();
    });

    const handler = async (c: Context<AppEnv>) => {
      const raw = await readBody(c.env?.incoming, c.req.raw, { maxBytes: maxBodyBytes, timeoutMs: config.limits.bodyTimeoutMs });
      if (ep.auth.scheme !== "token") {
        const verdict = verifyInbound(ep.auth, await resolveSecrets(), raw, (n) => header(c, n));
        if (!verdict.ok) {
          deps.log.info({ endpoint: name, reason: verdict.reason }, "inbound signature refused");
          await failed(c, verdict.reason);
          throw unauthorized(false);
        }
      }
      const body = parseJsonBody(raw);
      const deliveryId = dedupe.header ? header(c, dedupe.header) : dedupe.bodyPath ? stringOf(lookupPath(body, dedupe.bodyPath)) : undefined;
      const ctx = templateContext(body, headersOf(c, ep.auth.header), c.req.query(), path);
      const perform = async (): Promise<Answer> => {
        if (ep.action !== "agent") return { status: 200, body: { ...(await agent.wake(wakeParams(ep, ctx))), ok: true } };
        const idempotencyKey = deliveryId ? inboundGatewayKey(name, deliveryId) : `inbound:${name}:${randomUUID()}`;
        return { status: 202, body: { ok: true, ...(await startRun(ep, name, ctx, idempotencyKey)) } };
      };
      if (!deliveryId) {
        const out = await perform();
        return c.json(out.body as object, out.status as 202, JSON_UTF8);
      }
      const { answer, replayed } = await idempotency.run(idempotencyKey("inbound", name, deliveryId), { windowMs, label: "delivery id" }, perform);
      if (!replayed) return c.json(answer.body as object, answer.status as 202, JSON_UTF8);
      return c.json({ ...(answer.body as object), duplicate: true }, answer.status as 202, { ...JSON_UTF8, "Idempotent-Replayed": "true" });
    };

    async function startRun(e: InboundEndpoint, endpointName: string, ctx: object, idempotencyKey: string) {
      const message = renderTemplate(e.template!, ctx);
      // The Gateway makes the key the run id and answers a repeat with the run it has (for 5 min):
      // a retry after a crash between its admission and our stored answer starts no second run.
      const { runId } = await agent.agent({
        message,
        idempotencyKey,
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
