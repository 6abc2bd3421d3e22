import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./redis.js";
import { until } from "./until.js";

export type ServiceProcess = { url: string; port: number; child: ChildProcess; output: () => string; stop: (signal?: NodeJS.Signals) => Promise<number | null> };

/**
 * The service as its own process (`src/main.ts`, as `npm start` runs it) on a config written to a
 * temp file; resolves once it listens. `stop` sends the signal (SIGTERM by default) and waits.
 */
export async function startServiceProcess(config: Record<string, unknown>, opts: { port?: number; env?: Record<string, string> } = {}): Promise<ServiceProcess> {
  const dir = mkdtempSync(join(tmpdir(), "ocwh-proc-"));
  const file = join(dir, "config.json");
  writeFileSync(file, JSON.stringify({ server: { host: "127.0.0.1" }, ...config }));
  const port = opts.port ?? (await freePort());
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), LOG_LEVEL: "warn", ...opts.env };
  for (const k of ["REDIS_URL", "OPENCLAW_GATEWAY_URL", "OPENCLAW_GATEWAY_TOKEN"]) if (!opts.env?.[k]) delete env[k];
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "--config", file], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d) => (out = (out + d).slice(-20_000)));
  child.stderr!.on("data", (d) => (out = (out + d).slice(-20_000)));
  const url = `http://127.0.0.1:${port}`;
  await until(async () => {
    if (child.exitCode !== null) throw new Error(`service exited (${child.exitCode}): ${out}`);
    return fetch(`${url}/healthz`).then((r) => r.ok, () => false);
  }, 30_000);
  return {
    url,
    port,
    child,
    output: () => out,
    stop: (signal = "SIGTERM") =>
      new Promise((resolve) => {
        // A child killed by a signal has exitCode null and signalCode set: both mean it is gone.
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        child.once("exit", (code) => resolve(code));
        child.kill(signal);
      }),
  };
}
