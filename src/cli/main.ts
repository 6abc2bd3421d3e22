import { ConfigError, loadConfig } from "../config/load.js";
import { hasRedis } from "../config/schema.js";
import { ADMIN_HELP, adminCli } from "./admin.js";
import { describeSecret } from "../secrets/resolve.js";
import { serveMain } from "../serve.js";
import { version } from "../version.js";

const HELP = `openclaw-webhooks ${"{version}"}

Usage:
  openclaw-webhooks serve [--config PATH]    start the service (same as npm start)
  openclaw-webhooks config check FILE        validate a config file; exit 0 if valid, 1 if not
  openclaw-webhooks --help | --version

Config file: --config PATH, else $OPENCLAW_WEBHOOKS_CONFIG, else config/default.json5.
Env overrides: PORT, REDIS_URL, OPENCLAW_GATEWAY_URL, OPENCLAW_GATEWAY_TOKEN, LOG_LEVEL.
Exit codes: 0 success, 1 invalid config or startup failure, 2 usage error.

{admin}`;

/** Thin CLI: parses argv, then calls the same loadConfig / serveMain as the service. */
export async function cli(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === "--version" || cmd === "-v") {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (cmd === undefined || cmd === "--help" || cmd === "-h" || cmd === "help") {
    process.stdout.write(HELP.replace("{version}", version()).replace("{admin}", ADMIN_HELP));
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === "serve") {
    if (rest.includes("--help")) {
      process.stdout.write("Usage: openclaw-webhooks serve [--config PATH]\n");
      return 0;
    }
    await serveMain(rest);
    return -1; // keeps running until a signal
  }
  if (cmd === "config" && rest[0] === "check") {
    const file = rest[1];
    if (!file || file === "--help") {
      process.stdout.write("Usage: openclaw-webhooks config check FILE\n");
      return file ? 0 : 2;
    }
    try {
      const c = loadConfig(file, {});
      process.stdout.write(`${file}: valid\n`);
      for (const r of c.routes) process.stdout.write(`  route ${r.id}  ${r.path}  secret: ${describeSecret(r.secret)}\n`);
      process.stdout.write(`  gateway: ${c.gateway.mode === "embedded" ? "embedded" : c.gateway.url}\n`);
      process.stdout.write(`  limits: ${hasRedis(c.redis) ? "redis" : "memory (single replica)"}\n`);
      return 0;
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`${err.message}\n`);
        return 1;
      }
      throw err;
    }
  }
  if (cmd === "deliveries" || cmd === "endpoints" || cmd === "routes" || cmd === "parked") {
    return adminCli(argv, process.env, { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) });
  }
  process.stderr.write(`openclaw-webhooks: unknown command: ${argv.join(" ")}\nRun openclaw-webhooks --help.\n`);
  return 2;
}

const code = await cli(process.argv.slice(2));
// Exit once stdout and stderr are flushed: a piped --json answer must arrive whole.
if (code >= 0) process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
