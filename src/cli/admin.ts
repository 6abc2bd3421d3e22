import { parseArgs } from "node:util";
import type { AdminResult, adminAnswers } from "../openapi/answers.js";

/** Exit codes scripts can trust. */
export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3, unauthorized: 4 } as const;

export const ADMIN_HELP = `Admin commands (over the service's /admin/api):
  deliveries list [--recent N] [--status failed|delivered|pending] [--endpoint NAME]
                  [--event-type TYPE] [--since 1h|ISO|ms] [--json]
  deliveries show ID [--json]
  deliveries replay ID
  deliveries replay --status failed [--since 1h] [--endpoint NAME]
  endpoints list [--json]
  endpoints enable|disable|test NAME
  routes list [--json]
  parked list [--recent N] [--json]
  parked show ID [--json]
  parked replay ID
  parked discard ID

Connection: --url URL (or $OPENCLAW_WEBHOOKS_URL, default http://127.0.0.1:8787)
            --token TOKEN (or $OPENCLAW_WEBHOOKS_ADMIN_TOKEN): the service's admin.token
Exit codes: 0 done, 1 the service refused (not found, conflict, …), 2 usage error,
            3 the service cannot be reached, 4 the token was refused.
`;

type Out = { out: (s: string) => void; err: (s: string) => void };
class CliError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const OPTIONS = {
  url: { type: "string" },
  token: { type: "string" },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
  recent: { type: "string" },
  status: { type: "string" },
  endpoint: { type: "string" },
  "event-type": { type: "string" },
  since: { type: "string" },
} as const;

/** A plain text table: columns padded to their widest cell. */
export function table(rows: string[][]): string {
  if (rows.length === 0) return "";
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return `${rows
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n")}\n`;
}

/** Ids and reasons come from outside: control characters are shown escaped, never sent to the terminal. */
const printable = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);

const when = (ms: number | undefined) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "-");

/**
 * `openclaw-webhooks deliveries|endpoints|routes|parked …`: the admin API from a terminal
 * (docs/operations.md, CLI; e.g. `deliveries list --recent 20 --status failed`). Tables for people, `--json` for scripts.
 */
export async function adminCli(argv: string[], env: NodeJS.ProcessEnv, io: Out): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    io.err(`openclaw-webhooks: ${(err as Error).message}\n`);
    return EXIT.usage;
  }
  const { values: v, positionals } = parsed;
  const [group, verb, arg] = positionals;
  if (v.help || !verb) {
    io.out(ADMIN_HELP);
    return v.help ? EXIT.ok : EXIT.usage;
  }
  const base = (v.url ?? env.OPENCLAW_WEBHOOKS_URL ?? "http://127.0.0.1:8787").replace(/\/+$/, "");
  const token = v.token ?? env.OPENCLAW_WEBHOOKS_ADMIN_TOKEN ?? "";

  /** One admin API call; `_kind` names the answer's type (src/openapi/answers.ts). */
  async function api<K extends keyof typeof adminAnswers>(_kind: K, method: string, path: string, body?: unknown): Promise<AdminResult<K>> {
    let res: Response;
    try {
      res = await fetch(`${base}/admin/api${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(15_000),
      });
    } catch (err) {
      throw new CliError(
        EXIT.unreachable,
        `cannot reach ${base} (${(err as Error).cause ? String((err as { cause: Error }).cause.message) : (err as Error).message})`,
      );
    }
    const json = (await res.json().catch(() => ({}))) as { ok?: boolean; result?: unknown; code?: string; error?: string };
    if (res.status === 401) throw new CliError(EXIT.unauthorized, "the admin token was refused (set --token or OPENCLAW_WEBHOOKS_ADMIN_TOKEN)");
    if (!res.ok) throw new CliError(EXIT.refused, `${res.status} ${json.code ?? ""}: ${json.error ?? "refused"}`.trim());
    return json.result as AdminResult<K>;
  }

  const print = (data: unknown, text: () => string) => io.out(v.json ? `${JSON.stringify(data, null, 2)}\n` : text());

  try {
    const cmd = `${group} ${verb}`;
    if (cmd === "deliveries list") {
      if (v.status && !["failed", "delivered", "pending"].includes(v.status)) throw new CliError(EXIT.usage, "--status is failed, delivered or pending");
      const q = new URLSearchParams();
      q.set("limit", String(v.recent ? Number(v.recent) : 20));
      if (!Number.isInteger(Number(q.get("limit"))) || Number(q.get("limit")) < 1) throw new CliError(EXIT.usage, "--recent takes a positive number");
      for (const [k, name] of [
        ["status", "status"],
        ["endpoint", "endpoint"],
        ["eventType", "event-type"],
        ["since", "since"],
      ] as const) {
        const value = v[name];
        if (value) q.set(k, value);
      }
      const r = await api("deliveries", "GET", `/deliveries?${q}`);
      print(r.deliveries, () =>
        r.deliveries.length === 0
          ? "no deliveries\n"
          : table([
              ["ID", "EVENT", "ENDPOINT", "STATUS", "ATTEMPTS", "LAST", "MS", "UPDATED", "ERROR"],
              ...r.deliveries.map((d) => [
                d.id,
                d.eventType,
                d.endpoint,
                d.status,
                String(d.attempts),
                d.lastStatus ? String(d.lastStatus) : (d.lastErrorClass ?? "-"),
                d.lastDurationMs !== undefined ? String(d.lastDurationMs) : "-",
                when(d.updatedAt),
                d.lastError ?? "",
              ]),
            ]),
      );
      return EXIT.ok;
    }
    if (cmd === "deliveries show") {
      if (!arg) throw new CliError(EXIT.usage, "deliveries show ID");
      const { delivery: d } = await api("delivery", "GET", `/deliveries/${encodeURIComponent(arg)}`);
      print(d, () => {
        const head = `${d.id}\n  event     ${printable(d.eventType)} (${printable(d.eventId)})\n  endpoint  ${d.endpoint}\n  status    ${d.status} after ${d.attempts} attempt(s)\n  created   ${when(d.createdAt)}\n`;
        const rows = d.attemptLog.map((a) => [
          String(a.attempt),
          a.trigger,
          when(a.at),
          a.status ? String(a.status) : "-",
          a.errorClass ?? "-",
          `${a.durationMs} ms`,
          a.nextAttemptAt ? `next ${when(a.nextAttemptAt)}` : "",
        ]);
        return `${head}\n${table([["#", "TRIGGER", "AT", "STATUS", "CLASS", "TIME", "NEXT"], ...rows])}`;
      });
      return EXIT.ok;
    }
    if (cmd === "deliveries replay") {
      if (arg) {
        const r = await api("replay", "POST", `/deliveries/${encodeURIComponent(arg)}/replay`);
        print(r, () => `replay of ${arg} started (${r.jobId})\n`);
        return EXIT.ok;
      }
      if (v.status !== "failed") throw new CliError(EXIT.usage, "deliveries replay ID, or deliveries replay --status failed [--since 1h] [--endpoint NAME]");
      const names: string[] = v.endpoint ? [v.endpoint] : (await api("endpoints", "GET", "/endpoints")).endpoints.map((e) => e.name);
      const results: { endpoint: string; started: number; skipped: unknown[] }[] = [];
      for (const endpoint of names) results.push(await api("bulkReplay", "POST", "/deliveries/replay", { endpoint, ...(v.since ? { since: v.since } : {}) }));
      print(results, () =>
        results.map((r) => `${r.endpoint}: ${r.started} replay(s) started${r.skipped.length ? `, ${r.skipped.length} skipped` : ""}\n`).join(""),
      );
      return EXIT.ok;
    }
    if (cmd === "endpoints list") {
      const { endpoints } = await api("endpoints", "GET", "/endpoints");
      print(endpoints, () =>
        table([
          ["NAME", "STATE", "CIRCUIT", "FAILURES", "IN FLIGHT", "LAST SUCCESS", "URL"],
          ...endpoints.map((e) => [
            e.name,
            e.enabled ? "enabled" : `disabled: ${e.disabled?.reason ?? ""}`,
            e.circuit.state,
            String(e.circuit.failures),
            String(e.inFlight),
            when(e.circuit.lastSuccessAt),
            e.url,
          ]),
        ]),
      );
      return EXIT.ok;
    }
    if (group === "endpoints" && ["enable", "disable", "test"].includes(verb)) {
      if (!arg) throw new CliError(EXIT.usage, `endpoints ${verb} NAME`);
      const path = `/endpoints/${encodeURIComponent(arg)}/${verb}`;
      if (verb === "test") {
        const r = await api("endpointTest", "POST", path);
        print(r, () => `test event ${r.eventId} queued as delivery ${r.deliveryId ?? "(none: endpoint disabled)"}\n`);
      } else print(await api("endpointToggle", "POST", path), () => `${arg} ${verb}d\n`);
      return EXIT.ok;
    }
    if (cmd === "routes list") {
      const r = await api("routes", "GET", "/routes");
      print(r, () =>
        table([
          ["KIND", "ID", "PATH", "DETAIL"],
          ...r.taskflow.map((t) => ["taskflow", t.id, t.path, `session ${t.sessionKey}, secret ${t.secret}`]),
          ...r.inbound.map((i) => [
            "inbound",
            i.name,
            i.path,
            `${i.action}${i.agentId ? ` → ${i.agentId}` : ""}, auth ${i.auth}${i.enabled ? "" : " (disabled)"}`,
          ]),
        ]),
      );
      return EXIT.ok;
    }
    if (cmd === "parked list") {
      const limit = v.recent ? Number(v.recent) : 20;
      if (!Number.isInteger(limit) || limit < 1) throw new CliError(EXIT.usage, "--recent takes a positive number");
      const r = await api("parkedList", "GET", `/parked?limit=${limit}`);
      print(r, () =>
        r.parked.length === 0
          ? "no parked events\n"
          : table([
              ["ID", "EVENT ID", "TYPE", "SOURCE", "PARKED", "TIMES", "REASON"],
              ...r.parked.map((p) => [p.parkedId, printable(p.eventId), printable(p.type), p.source, when(p.parkedAt), String(p.times), printable(p.reason)]),
            ]) + (r.total > r.parked.length ? `(${r.parked.length} of ${r.total})\n` : ""),
      );
      return EXIT.ok;
    }
    if (group === "parked" && ["show", "replay", "discard"].includes(verb)) {
      if (!arg) throw new CliError(EXIT.usage, `parked ${verb} ID`);
      const id = encodeURIComponent(arg);
      if (verb === "show") {
        const { parked: p } = await api("parked", "GET", `/parked/${id}`);
        print(
          p,
          () =>
            `${p.parkedId}\n  event     ${printable(p.type)} (${printable(p.eventId)}) from ${p.source}\n  parked    ${when(p.parkedAt)} (first ${when(p.firstParkedAt)}, ${p.times} time(s))${p.storedIn === "memory" ? " in memory" : ""}\n  reason    ${printable(p.reason)}\n  replay    ${p.replayable ? "possible" : "not possible (no data kept)"}\n`,
        );
        return EXIT.ok;
      }
      if (verb === "replay") {
        const r = await api("parkedReplay", "POST", `/parked/${id}/replay`);
        print(r, () => `${arg} replayed: ${r.deliveries.length} delivery(ies) queued${r.duplicate ? " (the event was already stored)" : ""}\n`);
      } else print(await api("parkedDiscard", "POST", `/parked/${id}/discard`), () => `${arg} discarded\n`);
      return EXIT.ok;
    }
    throw new CliError(EXIT.usage, `unknown command: ${positionals.join(" ")}`);
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    io.err(`openclaw-webhooks: ${err.message}\n`);
    if (err.code === EXIT.usage) io.err("Run openclaw-webhooks --help.\n");
    return err.code;
  }
}
