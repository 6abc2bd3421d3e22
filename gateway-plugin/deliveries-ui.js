// A Webhooks page in the Gateway's Control UI (docs/bridge-plugin.md): a monitoring panel of
// event delivery status, response times and failure reasons, live, answered by the
// openclaw-webhooks service's admin API from the Gateway process.
//
// 2026.9.6 offers a plugin two ways into the Control UI (docs/plugin-surfaces-2026.9.6.md §4):
// - A native page (manifest `controlUi.entry`, dist/control-ui/index.js): runs in the Control UI with
//   the operator's own Gateway connection, so it can call the Gateway methods below, refresh live
//   and replay. A non-bundled plugin's native UI loads only with the lab setting
//   `gateway.controlUi.experimental.customPlugins: true` (Settings → Labs → Custom plugin UI).
// - A tab: an iframe of a Gateway-authenticated plugin route. It needs no lab setting, but the
//   frame is sandboxed (opaque origin) and the Control UI's grant for it is GET-only with
//   `operator.read`: the page can be rendered and reloaded, and nothing can be posted from it.
//   So without the lab setting the page is a read-only view, refreshed every few seconds, that
//   shows the replay command for each failed delivery.
// The tab is registered only while the lab setting is off, so an operator sees one Webhooks page.

import { callAdmin, deliveriesQuery, FAILURE, ServiceError } from "./service-api.js";

const PREFIX = "webhooksBridge.";
export const TAB_PATH = "/plugins/webhooks-bridge/deliveries";
export const TAB_SLUG = "webhooks";
const REFRESH_S = 5;

/** Whether the Control UI will load this plugin's native page (the lab setting). */
export const nativeUiEnabled = (config) => config?.gateway?.controlUi?.experimental?.customPlugins === true;

/** An endpoint as the page shows it: its name and origin, never the URL's path or query (tokens live there). */
function endpointView(e) {
  let origin = "";
  try {
    origin = new URL(e.url).origin;
  } catch {}
  return {
    name: e.name,
    origin,
    enabled: e.enabled,
    disabledReason: e.disabled?.reason,
    circuit: e.circuit?.state ?? "closed",
    failures: e.circuit?.failures ?? 0,
    inFlight: e.inFlight ?? 0,
  };
}

/** What the page shows: recent deliveries (with the last attempt's time and failure) and the endpoints' health. */
async function snapshot(cfg, resolveToken, params = {}) {
  const [{ deliveries }, { endpoints }] = await Promise.all([
    callAdmin(
      cfg,
      resolveToken,
      "GET",
      deliveriesQuery({ limit: params.limit ?? 50, status: params.status || undefined, endpoint: params.endpoint || undefined }),
    ),
    callAdmin(cfg, resolveToken, "GET", "/endpoints"),
  ]);
  return { deliveries, endpoints: endpoints.map(endpointView), at: Date.now() };
}

/** The Gateway error code for a service failure: the caller's mistake, a missing or refused delivery, or the service away. */
function errorCode(err) {
  if (err.kind === FAILURE.usage) return "INVALID_REQUEST";
  if (err.kind === FAILURE.refused && err.status === 404) return "NOT_FOUND";
  if (err.kind === FAILURE.refused && err.status < 500) return "INVALID_REQUEST";
  return "UNAVAILABLE";
}

const idParam = (params) => {
  const id = params?.id;
  if (typeof id !== "string" || id === "" || id.length > 512) throw new ServiceError(FAILURE.usage, "id: a delivery id is required");
  return id;
};

/** The Gateway methods the native page calls, the tab route and its descriptor. */
export function registerDeliveriesUi(api, cfg, resolveToken) {
  const method = (name, scope, run) =>
    api.registerGatewayMethod(
      PREFIX + name,
      async ({ params, respond }) => {
        try {
          respond(true, await run(params ?? {}));
        } catch (err) {
          const known = err instanceof ServiceError;
          if (!known) api.logger.warn?.(`[webhooks-bridge] ${name} failed: ${err?.message ?? err}`);
          respond(false, undefined, { code: known ? errorCode(err) : "UNAVAILABLE", message: known ? err.message : `${PREFIX}${name} failed` });
        }
      },
      { scope },
    );
  method("list_deliveries", "operator.read", (p) => snapshot(cfg, resolveToken, p));
  method("get_delivery", "operator.read", async (p) => callAdmin(cfg, resolveToken, "GET", `/deliveries/${encodeURIComponent(idParam(p))}`));
  method("replay_delivery", "operator.write", async (p) => callAdmin(cfg, resolveToken, "POST", `/deliveries/${encodeURIComponent(idParam(p))}/replay`));

  if (nativeUiEnabled(api.config)) return;
  api.registerHttpRoute({
    path: TAB_PATH,
    auth: "gateway",
    match: "prefix",
    handler: async (req, res) => {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" });
        res.end("read-only: replay with `openclaw deliveries replay <id>`, or enable Custom plugin UI (Settings → Labs)\n");
        return true;
      }
      const status = new URL(req.url ?? "/", "http://x").searchParams.get("status") ?? "";
      let page;
      try {
        page = renderTab(await snapshot(cfg, resolveToken, { status: ["failed", "delivered", "pending"].includes(status) ? status : undefined }), status);
      } catch (err) {
        page = renderTab(undefined, status, err instanceof ServiceError ? err.message : "the webhook service did not answer");
      }
      res.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'",
      });
      res.end(req.method === "HEAD" ? undefined : page);
      return true;
    },
  });
  api.session.controls.registerControlUiDescriptor({
    surface: "tab",
    id: "webhooks",
    label: "Webhooks",
    description: "Webhook deliveries of the openclaw-webhooks service: status, response times, failure reasons",
    icon: "puzzle",
    group: "control",
    path: `${TAB_PATH}/`,
    slug: TAB_SLUG,
  });
}

const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const when = (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "–");

/** The read-only tab: one self-contained document (the sandboxed frame cannot load anything else). */
export function renderTab(snap, status, error) {
  const filters = ["", "failed", "pending", "delivered"].map((s) => `<a href="?status=${s}"${s === status ? ' class="on"' : ""}>${s || "all"}</a>`).join(" ");
  const endpoints = (snap?.endpoints ?? [])
    .map(
      (e) =>
        `<li class="${e.enabled && e.circuit === "closed" ? "ok" : "bad"}"><b>${esc(e.name)}</b> ${esc(e.origin)} · ${e.enabled ? `circuit ${esc(e.circuit)}` : `disabled: ${esc(e.disabledReason ?? "")}`} · ${e.inFlight} in flight</li>`,
    )
    .join("");
  const rows = (snap?.deliveries ?? [])
    .map(
      (d) =>
        `<tr class="${esc(d.status)}" data-id="${esc(d.id)}"><td>${when(d.updatedAt)}</td><td>${esc(d.eventType)}</td><td>${esc(d.endpoint)}</td><td class="st">${esc(d.status)}</td><td>${d.attempts}</td>` +
        `<td>${d.lastStatus ?? esc(d.lastErrorClass ?? "–")}</td><td>${d.lastDurationMs ?? "–"}</td><td class="why">${esc(d.lastError ?? "")}</td>` +
        `<td>${d.status === "failed" ? `<code>openclaw deliveries replay ${esc(d.id)}</code>` : ""}</td></tr>`,
    )
    .join("");
  return `<!doctype html><html><head><meta charset="utf-8"><title>Webhooks</title><style>
body{font:13px system-ui,sans-serif;margin:16px;color:#222}h1{font-size:18px;margin:0 0 8px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #ddd;vertical-align:top}
tr.failed .st{color:#b00020;font-weight:600}tr.delivered .st{color:#0a7d32}tr.pending .st{color:#a66b00}.why{color:#b00020;max-width:28em;overflow-wrap:anywhere}
ul{list-style:none;padding:0;display:flex;gap:16px;flex-wrap:wrap}li.ok b{color:#0a7d32}li.bad b{color:#b00020}a{margin-right:6px}a.on{font-weight:700}
.note{color:#666}.err{color:#b00020;font-weight:600}code{font-size:12px}</style></head><body>
<h1>Webhook deliveries</h1>
<p class="note">Live from the openclaw-webhooks service, refreshed every ${REFRESH_S} s${snap ? ` (last ${when(snap.at)} UTC)` : ""}. Read-only here: replay with the command shown, or turn on Settings → Labs → Custom plugin UI for the page with Replay buttons.</p>
${error ? `<p class="err" id="error">${esc(error)}</p>` : ""}
<ul id="endpoints">${endpoints}</ul>
<p>${filters}</p>
<table id="deliveries"><thead><tr><th>Updated (UTC)</th><th>Event</th><th>Endpoint</th><th>Status</th><th>Attempts</th><th>Last response</th><th>ms</th><th>Failure reason</th><th></th></tr></thead><tbody>${rows || '<tr><td colspan="9" class="note">no deliveries</td></tr>'}</tbody></table>
<script>setTimeout(() => location.reload(), ${REFRESH_S * 1000});</script>
</body></html>`;
}
