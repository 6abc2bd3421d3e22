/**
 * `npm run bench:open-loop`: outgoing deliveries at fixed arrival rates (open loop). For each
 * receiver kind and rate, a load generator POSTs /v1/events at fixed times (the i-th send due at
 * i × 1000 / rate ms after the start, whether or not earlier ones were answered) to the service,
 * which runs compiled (src/main.js beside this file) as its own process on a throwaway
 * redis-server. The figure is receiver-side: from a publish's due time to the arrival of its
 * delivery's FIRST attempt at the receiver (matched by `webhook-id`), across processes on absolute
 * clocks. Events with no first attempt by the end of the drain count as infinitely late, so they
 * raise the percentiles instead of vanishing from them.
 *
 * Receivers (open-loop-children.ts, own process): healthy (204 at once), slow (204 after 100 ms),
 * failing (500). The endpoint retries once, 10 min later, so retries never reach a step: only
 * first attempts are measured. For the failing receiver the circuit breaker would stop first
 * attempts after 5 failures (or 1,000, its most), so this benchmark holds it closed: threshold
 * 1,000 and its failure count zeroed every 100 ms. Each step has its own service process and Redis
 * prefix (Redis is flushed in between), and a 2 s warm-up at up to 500/s that is not measured.
 *
 * A step keeps up when ≥ 95% of the events had their first attempt by the end of the step plus
 * the drain and the p99 is under BENCH_P99_LIMIT_MS; "saturates at" is the first rate that did not.
 * Writes bench/results/open-loop-<UTC date-time>.json and prints a table (open-loop-report.ts).
 *
 * Env: BENCH_RATES (100,500,1000,2000 events/s), BENCH_STEP_SECONDS (8), BENCH_RECEIVERS
 * (healthy,slow,failing), BENCH_DRAIN_SECONDS (3), BENCH_P99_LIMIT_MS (1000), BENCH_CONNECTIONS
 * (512: the generator's connections to the service), BENCH_WORKER_CONCURRENCY (200: both
 * webhooks.worker.concurrency and the endpoint's concurrency; 200 in flight carry 2,000/s at 100 ms).
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import os from "node:os";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { createKeys } from "../src/redis-keys.js";
import { startServiceProcess } from "../test/support/process.js";
import { startRedis } from "../test/support/redis.js";
import { until } from "../test/support/until.js";
import type { GeneratorResult, GeneratorStep, ReceiverKind } from "./open-loop-children.js";
import { pct, stepLine, stepNotes, writeResults, type StepResult } from "./open-loop-report.js";
import { snapshot, type Snapshot } from "./proc-stats.js";

const list = (v: string | undefined, d: string) => (v ?? d).split(",").map((s) => s.trim());
const rates = list(process.env.BENCH_RATES, "100,500,1000,2000")
  .map(Number)
  .sort((a, b) => a - b);
const kinds = list(process.env.BENCH_RECEIVERS, "healthy,slow,failing") as ReceiverKind[];
const stepSeconds = Number(process.env.BENCH_STEP_SECONDS ?? 8);
const drainMs = Number(process.env.BENCH_DRAIN_SECONDS ?? 3) * 1000;
const p99LimitMs = Number(process.env.BENCH_P99_LIMIT_MS ?? 1000);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 512);
const concurrency = Number(process.env.BENCH_WORKER_CONCURRENCY ?? 200);
/** Dispatch lag p99 beyond which the generator, not the service, is said to have missed the rate. */
const LAG_LIMIT_MS = 5;
// Each step's service is a fresh process: its code is compiled under the warm-up's load, not the step's.
const WARMUP = { maxRate: 500, seconds: 2 };
/**
 * The generator and the receiver run at a higher priority (nice -10, where allowed): on a shared
 * machine they would otherwise wait in the run queue behind the service and its neighbours and add
 * that wait to the latency they measure. The service and Redis keep the default priority.
 */
const INSTRUMENT_NICE = -10;
let reniced = true;
if (rates.some((r) => !(r > 0)) || kinds.some((k) => !["healthy", "slow", "failing"].includes(k)) || !(stepSeconds > 0))
  throw new Error("BENCH_RATES: positive numbers; BENCH_RECEIVERS: healthy, slow, failing; BENCH_STEP_SECONDS > 0");

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

// Every process started here is killed by its pid on the way out, error or not.
const children = new Set<ChildProcess>();
const kill = (c: ChildProcess) => {
  if (c.exitCode !== null || c.signalCode !== null || !c.pid) return;
  try {
    process.kill(c.pid, "SIGKILL");
  } catch {} // already gone
};
const killAll = () => children.forEach(kill);
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(130));

const childEntry = new URL("./open-loop-children.js", import.meta.url).pathname;
const mainEntry = new URL("../src/main.js", import.meta.url).pathname;

/** The next IPC message from a child, within `ms`. */
function nextMessage<T>(child: ChildProcess, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error, msg?: T) => {
      clearTimeout(timer);
      child.off("message", onMsg).off("exit", onExit);
      if (err) reject(err);
      else resolve(msg!);
    };
    const onMsg = (m: unknown) => done(undefined, m as T);
    const onExit = (code: number | null) => done(new Error(`${what} exited (${code})`));
    const timer = setTimeout(() => done(new Error(`${what}: no answer in ${ms} ms`)), ms);
    child.on("message", onMsg).once("exit", onExit);
  });
}

function forkChild(...args: string[]) {
  const child = fork(childEntry, args, { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  children.add(child);
  try {
    os.setPriority(child.pid!, INSTRUMENT_NICE);
  } catch {
    reniced = false; // not permitted (no CAP_SYS_NICE): said in the output
  }
  return child;
}

/** First attempts of one step's events, by index; `dupes` counts later requests for the same id. */
type Tracker = { prefix: string; first: Float64Array; count: number; dupes: number };
let tracker: Tracker | undefined;
const track = (idPrefix: string, n: number) => (tracker = { prefix: `dlv_${idPrefix}`, first: new Float64Array(n).fill(NaN), count: 0, dupes: 0 });

async function startReceiver(kind: ReceiverKind) {
  const child = forkChild("receiver", kind);
  const { port } = await nextMessage<{ port: number }>(child, 20_000, `receiver ${kind}`);
  child.on("message", (batch: [string, number][]) => {
    const t = tracker;
    if (!t) return;
    for (const [id, at] of batch) {
      if (!id.startsWith(t.prefix)) continue;
      const i = Number(id.slice(t.prefix.length, id.lastIndexOf("_")));
      if (!(i >= 0 && i < t.first.length)) continue;
      if (Number.isNaN(t.first[i]!)) {
        t.first[i] = at;
        t.count++;
      } else t.dupes++;
    }
  });
  return { child, port };
}

async function startService(kind: ReceiverKind, redisUrl: string, prefix: string, rxPort: number, token: string) {
  const config = {
    redis: { url: redisUrl, prefix },
    webhooks: {
      publishToken: token,
      allowPrivateCidrs: ["127.0.0.0/8"],
      worker: { concurrency },
      ...(kind === "failing" ? { circuitBreaker: { failureThreshold: 1_000 } } : {}),
      endpoints: [
        {
          name: "sink",
          url: `http://127.0.0.1:${rxPort}/hook`,
          secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
          events: ["bench.*"],
          concurrency,
          retry: { schedule: ["10m"] },
        },
      ],
    },
  };
  // The compiled build with the V8 flags it runs with in production (test/support/process.ts).
  const svc = await startServiceProcess(config, { entry: mainEntry });
  children.add(svc.child);
  await until(
    () =>
      fetch(`${svc.url}/readyz`).then(
        (r) => r.ok,
        () => false,
      ),
    30_000,
  );
  const stop = async () => {
    kill(svc.child);
    await Promise.race([svc.stop(), sleep(5_000)]);
    children.delete(svc.child);
  };
  return { url: svc.url, pid: svc.child.pid!, stop, output: svc.output };
}

/**
 * Between two snapshots, per process, as % of one core: the CPU it used (`cpu`) and the time its
 * threads were runnable but waited for a CPU (`wait`, the run-queue wait: starved, not idle).
 * `cpu.others` is the rest of the machine's busy time: other processes, and interrupts.
 */
function cpuShares(a: Snapshot, b: Snapshot, pids: Record<string, number>) {
  const s = (b.at - a.at) / 1000;
  const redis = [...b.procs.values()].find((p) => p.comm === "redis-server");
  const cpu: Record<string, number> = {};
  const wait: Record<string, number> = {};
  for (const [role, pid] of Object.entries({ ...pids, ...(redis ? { redis: redis.pid } : {}) })) {
    const p = a.procs.get(pid);
    const q = b.procs.get(pid);
    cpu[role] = p && q ? Math.round((q.cpuMs - p.cpuMs) / 10 / s) : NaN;
    wait[role] = p && q ? Math.round((q.waitMs - p.waitMs) / 10 / s) : NaN;
  }
  const total = b.machine.total - a.machine.total;
  const cores = total / (s * 100);
  const ours = Object.values(cpu).reduce((x, y) => x + (Number.isNaN(y) ? 0 : y), 0);
  cpu.others = Math.max(0, Math.round(((b.machine.busy - a.machine.busy) / Math.max(1, total)) * cores * 100 - ours));
  return { cpu, wait };
}

/**
 * Job counts at the end of a step, over every BullMQ queue under the prefix (found by their meta
 * keys, so this holds whether deliveries go through one queue or one per endpoint).
 */
async function backlog(redis: Redis, bullPrefix: string) {
  const names = new Set<string>();
  let cursor = "0";
  for (let rounds = 0; rounds < 1_000; rounds++) {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${bullPrefix}:*:meta`, "COUNT", 1_000);
    for (const k of keys) names.add(k.slice(bullPrefix.length + 1, -":meta".length));
    if ((cursor = next) === "0") break;
  }
  const out: Record<string, number> = {};
  for (const name of names) {
    const q = new Queue(name, { connection: redis, prefix: bullPrefix });
    for (const [state, n] of Object.entries(await q.getJobCounts("waiting", "active", "delayed", "prioritized", "completed", "failed")))
      out[state] = (out[state] ?? 0) + n;
    await q.close();
  }
  return out;
}

async function runStep(
  kind: ReceiverKind,
  rate: number,
  k: number,
  rx: { port: number; pid: number },
  gen: ChildProcess,
  redisUrl: string,
): Promise<StepResult> {
  const prefix = `open-loop-${k}:`;
  const token = randomUUID();
  const svc = await startService(kind, redisUrl, prefix, rx.port, token);
  const probe = new Redis(redisUrl);
  let breakerTimer: NodeJS.Timeout | undefined;
  try {
    const generate = (s: Omit<GeneratorStep, "url" | "token" | "connections" | "drainMs">) => {
      gen.send({ ...s, url: svc.url, token, connections, drainMs } satisfies GeneratorStep);
      return nextMessage<GeneratorResult>(gen, s.t0 - now() + s.seconds * 1000 + drainMs + 15_000, "generator");
    };
    const breaker = createKeys(prefix).endpoint.state("sink");
    if (kind === "failing") breakerTimer = setInterval(() => void probe.hset(breaker, "failures", 0).catch(() => {}), 100);

    // Warm-up (not measured): the service's code gets compiled before the clock runs.
    const warm = { rate: Math.min(rate, WARMUP.maxRate), seconds: WARMUP.seconds };
    const w = track(`w${k}-`, Math.round(warm.rate * warm.seconds));
    await generate({ ...warm, t0: now() + 50, idPrefix: `w${k}-` });
    await until(() => w.count >= w.first.length, 3_000).catch(() => {});
    const warmupDelivered = w.count / w.first.length;

    const n = Math.round(rate * stepSeconds);
    const gap = 1000 / rate;
    const t0 = now() + 200;
    const t = track(`s${k}-`, n);
    const cpu: Snapshot[] = [];
    const snaps = [sleep(t0 - now()).then(() => cpu.push(snapshot())), sleep(t0 + stepSeconds * 1000 - now()).then(() => cpu.push(snapshot()))];
    const g = await generate({ rate, seconds: stepSeconds, t0, idPrefix: `s${k}-` });
    const deadline = t0 + stepSeconds * 1000 + drainMs;
    await until(() => t.count >= g.accepted || now() >= deadline, drainMs + stepSeconds * 1000 + 5_000);
    await Promise.all(snaps);
    tracker = undefined;

    const lat = Array.from(t.first, (at, i) => (at <= deadline ? at - (t0 + i * gap) : Infinity)).sort((a, b) => a - b);
    const inTime = lat.filter(Number.isFinite).length;
    const inStep = Array.from(t.first).filter((at) => at <= t0 + stepSeconds * 1000).length;
    const arrived = Array.from(t.first)
      .filter((at) => at <= deadline)
      .sort((a, b) => a - b);
    // When first attempts reached the receiver, ms after the step's start: a backlog shows as a late first.
    const arrivalsMs = { first: arrived[0]! - t0, median: pct(arrived, 0.5) - t0, last: arrived.at(-1)! - t0 };
    const opens = Number((await probe.hget(breaker, "opens")) ?? 0);
    const jobsAtEnd = await backlog(probe, createKeys(prefix).bullPrefix);
    const p = { p50: pct(lat, 0.5), p95: pct(lat, 0.95), p99: pct(lat, 0.99) };
    const generatorKept = g.lagMs.p99 <= LAG_LIMIT_MS;
    const { cpu: cpuPercentOfCore, wait: runQueueWaitPercentOfCore } = cpuShares(cpu[0]!, cpu[1]!, {
      service: svc.pid,
      generator: gen.pid!,
      receiver: rx.pid,
      bench: process.pid,
    });
    return {
      receiver: kind,
      rate,
      sent: g.sent,
      accepted: g.accepted,
      rejected: g.rejected,
      deliveredPerS: inStep / stepSeconds,
      inTimeShare: inTime / n,
      latencyMs: p,
      publishMs: g.publishMs,
      generator: { lagMs: g.lagMs, kept: generatorKept, maxOutstanding: g.maxOutstanding, queuedForConnection: g.queuedForConnection },
      retriesSeen: t.dupes,
      breakerOpens: opens,
      jobsAtEnd,
      arrivalsMs,
      warmupDelivered,
      cpuPercentOfCore,
      runQueueWaitPercentOfCore,
      // CPU the service and Redis spent in the step per first attempt that arrived in it (µs).
      cpuUsPerAttempt: {
        service: Math.round((cpuPercentOfCore.service! * stepSeconds * 1e4) / Math.max(1, inStep)),
        redis: Math.round((cpuPercentOfCore.redis! * stepSeconds * 1e4) / Math.max(1, inStep)),
      },
      keptUp: inTime / n >= 0.95 && p.p99 < p99LimitMs,
    };
  } finally {
    clearInterval(breakerTimer);
    await svc.stop();
    probe.disconnect();
  }
}

async function main() {
  const started = new Date();
  const redis = await startRedis();
  const gen = forkChild("generator");
  await nextMessage(gen, 20_000, "generator");
  const steps: StepResult[] = [];
  const notes: string[] = [];
  const flush = new Redis(redis.url);
  try {
    let k = 0;
    for (const kind of kinds) {
      const rx = await startReceiver(kind);
      try {
        for (const rate of rates) {
          const s = await runStep(kind, rate, k++, { port: rx.port, pid: rx.child.pid! }, gen, redis.url);
          steps.push(s);
          console.log(stepLine(s));
          notes.push(...stepNotes(s, connections));
          if (redis.owned) await flush.flushall();
        }
      } finally {
        kill(rx.child);
      }
    }
  } finally {
    flush.disconnect();
    kill(gen);
    await redis.dispose();
  }

  const settings = {
    rates,
    receivers: kinds,
    stepSeconds,
    drainSeconds: drainMs / 1000,
    p99LimitMs,
    keptUpRule: `≥ 95% of events with a first attempt by the end of the step + drain, and p99 < ${p99LimitMs} ms`,
    generatorConnections: connections,
    workerConcurrency: concurrency,
    endpointConcurrency: concurrency,
    retry: "one retry 10 min later: retries never reach a step; only first attempts are measured",
    circuitBreaker: "default for healthy and slow; failing: threshold 1,000 and the failure count zeroed every 100 ms (held closed)",
    warmup: `${WARMUP.seconds} s at min(rate, ${WARMUP.maxRate})/s per step, not measured; the step starts when it is delivered or 3 s after`,
    instruments: reniced ? `generator and receiver at nice ${INSTRUMENT_NICE}` : "generator and receiver at the default priority (renice not permitted)",
    latency: "due time of the publish → arrival of the delivery's first attempt at the receiver; none by the end of the drain = ∞",
  };
  writeResults({ started, rates, kinds, settings, notes, steps });
}

await main();
process.exit(0);
