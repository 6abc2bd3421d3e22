import type { Context, Next } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { AppEnv } from "../app-env.js";
import type { Deps } from "../deps.js";
import { AppError } from "../errors.js";
import { presentedSecret, secretsEqual } from "../http/credentials.js";
import { createProxyTrust } from "../http/client-ip.js";
import { header } from "../http/header.js";
import { SESSION_TTL_MS, tokenFingerprint } from "./sessions.js";

export const SESSION_COOKIE = "ocwh_admin";

/**
 * The dashboard and the admin API may not be framed by any page (clickjacking the Replay
 * buttons): `X-Frame-Options: DENY` for old browsers, CSP `frame-ancestors 'none'` for the rest.
 * An answer that already has a CSP (the dashboard's pages) carries the directive in it.
 */
export const noFraming = async (c: Context<AppEnv>, next: Next) => {
  await next();
  c.res.headers.set("X-Frame-Options", "DENY");
  c.res.headers.set("X-Content-Type-Options", "nosniff");
  if (!c.res.headers.has("Content-Security-Policy")) c.res.headers.set("Content-Security-Policy", "frame-ancestors 'none'");
};

/**
 * The request context the dashboard needs from the socket: whether the peer is a trusted proxy
 * (`server.trustedProxies`), so that its `X-Forwarded-Proto` and `X-Forwarded-Host` are believed.
 */
export function createRequestFacts(deps: Deps) {
  const trustedPeer = createProxyTrust(deps.config.server.trustedProxies);
  const fromTrustedProxy = (c: Context<AppEnv>) => trustedPeer(c.env?.incoming?.socket?.remoteAddress);
  const firstOf = (v: string | undefined) => v?.split(",", 1)[0]?.trim().toLowerCase();
  return {
    /** Came over TLS: directly (a TLS socket), or as `X-Forwarded-Proto: https` from a trusted proxy. */
    https(c: Context<AppEnv>): boolean {
      const socket = c.env?.incoming?.socket as { encrypted?: boolean } | undefined;
      if (socket?.encrypted) return true;
      return fromTrustedProxy(c) && firstOf(header(c, "x-forwarded-proto")) === "https";
    },
    /**
     * A browser POST from this service's own pages, not from another site. `Sec-Fetch-Site`, when
     * the browser sends it, must be `same-origin` (or `none`: typed by the user); `Origin`, when
     * present, must name this host (another port is another origin). Clients that send neither
     * (curl, the CLI) are not browsers and cannot be made to send a request by another site.
     */
    sameOrigin(c: Context<AppEnv>): boolean {
      const site = header(c, "sec-fetch-site");
      if (site !== undefined && site !== "same-origin" && site !== "none") return false;
      const origin = header(c, "origin");
      if (origin === undefined) return true;
      let host: string;
      try {
        host = new URL(origin).host;
      } catch {
        return false; // includes "null" (sandboxed frames, some redirects)
      }
      const forwarded = fromTrustedProxy(c) ? firstOf(header(c, "x-forwarded-host")) : undefined;
      return host === (forwarded ?? header(c, "host")?.toLowerCase());
    },
  };
}

export type RequestFacts = ReturnType<typeof createRequestFacts>;

const crossSite = () => new AppError("forbidden", "Cross-site request refused.", { closeConnection: true });

/** Refuses a POST that another site made the browser send (login, logout, cookie-authenticated changes). */
export function ensureSameOrigin(c: Context<AppEnv>, facts: RequestFacts): void {
  if (!facts.sameOrigin(c)) throw crossSite();
}

/** Starts a session for a login and sets its cookie: HttpOnly, SameSite=Strict, Secure over HTTPS. */
export async function startSession(c: Context<AppEnv>, deps: Deps, facts: RequestFacts, token: string): Promise<void> {
  const id = await deps.sessions.create(tokenFingerprint(token)).catch((cause) => {
    throw new AppError("storage_unavailable", "Sessions are kept in Redis, which could not be reached; retry.", { cause, retryAfterS: 1 });
  });
  setCookie(c, SESSION_COOKIE, id, { httpOnly: true, sameSite: "Strict", path: "/", maxAge: SESSION_TTL_MS / 1000, secure: facts.https(c) });
}

/** Ends the request's session (if any) server-side and clears its cookie. */
export async function endSession(c: Context<AppEnv>, deps: Deps, facts: RequestFacts): Promise<void> {
  const id = getCookie(c, SESSION_COOKIE);
  if (id) await deps.sessions.end(id).catch(() => {});
  deleteCookie(c, SESSION_COOKIE, { httpOnly: true, sameSite: "Strict", path: "/", secure: facts.https(c) });
}

/**
 * Who may use the admin API and the dashboard: `Authorization: Bearer <admin.token>` (CLI,
 * scripts), or a dashboard session (sessions.ts) made with the token configured now. A
 * session-authenticated change (any method but GET) must come from the dashboard's own origin
 * and carry `X-Dashboard: 1`, which a cross-site form cannot send. Without `admin.token`
 * configured everything here is 404.
 */
export async function adminIdentity(c: Context<AppEnv>, deps: Deps, facts: RequestFacts): Promise<"bearer" | "cookie" | undefined> {
  const token = deps.config.admin.token;
  if (token === undefined) throw new AppError("not_found", "The admin API is not configured (admin.token).");
  const presented = presentedSecret((n) => header(c, n));
  if (presented) {
    // A bearer token is a guess to count (src/http/auth-gate.ts); a locked-out client is refused
    // whatever it presents. A session cookie is not guessable and is not counted.
    const [expected] = await Promise.all([deps.secrets.resolve(token), deps.authGate.ensureNotLocked(c)]);
    if (expected !== undefined && secretsEqual(expected, presented)) return "bearer";
    await deps.authGate.failed(c);
    return undefined;
  }
  const id = getCookie(c, SESSION_COOKIE);
  if (!id) return undefined;
  const [expected, fingerprint] = await Promise.all([
    deps.secrets.resolve(token),
    deps.sessions.fingerprintOf(id).catch((cause) => {
      throw new AppError("storage_unavailable", "Sessions are kept in Redis, which could not be reached; retry.", { cause, retryAfterS: 1 });
    }),
  ]);
  if (expected === undefined || fingerprint === undefined || !secretsEqual(tokenFingerprint(expected), fingerprint)) return undefined;
  if (c.req.method !== "GET") {
    ensureSameOrigin(c, facts);
    if (header(c, "x-dashboard") !== "1") return undefined;
  }
  return "cookie";
}

export const adminAuth = (deps: Deps, facts: RequestFacts) => async (c: Context<AppEnv>, next: Next) => {
  if (!(await adminIdentity(c, deps, facts))) throw new AppError("unauthorized", "unauthorized", { closeConnection: true });
  await next();
};
