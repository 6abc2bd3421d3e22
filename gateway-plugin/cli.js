// `openclaw deliveries list|show|replay` on the Gateway host (seed 002's "Webhook Debugging":
// `openclaw webhooks list --recent 20`, `--status failed`), answered by the openclaw-webhooks
// service's admin API, whose URL and token are in this plugin's config.
//
// Why `deliveries` and not `webhooks list`: in 2026.9.6 the CLI loads no plugin command when the
// first word is a built-in one (`webhooks` is, with `gmail`), so a plugin can add a new top-level
// command, or a subcommand under `nodes`, `plugins` or `pairing`, and nothing under `webhooks`.
// The CLI runs in its own process: it reads this plugin's config from openclaw.json and talks to
// the service over HTTP, with no Gateway in between.

export const COMMAND = "deliveries";
export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3, token: 4 };

class CliError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** Ids and reasons come from outside: control characters are shown escaped. */
const printable = (s) => String(s ?? "").replace(/[\u0000-\u001f\u007f-\u009f]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);
const when = (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "-");
function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return `${rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ").trimEnd()).join("\n")}\n`;
}

/** One admin API call; the failures an operator can act on become CliErrors with their exit code. */
async function admin(cfg, resolveToken, method, path) {
  const url = cfg?.url;
  if (!url) throw new CliError(EXIT.usage, "plugins.entries.webhooks-bridge.config.service.url is not set in openclaw.json");
  const token = await resolveToken(cfg.adminToken);
  if (!token) throw new CliError(EXIT.usage, "plugins.entries.webhooks-bridge.config.service.adminToken does not resolve (set it, or the env var / file it names)");
  let res;
  try {
    res = await fetch(`${url.replace(/\/+$/, "")}/admin/api${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(method === "POST" ? { "content-type": "application/json" } : {}) },
      ...(method === "POST" ? { body: "{}" } : {}),
      signal: AbortSignal.timeout(cfg.timeoutMs ?? 10_000),
    });
  } catch (err) {
    throw new CliError(EXIT.unreachable, `cannot reach the webhook service at ${url} (${err?.cause?.code ?? err?.name ?? "error"})`);
  }
  const body = await res.json().catch(() => ({}));
  if (res.status === 401) throw new CliError(EXIT.token, `the webhook service at ${url} refused the admin token (401)`);
  if (res.status === 404 && !body.code) throw new CliError(EXIT.token, `the webhook service at ${url} has no admin API (admin.token is not set there)`);
  if (!res.ok) throw new CliError(EXIT.refused, `${body.code ?? res.status}: ${body.error ?? "refused"}`);
  return body.result ?? body;
}

/** Registers the command on the CLI's Commander program. */
export function registerDeliveriesCli(program, cfg, resolveToken) {
  const run = (fn) => async (...args) => {
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
        if (o.status && !["failed", "delivered", "pending"].includes(o.status)) throw new CliError(EXIT.usage, "--status is failed, delivered or pending");
        const q = new URLSearchParams({ limit: String(n), ...(o.status ? { status: o.status } : {}), ...(o.endpoint ? { endpoint: o.endpoint } : {}) });
        const { deliveries } = await admin(cfg, resolveToken, "GET", `/deliveries?${q}`);
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
        out(o.json, d, () =>
          `${printable(d.id)}  ${printable(d.eventType)} → ${printable(d.endpoint)}  ${d.status}, ${d.attempts} attempt(s)\n` +
          (d.attemptLog ?? [])
            .map((a) => `  #${a.attempt} ${when(a.at)} ${a.status ?? a.errorClass ?? "-"} ${a.durationMs ?? "-"} ms${a.error ? ` ${printable(a.error)}` : ""}\n`)
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
