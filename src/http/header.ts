import type { Context } from "hono";
import type { AppEnv } from "../app-env.js";

/**
 * A request header. Node's parsed header object is read directly when the request came over a
 * socket: `c.req.header()` on @hono/node-server builds a web `Headers` object on first use, which
 * costs more than the rest of a header-only stage.
 */
export function header(c: Context<AppEnv>, name: string): string | undefined {
  const incoming = c.env?.incoming;
  if (!incoming) return c.req.header(name);
  const v = incoming.headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}
