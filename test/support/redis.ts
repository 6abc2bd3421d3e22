import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";

export type TestRedis = {
  url: string;
  /** A fresh key prefix for one test, so tests sharing a server never see each other's keys. */
  prefix: () => string;
  /** Stops the server (fault tests); `start()` brings it back on the same port. */
  stop: () => Promise<void>;
  start: () => Promise<void>;
  /** Stops the server for good and removes its folder; call from `after`. */
  dispose: () => Promise<void>;
  /** True when this helper owns the process (false under REDIS_URL). */
  owned: boolean;
};

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * A throwaway `redis-server` on a free loopback port (no persistence; with `aof`, an append-only
 * file fsynced on every write, so even SIGKILL loses nothing acknowledged), or the server named by
 * REDIS_URL. It waits for "Ready to accept connections" before resolving.
 */
export async function startRedis(opts: { aof?: boolean; args?: string[] } = {}): Promise<TestRedis> {
  const prefix = () => `test-${randomUUID()}:`;
  if (process.env.REDIS_URL) {
    const noop = async () => {};
    return { url: process.env.REDIS_URL, prefix, stop: noop, start: noop, dispose: noop, owned: false };
  }
  const dir = mkdtempSync(join(tmpdir(), "ocwh-redis-"));
  let port = await freePort();
  let proc: ChildProcess | undefined;

  const launch = () =>
    new Promise<void>((resolve, reject) => {
      const p = spawn(
        "redis-server",
        [
          "--port",
          String(port),
          "--bind",
          "127.0.0.1",
          "--save",
          "",
          ...(opts.aof ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"]),
          "--dir",
          dir,
          ...(opts.args ?? []),
        ],
        {
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      proc = p;
      let out = "";
      const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 10_000);
      p.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve();
        }
      });
      p.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code}): ${out}`));
      });
      p.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });

  for (let tries = 0; ; tries++) {
    try {
      await launch();
      break;
    } catch (err) {
      if (tries >= 3 || !String(err).includes("Address already in use")) throw err;
      port = await freePort();
    }
  }
  const stop = async () => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.removeAllListeners("exit");
      p.once("exit", () => resolve());
      p.kill("SIGKILL");
    });
  };
  process.once("exit", () => proc?.kill("SIGKILL"));
  return {
    url: `redis://127.0.0.1:${port}`,
    prefix,
    stop,
    start: launch,
    dispose: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    owned: true,
  };
}
