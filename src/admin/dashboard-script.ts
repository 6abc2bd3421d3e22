/**
 * The dashboard page's script, inlined by dashboard-page.ts (so: no backticks and no `${` in it).
 *
 * Views by the URL's hash: `#/` deliveries (endpoints with their last hour, bulk replay with its
 * dry run, filters and the search box), `#/delivery/<id>` one delivery's attempts, `#/inbound`
 * inbound endpoints and their runs, `#/find/<id>` a search. Live: each SSE snapshot (one poller
 * per replica, bounded to 50 rows) redraws the endpoints and, unfiltered, the list; a filtered
 * list, an open delivery or the inbound view is re-read from the admin API on a snapshot at most
 * every 2-3 s, so a viewer's cost does not grow with the delivery rate. All text goes in through
 * textContent: receivers' answers are shown, never interpreted.
 */
export const DASHBOARD_SCRIPT = String.raw`
const $ = (s) => document.querySelector(s);
const text = (v) => (v === undefined || v === null ? "" : String(v));
const when = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "–");
const deliveries = (n) => n + (n === 1 ? " delivery" : " deliveries");
const stamp = (ms) => (ms ? new Date(ms).toLocaleString() : "–");
const state = { snap: null, view: "deliveries", filter: null, filtered: [], event: null, detail: null, rec: null, last: {}, pendingReplay: null };
function el(tag, attrs, kids) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) { if (k === "text") e.textContent = text(attrs[k]); else if (k === "class") e.className = attrs[k]; else if (k.startsWith("on")) e[k] = attrs[k]; else e.setAttribute(k, attrs[k]); }
  for (const c of kids || []) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  return e;
}
function cell(tr, v, cls) { const td = el("td", { text: v, class: cls || "" }); tr.appendChild(td); return td; }
function due(key, ms) { const t = Date.now(); if ((state.last[key] || 0) + ms > t) return false; state.last[key] = t; return true; }
async function api(path, opts) {
  const r = await fetch("/admin/api" + path, opts);
  const body = await r.json().catch(() => ({}));
  // Errors come as { ok: false, code, error: message } (src/errors.ts).
  if (!r.ok || !body.ok) { const e = new Error(typeof body.error === "string" ? body.error : "HTTP " + r.status); e.code = body.code; throw e; }
  return body.result;
}
const post = (path, body) => api(path, { method: "POST", headers: body ? { "X-Dashboard": "1", "Content-Type": "application/json" } : { "X-Dashboard": "1" }, body: body ? JSON.stringify(body) : undefined });

// Views
function show(view) {
  state.view = view;
  for (const v of ["deliveries", "delivery", "inbound"]) $("#view-" + v).classList.toggle("hidden", v !== view);
  $("#nav-deliveries").className = view === "inbound" ? "" : "on";
  $("#nav-inbound").className = view === "inbound" ? "on" : "";
}
function route() {
  const h = location.hash || "#/";
  const d = /^#\/delivery\/(.+)$/.exec(h);
  const f = /^#\/find\/(.+)$/.exec(h);
  if (d) { show("delivery"); openDelivery(decodeURIComponent(d[1])); }
  else if (h === "#/inbound") { show("inbound"); loadInbound(); }
  else { show("deliveries"); if (f) { $("#find-id").value = decodeURIComponent(f[1]); find(); } }
}
window.addEventListener("hashchange", route);

// Endpoints, their last hour, the chart
function pct(s) { return !s || s.successRate === null ? "–" : (s.successRate * 100).toFixed(1) + "% of " + s.attempts; }
function lat(s) { return !s || s.p50Ms === null ? "–" : "≤" + s.p50Ms + " / ≤" + s.p95Ms + " ms"; }
function fillSelect(sel, names, any) {
  const want = (any ? "|" : "") + names.join("|");
  if (sel.dataset.names === want) return;
  const keep = sel.value; sel.dataset.names = want; sel.replaceChildren();
  if (any) sel.appendChild(el("option", { value: "", text: "any" }));
  for (const n of names) sel.appendChild(el("option", { value: n, text: n }));
  sel.value = keep;
}
function renderEndpoints(s) {
  const stats = {}; for (const x of s.stats || []) stats[x.endpoint] = x;
  const eb = $("#endpoints tbody"); eb.replaceChildren();
  for (const e of s.endpoints) {
    const tr = el("tr"); tr.dataset.endpoint = e.name;
    cell(tr, e.name); cell(tr, e.enabled ? "enabled" : "disabled: " + text(e.disabled && e.disabled.reason), e.enabled ? "" : "failed");
    cell(tr, e.circuit.state, e.circuit.state === "open" ? "open" : ""); cell(tr, e.circuit.failures); cell(tr, e.inFlight);
    cell(tr, pct(stats[e.name]), "rate"); cell(tr, lat(stats[e.name]), "latency");
    cell(tr, when(e.circuit.lastSuccessAt)); cell(tr, e.url); eb.appendChild(tr);
  }
  const names = s.endpoints.map((e) => e.name);
  fillSelect($("#f-endpoint"), names, true); fillSelect($("#bulk-endpoint"), names, false);
  // One bar per delivery (oldest left), scaled to the slowest; the scale is written beside the title.
  const pts = s.deliveries.filter((d) => d.lastDurationMs !== null).map((d) => d.lastDurationMs).reverse();
  const max = Math.max(1, ...pts);
  const w = 500 / 50;
  $("#scale").textContent = pts.length ? "max " + max + " ms" : "";
  $("#chart").innerHTML = pts.map((v, i) => { const h = Math.max(2, (v / max) * 115); return '<rect class="bar" x="' + (i * w + 1).toFixed(1) + '" y="' + (120 - h).toFixed(1) + '" width="' + (w - 2).toFixed(1) + '" height="' + h.toFixed(1) + '" fill="#3b6fd8"/>'; }).join("");
}

// The list: live snapshot, a filter, or an event's deliveries
async function replayOne(id, button, note) {
  button.disabled = true;
  try { await post("/deliveries/" + encodeURIComponent(id) + "/replay"); button.textContent = "queued"; if (note) note.textContent = "Replay queued."; }
  catch (e) { button.textContent = e.code || "refused"; if (note) note.textContent = e.message; }
}
function renderList() {
  const rows = state.event ? state.event.deliveries : state.filter !== null ? state.filtered : state.snap ? state.snap.deliveries : [];
  $("#list-title").textContent = state.event ? "Deliveries of event " + state.event.eventId : state.filter !== null ? "Filtered deliveries" : "Recent deliveries";
  const db = $("#deliveries tbody"); db.replaceChildren();
  for (const d of rows) {
    const tr = el("tr"); tr.dataset.id = d.id; tr.dataset.status = d.status;
    tr.appendChild(el("td", {}, [el("a", { href: "#/delivery/" + encodeURIComponent(d.id), text: d.id })]));
    cell(tr, d.eventType); cell(tr, d.endpoint); cell(tr, d.status, d.status); cell(tr, d.attempts);
    cell(tr, d.lastStatus || d.lastErrorClass || "–"); cell(tr, d.lastDurationMs === null || d.lastDurationMs === undefined ? "–" : d.lastDurationMs + " ms");
    cell(tr, d.lastError); cell(tr, when(d.updatedAt));
    const td = cell(tr, ""); if (d.status !== "pending") { const b = el("button", { type: "button", text: "Replay" }); b.onclick = () => replayOne(d.id, b); td.appendChild(b); }
    db.appendChild(tr);
  }
}
function filterQuery() {
  const q = new URLSearchParams();
  for (const [k, sel] of [["endpoint", "#f-endpoint"], ["status", "#f-status"], ["eventType", "#f-type"], ["since", "#f-since"], ["until", "#f-until"]]) { const v = $(sel).value.trim(); if (v) q.set(k, v); }
  return q.toString();
}
async function loadFiltered() {
  try {
    const r = await api("/deliveries?limit=50" + (state.filter ? "&" + state.filter : ""));
    state.filtered = r.deliveries;
    $("#list-note").textContent = (r.deliveries.length === 50 ? "50+ deliveries" : deliveries(r.deliveries.length)) + " match.";
  } catch (e) { state.filtered = []; $("#list-note").textContent = e.message; }
  renderList();
}
$("#filters").onsubmit = (ev) => { ev.preventDefault(); state.event = null; state.filter = filterQuery(); loadFiltered(); };
$("#f-clear").onclick = () => { for (const s of ["#f-endpoint", "#f-status", "#f-type", "#f-since", "#f-until", "#find-id"]) $(s).value = ""; state.filter = null; state.event = null; $("#list-note").textContent = ""; renderList(); };
async function find() {
  const id = $("#find-id").value.trim(); if (!id) return;
  try {
    const r = await api("/find?id=" + encodeURIComponent(id));
    if (r.kind === "delivery") { location.hash = "#/delivery/" + encodeURIComponent(r.delivery.id); return; }
    state.event = r; state.filter = null;
    $("#list-note").textContent = "Event " + r.eventId + ": " + deliveries(r.deliveries.length) + ".";
  } catch (e) { $("#list-note").textContent = e.message; }
  renderList();
}
$("#find").onclick = find;
$("#find-id").onkeydown = (ev) => { if (ev.key === "Enter") { ev.preventDefault(); find(); } };

// Bulk replay: a dry run first, its count shown, then the real one on confirm.
$("#bulk").onsubmit = async (ev) => {
  ev.preventDefault();
  $("#bulk-done").classList.add("hidden");
  const endpoint = $("#bulk-endpoint").value; const since = $("#bulk-since").value.trim();
  try {
    const r = await post("/deliveries/replay", { endpoint, since, dryRun: true });
    // The confirm replays from the same instant, not from a "24h" measured again later.
    state.pendingReplay = { endpoint, since: r.since };
    $("#bulk-count").textContent = "Will resend " + r.started + " failed " + (r.started === 1 ? "delivery" : "deliveries") + " of " + endpoint + " (failed since " + stamp(r.since) + ")" + (r.skipped.length ? "; " + r.skipped.length + " would be skipped" : "") + ".";
    $("#bulk-confirm").disabled = r.started === 0;
    $("#bulk-result").classList.remove("hidden");
  } catch (e) { $("#bulk-done").textContent = e.message; $("#bulk-done").classList.remove("hidden"); }
};
$("#bulk-cancel").onclick = () => { state.pendingReplay = null; $("#bulk-result").classList.add("hidden"); };
$("#bulk-confirm").onclick = async () => {
  const p = state.pendingReplay; if (!p) return;
  state.pendingReplay = null; $("#bulk-result").classList.add("hidden");
  try {
    const r = await post("/deliveries/replay", { endpoint: p.endpoint, since: p.since });
    $("#bulk-done").textContent = "Resent " + deliveries(r.started) + (r.skipped.length ? "; skipped " + r.skipped.length + " (" + r.skipped.slice(0, 5).map((s) => s.reason).join(", ") + ")" : "") + ".";
  } catch (e) { $("#bulk-done").textContent = e.message; }
  $("#bulk-done").classList.remove("hidden");
};

// One delivery and its attempts
function kvTable(obj, cls) {
  const t = el("table", { class: "kv " + (cls || "") }); const b = el("tbody"); t.appendChild(b);
  const keys = Object.keys(obj || {});
  if (!keys.length) b.appendChild(el("tr", {}, [el("td", { text: "(none recorded)" })]));
  for (const k of keys) b.appendChild(el("tr", {}, [el("td", { text: k }), el("td", { text: obj[k] })]));
  return t;
}
async function openDelivery(id) {
  if (state.detail !== id) { state.rec = null; $("#d-attempts").replaceChildren(); $("#d-replay-note").textContent = ""; $("#d-replay").disabled = false; $("#d-replay").textContent = "Replay"; }
  state.detail = id; state.last.detail = Date.now();
  $("#d-id").textContent = id;
  try { state.rec = (await api("/deliveries/" + encodeURIComponent(id))).delivery; renderDetail(); }
  catch (e) { $("#d-summary tbody").replaceChildren(el("tr", {}, [el("td", { text: e.message })])); }
}
function renderDetail() {
  const d = state.rec; if (!d) return;
  const sb = $("#d-summary tbody"); sb.replaceChildren();
  const row = (k, v, cls) => sb.appendChild(el("tr", {}, [el("td", { text: k }), el("td", { text: v, class: cls || "" })]));
  row("Event", d.eventId); row("Type", d.eventType); row("Endpoint", d.endpoint); row("Status", d.status, d.status);
  row("Attempts", d.attempts); row("Created", stamp(d.createdAt)); row("Updated", stamp(d.updatedAt));
  if (d.nextAttemptAt) row("Next attempt", stamp(d.nextAttemptAt));
  if (d.lastError) row("Last error", d.lastError, "failed");
  $("#d-replay").classList.toggle("hidden", d.status === "pending");
  const box = $("#d-attempts"); box.replaceChildren();
  if (!d.attemptLog.length) box.appendChild(el("p", { text: "No attempt yet." }));
  for (const a of d.attemptLog) {
    const head = el("div", { class: "attempt-head" }, [
      "#" + a.attempt + " · " + a.trigger + " · " + stamp(a.at) + " · " + (a.status ? "HTTP " + a.status : "no answer") + " · " + a.durationMs + " ms ",
    ]);
    if (a.errorClass) head.appendChild(el("span", { class: "cls", text: a.errorClass }));
    if (a.error) head.appendChild(document.createTextNode(" " + a.error));
    const req = el("div", {}, [el("h3", { text: "Request headers" }), kvTable(a.requestHeaders, "req-headers")]);
    const res = el("div", {}, [el("h3", { text: a.status ? "Response: HTTP " + a.status : "Response: none" }), kvTable(a.responseHeaders, "res-headers"),
      el("h3", { text: "Body (first 1 KB" + (a.responseTruncated ? ", cut" : "") + ")" }), el("pre", { class: "res-body", text: a.responseBody || "(empty)" })]);
    const next = a.nextAttemptAt ? [el("div", { class: "note", text: "Next attempt due " + stamp(a.nextAttemptAt) })] : [];
    box.appendChild(el("div", { class: "attempt", "data-attempt": a.attempt }, [head, el("div", { class: "cols" }, [req, res]), ...next]));
  }
}
$("#d-replay").onclick = () => { if (state.detail) replayOne(state.detail, $("#d-replay"), $("#d-replay-note")); };

// Inbound endpoints and their runs
async function loadInbound() {
  state.last.inbound = Date.now();
  let r;
  try { r = await api("/inbound?limit=20"); } catch (e) { $("#inbound-note").textContent = e.message; return; }
  const counts = {}; for (const run of r.runs) counts[run.endpoint] = (counts[run.endpoint] || 0) + 1;
  const eb = $("#inbound-endpoints tbody"); eb.replaceChildren();
  for (const e of r.endpoints) {
    const tr = el("tr"); tr.dataset.endpoint = e.name;
    cell(tr, e.name); cell(tr, e.path); cell(tr, e.action); cell(tr, e.agentId || "–"); cell(tr, e.auth); cell(tr, e.enabled ? "yes" : "no", e.enabled ? "" : "failed"); cell(tr, counts[e.name] || 0);
    eb.appendChild(tr);
  }
  $("#inbound-note").textContent = !r.endpoints.length ? "No inbound endpoints are configured." : !r.runsRecorded ? "Runs are recorded when Redis and outgoing webhooks are configured." : r.runs.length ? "" : "No runs yet.";
  const rb = $("#inbound-runs tbody"); rb.replaceChildren();
  for (const run of r.runs) {
    const tr = el("tr"); tr.dataset.run = run.runId; tr.dataset.status = run.status;
    cell(tr, run.runId); cell(tr, run.endpoint); cell(tr, run.agentId || "–"); cell(tr, run.status, run.status);
    cell(tr, stamp(run.startedAt)); cell(tr, stamp(run.endedAt)); cell(tr, run.endedAt && run.startedAt ? run.endedAt - run.startedAt + " ms" : "–"); cell(tr, run.error);
    const td = cell(tr, ""); if (run.completionEventId) td.appendChild(el("a", { href: "#/find/" + encodeURIComponent(run.completionEventId), text: run.completionEventId }));
    rb.appendChild(tr);
  }
}

// Live
function onSnapshot(s) {
  if (s.error) { $("#status").textContent = s.error; return; }
  state.snap = s;
  $("#status").textContent = "live · " + new Date().toLocaleTimeString();
  renderEndpoints(s);
  if (state.view === "deliveries") { if (state.filter !== null) { if (due("filtered", 2000)) loadFiltered(); } else if (!state.event) renderList(); }
  if (state.view === "delivery" && state.rec) {
    const row = s.deliveries.find((d) => d.id === state.detail);
    if ((row && (row.updatedAt !== state.rec.updatedAt || row.attempts !== state.rec.attempts)) || (state.rec.status === "pending" && due("detail", 3000))) openDelivery(state.detail);
  }
  if (state.view === "inbound" && due("inbound", 3000)) loadInbound();
}
route();
const es = new EventSource("/dashboard/events");
es.addEventListener("snapshot", (e) => onSnapshot(JSON.parse(e.data)));
es.onerror = () => { $("#status").textContent = "reconnecting…"; };
`;
