import type { Context, Hono } from "hono";
import { streamSSE } from "hono/streaming";
import type { AppEnv } from "../app-env.js";
import type { Deps } from "../deps.js";
import { AppError } from "../errors.js";
import { secretsEqual } from "../http/credentials.js";
import { readBody } from "../http/body.js";
import { createLiveFeed } from "./live-feed.js";
import { adminIdentity, createRequestFacts, endSession, ensureSameOrigin, noFraming, startSession } from "./auth.js";

/**
 * `/dashboard`: endpoint health, recent deliveries (status, response time, failure reason), a
 * latency chart and replay buttons, updated live over server-sent events. One self-contained page
 * (no CDN, no build step), behind the admin token: a login form sets an HttpOnly SameSite=Strict
 * session cookie; the page then reads `/admin/api` and `/dashboard/events` with it.
 */
export function mountDashboard(app: Hono<AppEnv>, deps: Deps): void {
  const facts = createRequestFacts(deps);
  const html = (c: Context<AppEnv>, body: string, status: 200 | 401 = 200) =>
    c.html(body, status, {
      "Cache-Control": "no-store",
      "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
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
    if (media !== "application/x-www-form-urlencoded") throw new AppError("unsupported_media_type", "Unsupported Media Type: send the login form (application/x-www-form-urlencoded).");
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
  const feed = createLiveFeed({ read: () => snapshot(deps), pollMs: 500, max: deps.config.admin.maxLiveSubscribers, stopping: () => deps.state.shuttingDown });
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

/** The dashboard's snapshot: endpoint health and the 50 newest deliveries, as JSON. */
async function snapshot(deps: Deps): Promise<string> {
  const egress = deps.egress;
  if (!egress) return JSON.stringify({ endpoints: [], deliveries: [] });
  const [endpoints, ids] = await Promise.all([egress.endpointStatus(), egress.log.list({ limit: 50 })]);
  const deliveries = (await Promise.all(ids.map((id) => egress.log.get(id)))).filter((d) => d !== undefined);
  return JSON.stringify({
    endpoints,
    deliveries: deliveries.map(({ attemptLog, ...d }) => ({
      ...d,
      lastDurationMs: attemptLog.at(-1)?.durationMs ?? null,
      lastErrorClass: attemptLog.at(-1)?.errorClass ?? null,
    })),
  });
}

const STYLE = `body{font:14px system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:10px 20px;display:flex;justify-content:space-between;align-items:center}
main{padding:16px 20px}h2{font-size:15px;margin:18px 0 8px}table{border-collapse:collapse;width:100%;background:#fff}
th,td{padding:6px 8px;border-bottom:1px solid #e3e6eb;text-align:left;font-variant-numeric:tabular-nums}
th{background:#eef0f4;font-weight:600}.delivered{color:#137333}.failed{color:#b3261e}.pending{color:#8a5a00}
.open{color:#b3261e;font-weight:600}button{cursor:pointer}#status{font-size:12px;opacity:.8}
form.login{max-width:360px;margin:80px auto;background:#fff;padding:24px;border-radius:6px;box-shadow:0 1px 4px #0002}
input{width:100%;padding:8px;margin:8px 0;box-sizing:border-box}.err{color:#b3261e}svg{background:#fff;border:1px solid #e3e6eb}`;

const LOGIN = (message: string) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>openclaw-webhooks · sign in</title><style>${STYLE}</style></head>
<body><form class="login" method="post" action="/dashboard/login"><h2>openclaw-webhooks dashboard</h2>
<label for="token">Admin token</label><input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
${message ? `<p class="err">${message}</p>` : ""}<button type="submit">Sign in</button></form></body></html>`;

const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>openclaw-webhooks · deliveries</title><style>${STYLE}</style></head>
<body><header><strong>openclaw-webhooks</strong><span id="status">connecting…</span>
<form method="post" action="/dashboard/logout"><button type="submit">Sign out</button></form></header>
<main>
<h2>Endpoints</h2><table id="endpoints"><thead><tr><th>Name</th><th>State</th><th>Circuit</th><th>Failures</th><th>In flight</th><th>Last success</th><th>URL</th></tr></thead><tbody></tbody></table>
<h2>Response time of the last attempts <small id="scale"></small></h2><svg id="chart" width="100%" height="120" viewBox="0 0 500 120" preserveAspectRatio="none" role="img" aria-label="latency chart"></svg>
<h2>Recent deliveries</h2><table id="deliveries"><thead><tr><th>Delivery</th><th>Event</th><th>Endpoint</th><th>Status</th><th>Attempts</th><th>Response</th><th>Time</th><th>Failure</th><th>Updated</th><th></th></tr></thead><tbody></tbody></table>
</main>
<script>
const $ = (s) => document.querySelector(s);
const text = (v) => (v === undefined || v === null ? "" : String(v));
const when = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "–");
function cell(tr, v, cls) { const td = document.createElement("td"); td.textContent = text(v); if (cls) td.className = cls; tr.appendChild(td); return td; }
async function replay(id, button) {
  button.disabled = true;
  const r = await fetch("/admin/api/deliveries/" + encodeURIComponent(id) + "/replay", { method: "POST", headers: { "X-Dashboard": "1" } });
  const body = await r.json().catch(() => ({}));
  button.textContent = r.ok ? "queued" : (body.code || "refused");
}
function render(s) {
  if (s.error) { $("#status").textContent = s.error; return; }
  $("#status").textContent = "live · " + new Date().toLocaleTimeString();
  const eb = $("#endpoints tbody"); eb.replaceChildren();
  for (const e of s.endpoints) {
    const tr = document.createElement("tr");
    cell(tr, e.name); cell(tr, e.enabled ? "enabled" : "disabled: " + text(e.disabled && e.disabled.reason), e.enabled ? "" : "failed");
    cell(tr, e.circuit.state, e.circuit.state === "open" ? "open" : ""); cell(tr, e.circuit.failures); cell(tr, e.inFlight);
    cell(tr, when(e.circuit.lastSuccessAt)); cell(tr, e.url); eb.appendChild(tr);
  }
  const db = $("#deliveries tbody"); db.replaceChildren();
  for (const d of s.deliveries) {
    const tr = document.createElement("tr"); tr.dataset.id = d.id; tr.dataset.status = d.status;
    cell(tr, d.id); cell(tr, d.eventType); cell(tr, d.endpoint); cell(tr, d.status, d.status); cell(tr, d.attempts);
    cell(tr, d.lastStatus || d.lastErrorClass || "–"); cell(tr, d.lastDurationMs === null ? "–" : d.lastDurationMs + " ms");
    cell(tr, d.lastError); cell(tr, when(d.updatedAt));
    const td = cell(tr, ""); if (d.status !== "pending") { const b = document.createElement("button"); b.textContent = "Replay"; b.onclick = () => replay(d.id, b); td.appendChild(b); }
    db.appendChild(tr);
  }
  // One bar per delivery (oldest left), scaled to the slowest; the scale is written beside the title.
  const pts = s.deliveries.filter((d) => d.lastDurationMs !== null).map((d) => d.lastDurationMs).reverse();
  const max = Math.max(1, ...pts);
  const w = 500 / 50;
  $("#scale").textContent = pts.length ? "max " + max + " ms" : "";
  $("#chart").innerHTML = pts.map((v, i) => { const h = Math.max(2, (v / max) * 115); return '<rect class="bar" x="' + (i * w + 1).toFixed(1) + '" y="' + (120 - h).toFixed(1) + '" width="' + (w - 2).toFixed(1) + '" height="' + h.toFixed(1) + '" fill="#3b6fd8"/>'; }).join("");
}
const es = new EventSource("/dashboard/events");
es.addEventListener("snapshot", (e) => render(JSON.parse(e.data)));
es.onerror = () => { $("#status").textContent = "reconnecting…"; };
</script></body></html>`;
