import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createGatewayClient } from "../../src/gateway/client.js";
import { createLogger } from "../../src/log.js";
import { freePort } from "../support/redis.js";

export const GATEWAY_TOKEN = "gw-test-token-0123456789abcdef";
const PLUGIN_DIR = resolve(import.meta.dirname, "../../gateway-plugin");

/** The CLI entry of the pinned OpenClaw, installed once outside the repo by scripts/ensure-openclaw.mjs. */
export function openclawEntry(): string {
  return execFileSync(process.execPath, [resolve(import.meta.dirname, "../../scripts/ensure-openclaw.mjs")], { encoding: "utf8" }).trim();
}

export type BuiltinRoute = { path: string; sessionKey: string; secret: string };

/**
 * The real OpenClaw Gateway (2026.9.6) on 127.0.0.1 with a fresh state folder, token auth, the
 * bridge plugin (plugins.load.paths) and the bundled webhooks plugin on the given routes. Offline:
 * no model catalog refresh, no update check, no mDNS (docs/openclaw-contract.md §4.1). `stop()` sends SIGTERM and
 * falls back to SIGKILL after 15 s (an unbacked running task can make the Gateway drain for 315 s);
 * `start()` brings it back on the same port and state, so flows persist across a restart.
 */
export const HOOKS_TOKEN = "gw-hooks-token-0123456789abcdef";

/**
 * `model`: the base URL of a loopback OpenAI-compatible stub (test/support/stub-model.ts), made the
 * default model of every agent (docs/openclaw-contract.md §4.2), so agent turns run offline. Heartbeat turns and
 * title generation are off, and cron webhooks may target 127.0.0.1 (§4.3).
 */
export async function startRealGateway(opts: {
  routes?: Record<string, BuiltinRoute>;
  trustedProxies?: string[];
  model?: string;
  bridge?: Record<string, unknown>;
  bridgeConversationAccess?: boolean;
  env?: Record<string, string>;
  config?: Record<string, unknown>;
  gateway?: Record<string, unknown>;
}) {
  const entry = openclawEntry();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "ocwh-openclaw-"));
  const home = join(dir, "home");
  const stateDir = join(home, ".openclaw");
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(
    join(stateDir, "openclaw.json"),
    JSON.stringify(
      {
        gateway: {
          mode: "local",
          bind: "loopback",
          port,
          auth: { mode: "token", token: GATEWAY_TOKEN },
          ...(opts.trustedProxies ? { trustedProxies: opts.trustedProxies } : {}),
          ...opts.gateway,
        },
        discovery: { mdns: { mode: "off" } },
        // The Gateway's HTTP hooks, for the inbound wake endpoints (POST /hooks/wake).
        hooks: { enabled: true, token: HOOKS_TOKEN, path: "/hooks" },
        update: { checkOnStart: false },
        telemetry: { enabled: false },
        models: opts.model
          ? {
              catalogRefresh: { enabled: false },
              mode: "merge",
              providers: {
                stub: {
                  baseUrl: opts.model,
                  apiKey: "stub-key",
                  api: "openai-completions",
                  models: [
                    {
                      id: "stub-1",
                      name: "Stub",
                      reasoning: false,
                      input: ["text"],
                      cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
                      contextWindow: 128000,
                      maxTokens: 4096,
                    },
                  ],
                },
              },
            }
          : { catalogRefresh: { enabled: false } },
        ...(opts.model ? { agents: { defaults: { model: { primary: "stub/stub-1" }, utilityModel: "", heartbeat: { every: "0m" } } } } : {}),
        cron: { webhookSsrfPolicy: { allowedHostnames: ["127.0.0.1"] } },
        ...opts.config,
        plugins: {
          load: { paths: [PLUGIN_DIR] },
          entries: {
            "webhooks-bridge": {
              enabled: true,
              ...(opts.bridge ? { config: opts.bridge } : {}),
              // The run's prompt (webhooks_emit's trigger_message) comes from a conversation hook.
              ...(opts.bridgeConversationAccess ? { hooks: { allowConversationAccess: true } } : {}),
            },
            webhooks: { enabled: true, config: { routes: opts.routes ?? {} } },
          },
        },
      },
      null,
      2,
    ),
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...opts.env,
    HOME: home,
    OPENCLAW_STATE_DIR: stateDir,
    OPENCLAW_DISABLE_BONJOUR: "1",
    OPENCLAW_NO_AUTO_UPDATE: "1",
  };
  delete env.OPENCLAW_GATEWAY_TOKEN;
  delete env.OPENCLAW_GATEWAY_URL;
  let proc: ChildProcess | undefined;
  let log = "";

  const start = () =>
    new Promise<void>((resolvePromise, reject) => {
      const p = spawn(process.execPath, [entry, "gateway", "run", "--bind", "loopback", "--port", String(port)], {
        cwd: dir,
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      proc = p;
      const timer = setTimeout(() => reject(new Error(`Gateway not ready within 90 s:\n${log.slice(-3000)}`)), 90_000);
      const onData = (d: Buffer) => {
        log += d.toString();
        // "[gateway] ready" (not "[gateway] spawn broker ready"); the log is ANSI-coloured.
        if (/\[gateway\] ready\b/.test(log.slice(-4000).replace(/\x1b\[[0-9;]*m/g, ""))) {
          clearTimeout(timer);
          p.stdout!.off("data", onData);
          p.stderr!.off("data", onData);
          p.stdout!.on("data", (x: Buffer) => (log += x.toString()));
          p.stderr!.on("data", (x: Buffer) => (log += x.toString()));
          resolvePromise();
        }
      };
      p.stdout!.on("data", onData);
      p.stderr!.on("data", onData);
      p.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`Gateway exited (${code}):\n${log.slice(-3000)}`));
      });
    });

  const stop = async () => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.removeAllListeners("exit");
    const exited = new Promise<void>((r) => p.once("exit", () => r()));
    p.kill("SIGTERM");
    const t = setTimeout(() => p.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(t);
  };
  process.once("exit", () => proc?.kill("SIGKILL"));

  await start();
  return {
    port,
    /** The Gateway's temp folder (state, config, logs). */
    dir,
    url: `ws://127.0.0.1:${port}`,
    http: `http://127.0.0.1:${port}`,
    token: GATEWAY_TOKEN,
    log: () => log,
    start,
    stop,
    dispose: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type RealGateway = Awaited<ReturnType<typeof startRealGateway>>;

/** An operator connection (read, write, admin) to a real Gateway, for starting runs and watching frames. */
export function operatorClient(gw: { url: string; token: string }, opts: { subscribeSessions?: boolean; version?: string } = {}) {
  return createGatewayClient({
    url: gw.url,
    token: async () => gw.token,
    log: createLogger({ level: "silent" }),
    version: opts.version ?? "test",
    scopes: ["operator.read", "operator.write", "operator.admin"],
    callTimeoutMs: 30_000,
    subscribeSessions: opts.subscribeSessions ?? false,
  });
}

export type Envelope = { id: string; type: string; timestamp: string; data: any };

/** What a receiver got, as envelopes, and a wait for deliveries matching a predicate. */
export function deliveriesTo(rx: { received: { body: string }[] }) {
  const envelopes = () => rx.received.map((r) => JSON.parse(r.body) as Envelope);
  /** Waits for at least `n` deliveries matching `pred`, then a little more for any duplicate. */
  async function deliveries(pred: (e: Envelope) => boolean, n = 1, ms = 30_000): Promise<Envelope[]> {
    const end = Date.now() + ms;
    while (envelopes().filter(pred).length < n) {
      if (Date.now() > end)
        throw new Error(
          `expected ${n} deliveries, got ${envelopes().filter(pred).length}; all types: ${envelopes()
            .map((e) => e.type)
            .join(", ")}`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 400));
    return envelopes().filter(pred);
  }
  return { envelopes, deliveries };
}
