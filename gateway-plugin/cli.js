// `openclaw deliveries list|show|replay` on the Gateway host (docs/bridge-plugin.md; e.g.
// `openclaw deliveries list --recent 20 --status failed`), answered by the openclaw-webhooks
// service's admin API, whose URL and token are in this plugin's config.
//
// Why `deliveries` and not `webhooks list`: in 2026.9.6 the CLI loads no plugin command when the
// first word is a built-in one (`webhooks` is, with `gmail`), so a plugin can add a new top-level
// command, or a subcommand under `nodes`, `plugins` or `pairing`, and nothing under `webhooks`.
// The CLI runs in its own process: it reads this plugin's config from openclaw.json and talks to
// the service over HTTP, with no Gateway in between.

import { callAdmin, deliveriesQuery, DELIVERY_STATUSES, ServiceError } from "./service-api.js";

export const COMMAND = "deliveries";
export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3, token: 4 };

/** Ids and reasons come from outside: control characters are shown escaped. */
const printable = (s) => String(s ?? "").replace(/[\u0000-\u001f\u007f-\u009f]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);
const when = (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "-");
function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return `${rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
        .join("  ")
        .trimEnd(),
    )
    .join("\n")}\n`;
}

/** One admin API call, its failures as exit codes. */
async function admin(cfg, resolveToken, method, path) {
  try {
    return await callAdmin(cfg, resolveToken, method, path);
  } catch (err) {
    throw err instanceof ServiceError ? new CliError(EXIT[err.kind], err.message) : err;
  }
}

class CliError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** Registers the command on the CLI's Commander program. */
export function registerDeliveriesCli(program, cfg, resolveToken) {
  const run =
    (fn) =>
    async (...args) => {
      try {
        await fn(...args);
      } catch (err) {
        process.stderr.write(`openclaw ${COMMAND}: ${err.message}\n`);
        process.exitCode = err instanceof CliError ? err.code : EXIT.refused;
      }
    };
  const out = (json, data, text) => process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : text());
  const root = program.command(COMMAND).description("Webhook deliveries of the openclaw-webhooks service (list, show, replay)");
  root
    .command("list")
    .description("Recent deliveries, newest first")
    .option("--recent <n>", "how many", "20")
    .option("--status <status>", "failed, delivered or pending")
    .option("--endpoint <name>", "one endpoint")
    .option("--json", "JSON instead of a table")
    .action(
      run(async (o) => {
        const n = Number(o.recent);
        if (!Number.isInteger(n) || n < 1 || n > 1000) throw new CliError(EXIT.usage, "--recent takes a number from 1 to 1000");
        if (o.status && !DELIVERY_STATUSES.includes(o.status)) throw new CliError(EXIT.usage, `--status is ${DELIVERY_STATUSES.join(", ")}`);
        const { deliveries } = await admin(cfg, resolveToken, "GET", deliveriesQuery({ limit: n, status: o.status, endpoint: o.endpoint }));
        out(o.json, deliveries, () =>
          deliveries.length === 0
            ? "no deliveries\n"
            : table([
                ["ID", "EVENT", "ENDPOINT", "STATUS", "ATTEMPTS", "LAST", "MS", "UPDATED", "ERROR"],
                ...deliveries.map((d) => [
                  printable(d.id),
                  printable(d.eventType),
                  printable(d.endpoint),
                  d.status,
                  String(d.attempts),
                  d.lastStatus ? String(d.lastStatus) : (d.lastErrorClass ?? "-"),
                  d.lastDurationMs !== undefined ? String(d.lastDurationMs) : "-",
                  when(d.updatedAt),
                  printable(d.lastError ?? ""),
                ]),
              ]),
        );
      }),
    );
  root
    .command("show <id>")
    .description("One delivery with every attempt")
    .option("--json", "JSON instead of text")
    .action(
      run(async (id, o) => {
        const { delivery: d } = await admin(cfg, resolveToken, "GET", `/deliveries/${encodeURIComponent(id)}`);
        out(
          o.json,
          d,
          () =>
            `${printable(d.id)}  ${printable(d.eventType)} → ${printable(d.endpoint)}  ${d.status}, ${d.attempts} attempt(s)\n` +
            (d.attemptLog ?? [])
              .map(
                (a) => `  #${a.attempt} ${when(a.at)} ${a.status ?? a.errorClass ?? "-"} ${a.durationMs ?? "-"} ms${a.error ? ` ${printable(a.error)}` : ""}\n`,
              )
              .join(""),
        );
      }),
    );
  root
    .command("replay <id>")
    .description("One manual attempt of a delivery (same webhook-id)")
    .option("--json", "JSON instead of text")
    .action(
      run(async (id, o) => {
        const r = await admin(cfg, resolveToken, "POST", `/deliveries/${encodeURIComponent(id)}/replay`);
        out(o.json, r, () => `replay of ${printable(id)} started\n`);
      }),
    );
  return root;
}
