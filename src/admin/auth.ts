import { createHmac } from "node:crypto";
import type { Context, Next } from "hono";
import type { AppEnv } from "../app-env.js";
import type { Deps } from "../deps.js";
import { AppError } from "../errors.js";
import { presentedSecret, secretsEqual } from "../ingress/auth.js";
import { header } from "../ingress/stages.js";

export const SESSION_COOKIE = "ocwh_admin";

/** The dashboard's session cookie value: an HMAC of the admin token, so the token itself is not stored in the browser and rotating it ends every session. */
export const sessionValue = (token: string) => createHmac("sha256", token).update("openclaw-webhooks dashboard session").digest("base64url");

export function cookieOf(c: Context<AppEnv>, name: string): string | undefined {
  for (const part of (header(c, "cookie") ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return v.join("=");
  }
  return undefined;
}

/**
 * Who may use the admin API and the dashboard: `Authorization: Bearer <admin.token>` (CLI,
 * scripts), or the dashboard's session cookie. A cookie-authenticated change (any method but GET)
 * must also carry `X-Dashboard: 1`, which a cross-site form cannot send (with SameSite=Strict, a
 * second guard against CSRF). Without `admin.token` configured everything here is 404.
 */
export async function adminIdentity(c: Context<AppEnv>, deps: Deps): Promise<"bearer" | "cookie" | undefined> {
  const token = deps.config.admin.token;
  if (token === undefined) throw new AppError("not_found", "The admin API is not configured (admin.token).");
  const expected = await deps.secrets.resolve(token);
  if (expected === undefined) return undefined;
  if (secretsEqual(expected, presentedSecret((n) => header(c, n)))) return "bearer";
  const cookie = cookieOf(c, SESSION_COOKIE);
  if (cookie && secretsEqual(sessionValue(expected), cookie) && (c.req.method === "GET" || header(c, "x-dashboard") === "1")) return "cookie";
  return undefined;
}

export const adminAuth = (deps: Deps) => async (c: Context<AppEnv>, next: Next) => {
  if (!(await adminIdentity(c, deps))) throw new AppError("unauthorized", "unauthorized", { closeConnection: true });
  await next();
};
