// The Webhooks page of the Control UI (native plugin module; loaded when the lab setting
// `gateway.controlUi.experimental.customPlugins` is on; deliveries-ui.js has the why).
// Plain browser ESM with no dependencies: the Gateway serves this file as it is.
//
// It runs with the operator's own Gateway connection: `host.request` calls the bridge plugin's
// Gateway methods (webhooksBridge.list_deliveries, get_delivery: operator.read;
// replay_delivery: operator.write), which ask the openclaw-webhooks service's admin API from the
// Gateway process. The page refreshes every 2 s while it is shown.

const POLL_MS = 2000;
const STYLE = `
.wb-page{padding:16px 20px;font:13px system-ui,sans-serif;color:var(--text,inherit);overflow:auto;height:100%;box-sizing:border-box}
.wb-page h1{font-size:18px;margin:0 0 4px}.wb-note{opacity:.7;margin:0 0 12px}
.wb-err{color:#d33;font-weight:600}.wb-toast{margin-left:8px;font-weight:600}
.wb-eps{display:flex;gap:10px;flex-wrap:wrap;margin:0 0 12px;padding:0;list-style:none}
.wb-eps li{border:1px solid rgba(127,127,127,.35);border-radius:6px;padding:6px 10px}
.wb-eps li.bad{border-color:#d33}.wb-eps b{margin-right:6px}
.wb-filter button{margin-right:4px}.wb-filter button[aria-pressed=true]{font-weight:700}
.wb-page table{border-collapse:collapse;width:100%;margin-top:8px}
.wb-page th,.wb-page td{text-align:left;padding:4px 8px;border-bottom:1px solid rgba(127,127,127,.25);vertical-align:top}
.wb-st-failed{color:#d33;font-weight:600}.wb-st-delivered{color:#2a9d4b}.wb-st-pending{color:#c98a00}
.wb-why{max-width:30em;overflow-wrap:anywhere}.wb-attempts td{opacity:.85;font-size:12px}
`;

const when = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "–");
function el(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  }
  for (const k of kids) if (k !== undefined && k !== null) e.append(k instanceof Node ? k : String(k));
  return e;
}

function mountPage(container, { host, signal }) {
  let status = "";
  let timer;
  let open; // the delivery whose attempts are shown
  const style = el("style", {}, STYLE);
  const note = el("p", { class: "wb-note" }, "Deliveries of the openclaw-webhooks service, live.");
  const toast = el("span", { class: "wb-toast", role: "status" });
  const error = el("p", { class: "wb-err", id: "wb-error", hidden: "" });
  const eps = el("ul", { class: "wb-eps", id: "wb-endpoints" });
  const filter = el("p", { class: "wb-filter" });
  for (const s of ["", "failed", "pending", "delivered"]) {
    filter.append(el("button", { type: "button", "data-status": s, "aria-pressed": s === status, onclick: () => ((status = s), refresh()) }, s || "all"));
  }
  filter.append(toast);
  const body = el("tbody");
  const table = el(
    "table",
    { id: "wb-deliveries" },
    el("thead", {}, el("tr", {}, ...["Updated", "Event", "Endpoint", "Status", "Attempts", "Last response", "ms", "Failure reason", ""].map((h) => el("th", {}, h)))),
    body,
  );
  const page = el("div", { class: "wb-page" }, style, el("h1", {}, "Webhook deliveries"), note, error, eps, filter, table);
  container.append(page);

  async function replay(id) {
    toast.textContent = "replaying…";
    try {
      await host.request("webhooksBridge.replay_delivery", { id });
      toast.textContent = `replay of ${id} started`;
    } catch (err) {
      toast.textContent = `replay refused: ${err?.message ?? err}`;
    }
    refresh();
  }

  async function attempts(id, after) {
    const { delivery } = await host.request("webhooksBridge.get_delivery", { id });
    if (signal.aborted || open !== id) return;
    const row = el("tr", { class: "wb-attempts" }, el("td", { colspan: 9 }));
    const t = el("table");
    for (const a of delivery.attemptLog ?? []) {
      t.append(el("tr", {}, el("td", {}, `#${a.attempt}`), el("td", {}, when(a.at)), el("td", {}, a.status ?? a.errorClass ?? "–"), el("td", {}, `${a.durationMs ?? "–"} ms`), el("td", { class: "wb-why" }, a.error ?? "")));
    }
    row.firstChild.append(t);
    after.after(row);
  }

  function render(snap) {
    for (const b of filter.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.status === status));
    eps.replaceChildren(
      ...snap.endpoints.map((e) =>
        el("li", { class: e.enabled && e.circuit === "closed" ? "ok" : "bad" }, el("b", {}, e.name), " ", e.origin, " · ", e.enabled ? `circuit ${e.circuit}` : `disabled: ${e.disabledReason ?? ""}`, " · ", `${e.inFlight} in flight`),
      ),
    );
    const rows = snap.deliveries.map((d) => {
      const tr = el(
        "tr",
        { "data-id": d.id, onclick: (ev) => { if (ev.target.tagName === "BUTTON") return; open = open === d.id ? undefined : d.id; refresh(); } },
        el("td", {}, when(d.updatedAt)),
        el("td", {}, d.eventType),
        el("td", {}, d.endpoint),
        el("td", { class: `wb-st-${d.status}` }, d.status),
        el("td", {}, d.attempts),
        el("td", {}, d.lastStatus ?? d.lastErrorClass ?? "–"),
        el("td", {}, d.lastDurationMs ?? "–"),
        el("td", { class: "wb-why" }, d.lastError ?? ""),
        el("td", {}, d.status === "pending" ? "" : el("button", { type: "button", "data-replay": d.id, onclick: () => replay(d.id) }, "Replay")),
      );
      if (open === d.id) attempts(d.id, tr).catch(() => {});
      return tr;
    });
    body.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 9 }, "no deliveries"))]));
    note.textContent = `Deliveries of the openclaw-webhooks service, live (updated ${when(snap.at)}).`;
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const snap = await host.request("webhooksBridge.list_deliveries", { limit: 50, ...(status ? { status } : {}) });
      if (signal.aborted) return;
      error.hidden = true;
      render(snap);
    } catch (err) {
      if (signal.aborted) return;
      error.hidden = false;
      error.textContent = err?.message ?? String(err);
    }
    if (!signal.aborted) timer = setTimeout(refresh, POLL_MS);
  }
  refresh();
  return { dispose: () => (clearTimeout(timer), page.remove()) };
}

export default {
  id: "webhooks-bridge",
  activate(host) {
    const off = [
      host.ui.registerPage({ id: "webhooks", label: "Webhooks", mount: mountPage }),
      host.ui.registerNavigation({ id: "webhooks", label: "Webhooks", page: { id: "webhooks" }, icon: "puzzle" }),
    ];
    return () => off.forEach((f) => f());
  },
};
