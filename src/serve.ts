import { parseArgs } from "node:util";
import { createApp } from "./app.js";
import { ConfigError, loadConfig, resolveConfigPath, verifiedSecrets } from "./config/load.js";
import { hasRedis, type Config } from "./config/schema.js";
import { closeDeps, createDeps } from "./deps.js";
import { StartupError } from "./errors.js";
import { asSecretRef, createSecretResolver, describeSecret } from "./secrets/resolve.js";
import { secretProblem } from "./secrets/strength.js";
import { serverOptionsOf, startServer } from "./server.js";

/** Startup summary: secrets appear only as how they are configured, never their values. */
function summary(config: Config) {
  return {
    port: config.server.port,
    redis_configured: hasRedis(config.redis),
    limits: hasRedis(config.redis) ? "redis" : "memory (single replica)",
    gateway: config.gateway.mode === "embedded" ? "embedded" : config.gateway.url,
    routes: config.routes.map((r) => ({ id: r.id, path: r.path, secret_configured: describeSecret(r.secret) })),
  };
}

/**
 * SecretRefs of env and file sources that resolve at startup are held to the same floor as inline
 * secrets (secrets/strength.ts), so a `whsec_` in PUBLISH_TOKEN stops startup with the key named,
 * as a bad inline value does. One that does not resolve yet stays allowed (docs/configuration.md, Secrets: such a
 * route answers 401 until it does); exec refs, and every ref later, are checked as they resolve.
 */
async function checkSecretRefs(config: Config, env: NodeJS.ProcessEnv): Promise<void> {
  const resolver = createSecretResolver({ providers: config.secrets.providers, env });
  for (const { key, input, standardKey } of verifiedSecrets(config, config.routes)) {
    const ref = asSecretRef(input);
    if (!ref || (ref.source !== "env" && ref.source !== "file")) continue;
    const value = await resolver.resolve(ref, { unchecked: true });
    const problem = value === undefined ? undefined : secretProblem(value, { standardKey });
    if (problem) throw new ConfigError(`${key} (${describeSecret(ref)}): ${problem}`);
  }
}

/** Composition root: loadConfig → createDeps → createApp → serve; SIGTERM/SIGINT shut down in order. */
export async function serveMain(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let file: string;
  try {
    // `--config PATH` and `--config=PATH`; anything else is a usage error, never silently ignored.
    const { values } = parseArgs({ args: argv, options: { config: { type: "string" } }, strict: true, allowPositionals: false });
    file = resolveConfigPath(values.config, env);
  } catch (err) {
    process.stderr.write(`openclaw-webhooks: ${(err as Error).message}\nUsage: openclaw-webhooks serve [--config PATH]\n`);
    process.exit(2);
  }
  let config: Config;
  let deps;
  try {
    config = loadConfig(file, env);
    await checkSecretRefs(config, env);
    deps = await createDeps(config);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof StartupError) {
      process.stderr.write(`openclaw-webhooks: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const { log } = deps;
  for (const r of config.routes) {
    if (typeof r.secret === "object" && r.secret.source === "store") {
      log.warn({ route: r.id }, 'SecretRef source "store" is the Gateway\'s own store and cannot be read here; the route answers 401');
    }
  }
  const app = createApp(deps);
  await deps.egress?.startWorker();
  const running = await startServer(app, serverOptionsOf(config));
  log.info({ ...summary(config), url: running.url }, "openclaw-webhooks listening");

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    deps.state.shuttingDown = true;
    log.info({ signal }, "shutting down");
    await running.close(config.server.shutdownTimeoutMs);
    await closeDeps(deps);
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}
