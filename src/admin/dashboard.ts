import type { Context, Hono } from "hono";
import { streamSSE } from "hono/streaming";
import type { AppEnv } from "../app-env.js";
import type { Deps } from "../deps.js";
import { AppError } from "../errors.js";
import { secretsEqual } from "../http/credentials.js";
import { readBody } from "../http/body.js";
import { LOGIN, PAGE } from "./dashboard-page.js";
import { createLiveFeed } from "./live-feed.js";
import { adminIdentity, createRequestFacts, endSession, ensureSameOrigin, noFraming, startSession } from "./auth.js";

/**
 * `/dashboard`: endpoint health with each endpoint's success rate and latency over the last hour,
 * recent deliveries (filterable by endpoint, status, event type and time; found by delivery or
 * event id), a delivery's every attempt (request headers masked, the receiver's status, headers
 * and first KB of body, time taken, error class), bulk replay with a dry-run count before it
 * starts, and inbound endpoints with their runs; updated live over server-sent events. One
 * self-contained page (dashboard-page.ts: no CDN, no build step), behind the admin token: a login
 * form sets an HttpOnly SameSite=Strict session cookie; the page then reads `/admin/api` and
 * `/dashboard/events` with it.
 */
export function mountDashboard(app: Hono<AppEnv>, deps: Deps): void {
  const facts = createRequestFacts(deps);
  const html = (c: Context<AppEnv>, body: string, status: 200 | 401 = 200) =>
    c.html(body, status, {
      "Cache-Control": "no-store",
      "Content-Security-Policy":
        "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    });

  app.use("/dashboard", noFraming);
  app.use("/dashboard/*", noFraming);

  app.get("/dashboard", async (c) => {
    const who = await adminIdentity(c, deps, facts);
    return who ? html(c, PAGE) : html(c, LOGIN(""));
  });

  /** A login starts a new server-side session (sessions.ts). Another site's form is refused before anything is read. */
  app.post("/dashboard/login", async (c) => {
    const token = deps.config.admin.token;
    if (token === undefined) throw new AppError("not_found", "The dashboard is not configured (admin.token).");
    ensureSameOrigin(c, facts);
    await deps.authGate.ensureNotLocked(c);
    // A small form with a short deadline: anonymous clients cannot hold a connection open with a
    // slow body for the general body timeout (issue #16).
    const media = (c.req.header("content-type") ?? "").split(";", 1)[0]!.trim().toLowerCase();
    if (media !== "application/x-www-form-urlencoded")
      throw new AppError("unsupported_media_type", "Unsupported Media Type: send the login form (application/x-www-form-urlencoded).");
    const raw = await readBody(c.env?.incoming, c.req.raw, { maxBytes: deps.config.admin.loginMaxBodyBytes, timeoutMs: deps.config.admin.loginBodyTimeoutMs });
    const given = new URLSearchParams(raw.toString("utf8")).get("token") ?? "";
    const expected = await deps.secrets.resolve(token);
    if (expected === undefined || !secretsEqual(expected, given)) {
      if (given) await deps.authGate.failed(c);
      return html(c, LOGIN("That token was not accepted."), 401);
    }
    await startSession(c, deps, facts, expected);
    return c.redirect("/dashboard", 303);
  });

  /** Ends the session server-side: the old cookie is worth nothing afterwards. Same origin only. */
  app.post("/dashboard/logout", async (c) => {
    ensureSameOrigin(c, facts);
    await endSession(c, deps, facts);
    return c.redirect("/dashboard", 303);
  });

  /**
   * Live updates: a snapshot (endpoints + recent deliveries) whenever it changes. One poller per
   * replica reads it every 500 ms while anyone is subscribed and fans it out (live-feed.ts); at
   * most `admin.maxLiveSubscribers` streams at once, the next is 503 with Retry-After.
   */
  const feed = createLiveFeed({ read: createSnapshot(deps), pollMs: 500, max: deps.config.admin.maxLiveSubscribers, stopping: () => deps.state.shuttingDown });
  app.get("/dashboard/events", async (c) => {
    if (!(await adminIdentity(c, deps, facts))) throw new AppError("unauthorized", "unauthorized");
    const slot = feed.join();
    if (!slot) throw new AppError("live_updates_full", "Too many live-update streams on this replica; retry later.", { retryAfterS: 10 });
    return streamSSE(c, async (stream) => {
      stream.onAbort(() => slot.leave());
      try {
        for (let m = await slot.next(); m && !stream.aborted; m = await slot.next()) {
          if ("data" in m) await stream.writeSSE({ event: "snapshot", data: m.data });
          else await stream.write(": keep-alive\n\n");
        }
      } finally {
        slot.leave();
      }
    });
  });
}

/**
 * The dashboard's snapshot: endpoint health, each endpoint's last hour, and the 50 newest
 * deliveries without their attempts (HMGET of the record's own fields), as JSON. Its size does
 * not depend on the delivery rate. The hour's stats (61 small reads per endpoint) are read at most
 * every 5 s, not on every 500 ms poll.
 */
function createSnapshot(deps: Deps) {
  let stats: { at: number; value: Promise<unknown[]> } | undefined;
  return async (): Promise<string> => {
    const egress = deps.egress;
    if (!egress) return JSON.stringify({ endpoints: [], stats: [], deliveries: [] });
    if (!stats || Date.now() - stats.at >= 5_000) {
      stats = { at: Date.now(), value: egress.stats() };
      stats.value.catch(() => (stats = undefined));
    }
    const [endpoints, endpointStats, deliveries] = await Promise.all([
      egress.endpointStatus(),
      stats.value,
      egress.log.list({ limit: 50 }).then((ids) => egress.log.summaries(ids)),
    ]);
    return JSON.stringify({ endpoints, stats: endpointStats, deliveries });
  };
}
