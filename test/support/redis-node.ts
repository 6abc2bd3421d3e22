import { spawn, type ChildProcess } from "node:child_process";
import { Redis } from "ioredis";
import { freePort } from "./redis.js";

/**
 * One `redis-server` process of a test topology (cluster node, Sentinel master or replica, or a
 * sentinel), started and stopped by PID. `launch` starts it (again) on the same port and the same
 * arguments, so a killed node comes back with its own data folder and config file.
 */
export type RedisNode = {
  readonly host: "127.0.0.1";
  readonly port: number;
  /** The PID of the running process; the last one after it was killed. */
  readonly pid: number;
  alive: () => boolean;
  launch: () => Promise<void>;
  /** SIGKILL by PID and wait for the exit (a no-op when not running). */
  kill: () => Promise<void>;
  /** The tail of its log (redis-server logs to stdout). */
  output: () => string;
};

/** Every node started in this process, so the `exit` hook below can kill what a crash left behind. */
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

/**
 * Starts `redis-server` with `args(port)` on a free loopback port and resolves when its log shows
 * `readyText` ("Ready to accept connections" for a server; a sentinel never prints that). A port
 * taken between `freePort()` and the bind is retried on a new port, as test/support/redis.ts does;
 * `ports` names how many ports the node needs (a cluster node needs its bus port too).
 */
export async function startRedisNode(opts: {
  args: (ports: number[]) => string[];
  cwd: string;
  ports?: number;
  readyText?: string;
  startTimeoutMs?: number;
}): Promise<RedisNode> {
  const readyText = opts.readyText ?? "Ready to accept connections";
  let ports: number[] = [];
  let proc: ChildProcess | undefined;
  let pid = 0;
  let out = "";

  const launch = () =>
    new Promise<void>((resolve, reject) => {
      if (proc && proc.exitCode === null && proc.signalCode === null) return reject(new Error(`redis-server :${ports[0]} is already running`));
      const p = spawn("redis-server", opts.args(ports), { cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
      proc = p;
      pid = p.pid ?? 0;
      running.add(p);
      p.once("exit", () => running.delete(p));
      let seen = "";
      const timer = setTimeout(() => {
        p.kill("SIGKILL");
        reject(new Error(`redis-server :${ports[0]} did not start in ${opts.startTimeoutMs ?? 10_000} ms: ${seen.slice(-2_000)}`));
      }, opts.startTimeoutMs ?? 10_000);
      const onData = (d: Buffer) => {
        seen += d.toString();
        out = (out + d.toString()).slice(-20_000);
        if (seen.includes(readyText)) {
          clearTimeout(timer);
          resolve();
        }
      };
      p.stdout!.on("data", onData);
      p.stderr!.on("data", onData);
      p.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`redis-server :${ports[0]} exited (${code ?? signal}): ${seen.slice(-2_000)}`));
      });
      p.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });

  for (let tries = 0; ; tries++) {
    ports = [];
    for (let i = 0; i < (opts.ports ?? 1); i++) ports.push(await freePort());
    try {
      await launch();
      break;
    } catch (err) {
      if (tries >= 3 || !String(err).includes("Address already in use")) throw err;
    }
  }

  const kill = async () => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once("exit", () => resolve());
      process.kill(p.pid!, "SIGKILL");
    });
  };
  return {
    host: "127.0.0.1",
    port: ports[0]!,
    get pid() {
      return pid;
    },
    alive: () => !!proc && proc.exitCode === null && proc.signalCode === null,
    launch,
    kill,
    output: () => out,
  };
}

/**
 * Sends one command on a short-lived connection (RESP2, no retries, bounded by `timeoutMs`), so
 * helpers can poll nodes that may be dead without a client reconnecting behind their back.
 */
export async function ask(port: number, args: (string | number)[], timeoutMs = 2_000): Promise<unknown> {
  const r = new Redis({
    host: "127.0.0.1",
    port,
    protocol: 2,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    disableClientInfo: true,
  });
  r.on("error", () => {});
  try {
    await r.connect();
    const [name, ...rest] = args;
    return await r.call(String(name), ...rest);
  } finally {
    r.disconnect();
  }
}

/** Like `ask`, but answers undefined when the node does not answer (dead, loading, timed out). */
export async function tryAsk(port: number, args: (string | number)[], timeoutMs = 1_000): Promise<unknown> {
  return ask(port, args, timeoutMs).catch(() => undefined);
}

/** `INFO <section>` as a map (`role`, `master_link_status`, `cluster_state`, …). */
export function parseInfo(text: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of String(text ?? "").split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i > 0 && !line.startsWith("#")) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** Polls `check` every `everyMs` until it returns a value; throws `what` with the last state after `ms`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, ms: number, everyMs = 100): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`${what}: not reached in ${ms} ms${last ? ` (last error: ${String(last)})` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
