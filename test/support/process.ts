import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./redis.js";
import WebSocket from "ws";
import { until } from "./until.js";

/**
 * The V8 flags the service runs with in production (the Dockerfile's CMD, `npm start`;
 * test/runtime-flags.test.ts holds them equal): a small young generation and a capped old one keep
 * its RSS under 150 MB under load (docs/performance.md). Near the cap the service refuses bodies
 * (503 overloaded, src/util/memory.ts) rather than reach V8's limit, which would abort it.
 */
export const SERVICE_NODE_FLAGS = ["--max-semi-space-size=2", "--max-old-space-size=128"];
/** And the environment it runs with (the Dockerfile's ENV, `npm start`): two malloc arenas, not one per thread. */
export const SERVICE_ENV = { MALLOC_ARENA_MAX: "2" };

export type ServiceProcess = {
  url: string;
  port: number;
  child: ChildProcess;
  output: () => string;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
  /** Only with `inspect: true`: evaluates an expression inside the service (Chrome DevTools protocol). */
  inspect: (method: string, params?: Record<string, unknown>) => Promise<any>;
};

/**
 * The service as its own process (`src/main.ts` through tsx, or a compiled entry) on a config written to a
 * temp file; resolves once it listens. `stop` sends the signal (SIGTERM by default) and waits.
 */
export async function startServiceProcess(
  config: Record<string, unknown>,
  opts: { port?: number; env?: Record<string, string>; inspect?: boolean; entry?: string } = {},
): Promise<ServiceProcess> {
  const dir = mkdtempSync(join(tmpdir(), "ocwh-proc-"));
  const file = join(dir, "config.json");
  writeFileSync(file, JSON.stringify({ server: { host: "127.0.0.1" }, ...config }));
  const port = opts.port ?? (await freePort());
  const env: NodeJS.ProcessEnv = { ...process.env, ...SERVICE_ENV, PORT: String(port), LOG_LEVEL: "warn", ...opts.env };
  for (const k of ["REDIS_URL", "OPENCLAW_GATEWAY_URL", "OPENCLAW_GATEWAY_TOKEN"]) if (!opts.env?.[k]) delete env[k];
  // `inspect`: the V8 inspector on a loopback port, so a test can force a GC and read the heap,
  // or look at Object.prototype, inside the service itself.
  const inspectPort = opts.inspect ? await freePort() : 0;
  // `entry`, else OCWH_SERVICE_ENTRY (test:reliability sets dist/main.js: the compiled build, as
  // the image runs it), else the source through tsx.
  const entry = opts.entry ?? process.env.OCWH_SERVICE_ENTRY;
  const main = entry ? [entry] : ["--import", "tsx", "src/main.ts"];
  const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, ...(opts.inspect ? [`--inspect=127.0.0.1:${inspectPort}`] : []), ...main, "--config", file], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d) => (out = (out + d).slice(-20_000)));
  child.stderr!.on("data", (d) => (out = (out + d).slice(-20_000)));
  const url = `http://127.0.0.1:${port}`;
  await until(async () => {
    if (child.exitCode !== null) throw new Error(`service exited (${child.exitCode}): ${out}`);
    return fetch(`${url}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
  }, 30_000);
  return {
    url,
    port,
    child,
    output: () => out,
    inspect: async (method, params = {}) => {
      if (!opts.inspect) throw new Error("startServiceProcess: pass { inspect: true }");
      const [target] = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
      const ws = new WebSocket(target!.webSocketDebuggerUrl);
      try {
        await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
        const answer = new Promise<any>((resolve, reject) =>
          ws.on("message", (d) => {
            const m = JSON.parse(String(d)) as { id?: number; result?: unknown; error?: { message: string } };
            if (m.id !== 1) return;
            if (m.error) reject(new Error(`${method}: ${m.error.message}`));
            else resolve(m.result);
          }),
        );
        ws.send(JSON.stringify({ id: 1, method, params }));
        return await answer;
      } finally {
        ws.close();
      }
    },
    stop: (signal = "SIGTERM") =>
      new Promise((resolve) => {
        // A child killed by a signal has exitCode null and signalCode set: both mean it is gone.
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        child.once("exit", (code) => resolve(code));
        child.kill(signal);
      }),
  };
}
