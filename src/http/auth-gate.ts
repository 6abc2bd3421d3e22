import type { Context } from "hono";
import type { AppEnv } from "../app-env.js";
import { AppError, type ErrorCode } from "../errors.js";
import type { AuthFailureStore } from "../limits/auth-failures.js";
import type { ClientIpResolver } from "./client-ip.js";
import { header } from "./header.js";

/**
 * The one guard against guessing, for every surface that takes a secret: the admin API, the
 * dashboard login, `POST /v1/events`, TaskFlow routes and inbound endpoints. A client (its IP, as
 * `server.trustedProxies` lets the service see it) that has sent `limits.authFailures.max` wrong
 * credentials within `windowMs` is answered 429 `auth_rate_limited` with `Retry-After` until the
 * window ends, whatever it presents, right token included: otherwise a guesser would still learn
 * from a right guess. Other clients are not affected. A request that presents no credential at all
 * is not a guess and is not counted; nor is a dashboard session cookie (random, 256 bits).
 */
export type AuthGate = {
  /** The client IP the count is kept under. */
  clientOf(c: Context<AppEnv>): string;
  /**
   * Throws 429 `auth_rate_limited` while the client is locked out. When the count cannot be read
   * it fails closed: 503 `unavailable` (default `limits_unavailable`), so an outage is no window
   * for guessing.
   */
  ensureNotLocked(c: Context<AppEnv>, unavailable?: ErrorCode): Promise<void>;
  /** Counts a wrong credential; waits until it is stored, so the client's next request sees it on any replica. */
  failed(c: Context<AppEnv>): Promise<void>;
};

export function createAuthGate(store: AuthFailureStore, clientIp: ClientIpResolver, onLocked?: () => void): AuthGate {
  const clientOf = (c: Context<AppEnv>) => clientIp(c.env?.incoming?.socket?.remoteAddress, (name) => header(c, name));
  return {
    clientOf,
    async ensureNotLocked(c, unavailable = "limits_unavailable") {
      let ms: number;
      try {
        ms = await store.lockedForMs(clientOf(c));
      } catch (cause) {
        const message = unavailable === "limits_unavailable" ? "Rate-limit store unavailable; try again." : "Redis could not be reached; retry.";
        throw new AppError(unavailable, message, { cause, retryAfterS: 1, closeConnection: true });
      }
      if (ms > 0) {
        onLocked?.();
        throw new AppError("auth_rate_limited", "Too many failed authentication attempts from this client; retry later.", {
          retryAfterS: Math.max(1, Math.ceil(ms / 1000)),
          closeConnection: true,
        });
      }
    },
    async failed(c) {
      await store.fail(clientOf(c));
    },
  };
}
