import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env.js";
import type { Route } from "../config/schema.js";
import { AppError } from "../errors.js";
import type { AuthGate } from "../http/auth-gate.js";
import { presentedSecret, secretsEqual } from "../http/credentials.js";
import { header } from "../http/header.js";
import type { SecretResolver } from "../secrets/resolve.js";

/**
 * Re-resolves the route's secret on every request; a secret that does not resolve matches nothing.
 * A client locked out for wrong secrets (auth-gate.ts) is refused before the comparison; a wrong
 * secret it presents is counted.
 */
export const sharedSecretAuth = (route: Route, secrets: SecretResolver, gate: AuthGate) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const [expected] = await Promise.all([secrets.resolve(route.secret), gate.ensureNotLocked(c)]);
    const presented = presentedSecret((name) => header(c, name));
    if (expected === undefined || !secretsEqual(expected, presented)) {
      if (presented) await gate.failed(c);
      throw new AppError("unauthorized", "unauthorized", { closeConnection: true });
    }
    await next();
  });
