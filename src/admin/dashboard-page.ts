import { html, raw } from "hono/html";
import { DASHBOARD_SCRIPT } from "./dashboard-script.js";

/**
 * The dashboard's markup: the login form and the one page (deliveries, a delivery's attempts,
 * inbound runs) whose script (dashboard-script.ts) switches between views by the URL's hash. No
 * CDN and no build step: everything is inline, which the page's CSP allows and nothing else does.
 */

const STYLE = `body{font:14px system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:10px 20px;display:flex;gap:20px;align-items:center}
header nav{flex:1;display:flex;gap:14px}header a{color:#cfd8ff}header a.on{color:#fff;font-weight:600;text-decoration:none}
main{padding:16px 20px}h2{font-size:15px;margin:18px 0 8px}h3{font-size:14px;margin:12px 0 6px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{padding:6px 8px;border-bottom:1px solid #e3e6eb;text-align:left;font-variant-numeric:tabular-nums;vertical-align:top}
th{background:#eef0f4;font-weight:600}.delivered,.ok{color:#137333}.failed,.error{color:#b3261e}.pending,.running{color:#8a5a00}
.open{color:#b3261e;font-weight:600}button{cursor:pointer}#status{font-size:12px;opacity:.8}
form.login{max-width:360px;margin:80px auto;background:#fff;padding:24px;border-radius:6px;box-shadow:0 1px 4px #0002}
form.login input{width:100%;padding:8px;margin:8px 0;box-sizing:border-box}.err{color:#b3261e}svg{background:#fff;border:1px solid #e3e6eb}
.bar-row{display:flex;flex-wrap:wrap;gap:8px;align-items:end;background:#fff;padding:10px;border:1px solid #e3e6eb;margin-bottom:8px}
.bar-row label{display:flex;flex-direction:column;font-size:12px;gap:2px}.bar-row input,.bar-row select{padding:4px}
.note{font-size:13px;padding:6px 0}.note strong{font-size:14px}.hidden{display:none}
.attempt{background:#fff;border:1px solid #e3e6eb;margin:10px 0;padding:10px}.attempt-head{font-weight:600;margin-bottom:6px}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:12px}.kv td:first-child{color:#555;white-space:nowrap;width:1%}
pre{background:#f0f2f5;padding:8px;white-space:pre-wrap;word-break:break-all;max-height:240px;overflow:auto;margin:0}
.cls{display:inline-block;padding:1px 6px;border-radius:3px;background:#fde7e5;color:#b3261e;font-size:12px}
td a{color:#2a4fb8}`;

/** The sign-in form; `message` is escaped (hono/html), so no text can become markup. */
export const LOGIN = (message: string): string =>
  String(html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>openclaw-webhooks · sign in</title><style>${raw(STYLE)}</style></head>
<body><form class="login" method="post" action="/dashboard/login"><h2>openclaw-webhooks dashboard</h2>
<label for="token">Admin token</label><input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
${message ? html`<p class="err">${message}</p>` : ""}<button type="submit">Sign in</button></form></body></html>`);

export const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>openclaw-webhooks · deliveries</title><style>${STYLE}</style></head>
<body><header><strong>openclaw-webhooks</strong><nav><a href="#/" id="nav-deliveries">Deliveries</a><a href="#/inbound" id="nav-inbound">Inbound</a></nav><span id="status">connecting…</span>
<form method="post" action="/dashboard/logout"><button type="submit">Sign out</button></form></header>
<main>
<section id="view-deliveries">
<h2>Endpoints <small>(success rate and latency of attempts over the last hour)</small></h2>
<table id="endpoints"><thead><tr><th>Name</th><th>State</th><th>Circuit</th><th>Failures</th><th>In flight</th><th>Success (1h)</th><th>Latency p50 / p95</th><th>Last success</th><th>URL</th></tr></thead><tbody></tbody></table>
<h2>Response time of the last attempts <small id="scale"></small></h2><svg id="chart" width="100%" height="120" viewBox="0 0 500 120" preserveAspectRatio="none" role="img" aria-label="latency chart"></svg>
<h2>Replay failed deliveries</h2>
<form id="bulk" class="bar-row"><label>Endpoint<select id="bulk-endpoint"></select></label><label>Failed since<input id="bulk-since" value="24h" size="10"></label>
<button type="submit" id="bulk-preview">Preview</button></form>
<div id="bulk-result" class="note hidden"><span id="bulk-count"></span> <button id="bulk-confirm" type="button">Confirm replay</button> <button id="bulk-cancel" type="button">Cancel</button></div>
<div id="bulk-done" class="note hidden"></div>
<h2 id="list-title">Recent deliveries</h2>
<form id="filters" class="bar-row"><label>Endpoint<select id="f-endpoint"><option value="">any</option></select></label>
<label>Status<select id="f-status"><option value="">any</option><option>pending</option><option>delivered</option><option>failed</option></select></label>
<label>Event type<input id="f-type" size="16" placeholder="lead.created"></label>
<label>Since<input id="f-since" size="10" placeholder="1h, ISO date"></label><label>Until<input id="f-until" size="10" placeholder="ISO date"></label>
<button type="submit" id="f-apply">Apply</button><button type="button" id="f-clear">Clear</button>
<span style="flex:1"></span><label>Delivery or event id<input id="find-id" size="30"></label><button type="button" id="find">Find</button></form>
<div id="list-note" class="note"></div>
<table id="deliveries"><thead><tr><th>Delivery</th><th>Event</th><th>Endpoint</th><th>Status</th><th>Attempts</th><th>Response</th><th>Time</th><th>Failure</th><th>Updated</th><th></th></tr></thead><tbody></tbody></table>
</section>
<section id="view-delivery" class="hidden">
<p><a href="#/">← all deliveries</a></p>
<h2>Delivery <code id="d-id"></code></h2>
<table class="kv" id="d-summary"><tbody></tbody></table>
<p><button id="d-replay" type="button">Replay</button> <span id="d-replay-note"></span></p>
<h2>Attempts</h2><div id="d-attempts"></div>
</section>
<section id="view-inbound" class="hidden">
<h2>Inbound endpoints</h2>
<table id="inbound-endpoints"><thead><tr><th>Name</th><th>Path</th><th>Action</th><th>Agent</th><th>Auth</th><th>Enabled</th><th>Runs (recent)</th></tr></thead><tbody></tbody></table>
<h2>Recent runs</h2><div id="inbound-note" class="note"></div>
<table id="inbound-runs"><thead><tr><th>Run</th><th>Endpoint</th><th>Agent</th><th>Status</th><th>Started</th><th>Ended</th><th>Took</th><th>Error</th><th>Completion event</th></tr></thead><tbody></tbody></table>
</section>
</main>
<script>${DASHBOARD_SCRIPT}</script></body></html>`;
