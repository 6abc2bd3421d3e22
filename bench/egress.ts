/**
 * `npm run bench:egress`: outgoing deliveries against plain BullMQ, in the same run.
 *
 * - No-op baseline: N jobs added to a BullMQ queue (50 adds in flight) and drained by a Worker
 *   whose processor does nothing, at the same concurrency as the egress worker.
 * - Egress: N events published (50 publishes in flight) to one endpoint on a loopback receiver
 *   (its own process, answering 204). Each delivery is fetched from its endpoint's lane, reads the
 *   endpoint's breaker and the event, is signed with both schemes, POSTed over undici, and logged in Redis.
 * Rounds alternate (no-op, egress, …); each round gives a ratio and the median round ratio is the
 * figure, so slow drifts of a shared machine cancel out. Then a paced phase (BENCH_RATE events/s, below saturation) measures event-to-first-
 * attempt latency: from the publish call to the receiver getting the request.
 *
 * Env: BENCH_EVENTS (5000 per round), BENCH_INFLIGHT (50 publishes or adds at once), BENCH_ROUNDS (5), BENCH_RATE (500/s), BENCH_LATENCY_SECONDS (4),
 * BENCH_WORKER_CONCURRENCY (50: webhooks.worker.concurrency's default; both workers use it), BENCH_COMMANDSTATS (1: print Redis's
 * calls and µs per delivery by command for each round), BENCH_ONLY (egress: skip the baseline, for profiling).
 * Target (issue #18): deliveries/s ≥ 0.5 × the no-op rate; p99 event-to-first-attempt < 25 ms.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { configFrom } from "../src/config/load.js";
import { createEgress } from "../src/egress/engine.js";
import { createLogger } from "../src/log.js";
import { createSecretResolver } from "../src/secrets/resolve.js";
import { startRedis } from "../test/support/redis.js";
import { createRedisConnector, openEgressConnections } from "../src/redis.js";
import { createMiniHttpServer, webhookIdOf } from "./mini-http.js";

if (process.argv[2] === "receiver") {
  // Child: the loopback receiver (bench/mini-http.ts). It answers every request 204 and reports
  // (webhook-id, arrival time) in batches on stdout.
  let batch: [string, number][] = [];
  const server = createMiniHttpServer((head, sock) => {
    batch.push([webhookIdOf(head), performance.timeOrigin + performance.now()]);
    sock.write("HTTP/1.1 204 No Content\r\nconnection: keep-alive\r\n\r\n");
  });
  setInterval(() => {
    if (batch.length) process.stdout.write(`${JSON.stringify(batch)}\n`);
    batch = [];
    const cpu = process.cpuUsage();
    process.stdout.write(`${JSON.stringify({ cpuUs: cpu.user + cpu.system })}\n`);
  }, 20);
  server.listen(0, "127.0.0.1", () => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
} else {
  await main();
}

async function main() {
  const N = Number(process.env.BENCH_EVENTS ?? 5_000);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
  const rate = Number(process.env.BENCH_RATE ?? 500);
  const latencySeconds = Number(process.env.BENCH_LATENCY_SECONDS ?? 4);
  const INFLIGHT = Number(process.env.BENCH_INFLIGHT ?? 50);
  // The no-op worker runs at the egress worker's concurrency: the same BullMQ, doing nothing.
  const workerConcurrency = Number(process.env.BENCH_WORKER_CONCURRENCY ?? 50);
  const redis = await startRedis();

  const rx = spawn(process.execPath, [new URL(import.meta.url).pathname, "receiver"], { stdio: ["ignore", "pipe", "inherit"] });
  const arrivals = new Map<string, number>();
  let rxCpuUs = 0;
  const probe = new Redis(redis.url);
  /** CPU µs used so far by this process, Redis and the receiver. */
  const cpuNow = async () => {
    const info = await probe.info("cpu");
    const sec = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? 0);
    const own = process.cpuUsage();
    // System calls that read and write (sockets, mostly), from /proc: the round trips a delivery costs.
    const io = readFileSync("/proc/self/io", "utf8");
    const sys = (k: string) => Number(new RegExp(`${k}: (\\d+)`).exec(io)?.[1] ?? 0);
    return { node: own.user + own.system, redis: (sec("used_cpu_user") + sec("used_cpu_sys")) * 1e6, rx: rxCpuUs, syscalls: sys("syscr") + sys("syscw") };
  };
  let onArrival: (() => void) | undefined;
  const port = await new Promise<number>((resolve) => {
    let buf = "";
    rx.stdout!.on("data", (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (typeof msg.cpuUs === "number") rxCpuUs = msg.cpuUs;
        else if (!Array.isArray(msg)) resolve(msg.port);
        else for (const [id, at] of msg as [string, number][]) if (!arrivals.has(id)) arrivals.set(id, at);
        onArrival?.();
      }
    });
  });
  const now = () => performance.timeOrigin + performance.now();
  const waitFor = (cond: () => boolean) =>
    new Promise<void>((resolve) => {
      if (cond()) return resolve();
      onArrival = () => cond() && resolve();
    });
  async function pool(n: number, fn: (i: number) => Promise<unknown>) {
    let next = 0;
    await Promise.all(
      Array.from({ length: INFLIGHT }, async () => {
        while (next < n) await fn(next++);
      }),
    );
  }

  /** Redis's own accounting since the last RESETSTAT: calls and µs per unit, by command (commands inside scripts counted again). */
  async function printCommandStats(unit: string, n: number) {
    const stats = [...(await probe.info("commandstats")).matchAll(/cmdstat_([^:]+):calls=(\d+),usec=(\d+)/g)]
      .map(([, cmd, calls, usec]) => ({ cmd, calls: Number(calls) / n, usec: Number(usec) / n }))
      .filter((s) => s.calls >= 0.01 && s.cmd !== "info" && s.cmd !== "config")
      .sort((a, b) => b.usec - a.usec);
    console.log(`  Redis per ${unit}: ${stats.map((s) => `${s.cmd} ${s.calls.toFixed(2)}× ${s.usec.toFixed(1)} µs`).join(", ")}`);
  }

  /** Time this process's threads were runnable but waited for a CPU, in ms (Linux schedstat). */
  const runDelayMs = () => {
    let ns = 0;
    for (const tid of readdirSync("/proc/self/task")) ns += Number(readFileSync(`/proc/self/task/${tid}/schedstat`, "utf8").split(" ")[1] ?? 0);
    return ns / 1e6;
  };

  let noopCpu = "";
  async function noop(round: number): Promise<number> {
    const conn = new Redis(redis.url, { maxRetriesPerRequest: null });
    const prefix = `noop${round}`;
    const queue = new Queue("noop", { connection: conn, prefix });
    let done = 0;
    let resolveDone!: () => void;
    const finished = new Promise<void>((r) => (resolveDone = r));
    const worker = new Worker("noop", async () => {}, {
      connection: new Redis(redis.url, { maxRetriesPerRequest: null }),
      prefix,
      concurrency: workerConcurrency,
    });
    worker.on("completed", () => ++done === N && resolveDone());
    await worker.waitUntilReady();
    if (process.env.BENCH_COMMANDSTATS) await probe.config("RESETSTAT");
    const cpu0 = await cpuNow();
    const t0 = now();
    await pool(N, (i) => queue.add("job", { i }, { removeOnComplete: { age: 3_600, count: 10_000 } }));
    await finished;
    const perS = N / ((now() - t0) / 1000);
    const cpu1 = await cpuNow();
    if (process.env.BENCH_COMMANDSTATS) await printCommandStats("no-op job", N);
    noopCpu = `CPU µs per job: service ${((cpu1.node - cpu0.node) / N).toFixed(0)}, Redis ${((cpu1.redis - cpu0.redis) / N).toFixed(0)}; syscalls ${((cpu1.syscalls - cpu0.syscalls) / N).toFixed(1)}`;
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
    conn.disconnect();
    return perS;
  }

  const log = createLogger({ level: "silent" });
  async function egressRun(round: number, paced?: { rate: number; seconds: number }) {
    const config = configFrom({
      redis: { url: redis.url, prefix: `bench${round}:` },
      webhooks: {
        allowPrivateCidrs: ["127.0.0.0/8"],
        worker: { concurrency: workerConcurrency },
        endpoints: [
          { name: "sink", url: `http://127.0.0.1:${port}/hook`, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", events: ["*"], concurrency: 1_000 },
        ],
      },
    });
    const secrets = createSecretResolver({ providers: {} });
    const egress = await createEgress({
      config,
      secrets,
      log,
      connections: await openEgressConnections((await createRedisConnector(config.redis, secrets))!),
    });
    await egress.startWorker();
    const sent = new Map<string, number>();
    arrivals.clear();
    const publishMs: number[] = [];
    const publish = async (i: number) => {
      const t = now();
      const out = await egress.publish({ type: "order.created", data: { i, total: 42.5, items: ["a", "b"] } });
      publishMs.push(now() - t);
      sent.set(out.deliveries[0]!, t);
    };
    if (process.env.BENCH_COMMANDSTATS) await probe.config("RESETSTAT");
    const cpu0 = await cpuNow();
    const elu0 = performance.eventLoopUtilization();
    const wait0 = runDelayMs();
    const t0 = now();
    let n = N;
    if (paced) {
      n = paced.rate * paced.seconds;
      const gap = 1000 / paced.rate;
      const pending: Promise<void>[] = [];
      for (let i = 0; i < n; i++) {
        const due = t0 + i * gap;
        const wait = due - now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        pending.push(publish(i));
      }
      await Promise.all(pending);
    } else {
      await pool(N, publish);
    }
    const publishedAt = now();
    await waitFor(() => arrivals.size >= n);
    const perS = n / ((Math.max(...arrivals.values()) - t0) / 1000);
    await new Promise((r) => setTimeout(r, 50)); // the receiver's next CPU report
    const cpu1 = await cpuNow();
    const perDelivery = (k: "node" | "redis" | "rx" | "syscalls") => (cpu1[k] - cpu0[k]) / n;
    if (process.env.BENCH_COMMANDSTATS && !paced) await printCommandStats("delivery", n);
    if (process.env.BENCH_DEBUG && !paced) {
      const secs = (now() - t0) / 1000;
      console.log(
        `  event loop busy ${(100 * performance.eventLoopUtilization(elu0).utilization).toFixed(0)}%, waiting for a CPU ${((runDelayMs() - wait0) / secs / 10).toFixed(0)}% of the time; publishing took ${(publishedAt - t0).toFixed(0)} of ${(secs * 1000).toFixed(0)} ms`,
      );
    }
    const lat = [...sent].map(([id, t]) => arrivals.get(id)! - t).sort((a, b) => a - b);
    publishMs.sort((a, b) => a - b);
    if (process.env.BENCH_DEBUG)
      console.log(
        `publish() p50 ${publishMs[Math.floor(n / 2)]!.toFixed(1)} ms p99 ${publishMs[Math.floor(n * 0.99)]!.toFixed(1)} ms; first-attempt worst ${lat
          .slice(-10)
          .map((x) => x.toFixed(0))
          .join(",")}`,
      );
    await egress.close();
    return {
      perS,
      p50: lat[Math.floor(lat.length * 0.5)]!,
      p99: lat[Math.floor(lat.length * 0.99)]!,
      cpu: `CPU µs per delivery: service ${perDelivery("node").toFixed(0)}, Redis ${perDelivery("redis").toFixed(0)}, receiver ${perDelivery("rx").toFixed(0)}; service syscalls ${perDelivery("syscalls").toFixed(1)}`,
    };
  }

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  if (process.env.BENCH_ONLY !== "egress") await noop(-1); // warm-up
  await egressRun(-1);
  const noops: number[] = [];
  const egs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // BENCH_ONLY=egress skips the baseline (for profiling the egress alone).
    noops.push(process.env.BENCH_ONLY === "egress" ? NaN : await noop(r));
    const run = await egressRun(r);
    egs.push(run.perS);
    console.log(`round ${r + 1}: no-op ${noops.at(-1)!.toFixed(0)} jobs/s (${noopCpu}); egress ${run.perS.toFixed(0)} deliveries/s (${run.cpu})`);
  }
  // Latency: three paced rounds; each prints its figures and the median round is the headline.
  const pacedRuns = [];
  for (let r = 0; r < 3; r++) pacedRuns.push(await egressRun(100 + r, { rate, seconds: latencySeconds }));
  const paced = { p50: median(pacedRuns.map((p) => p.p50)), p99: median(pacedRuns.map((p) => p.p99)) };
  const perRound = pacedRuns.map((p) => `${p.p50.toFixed(1)}/${p.p99.toFixed(1)}`).join(", ");
  if (rounds === 0) {
    console.log(`latency @ ${rate}/s  event → first attempt p50 ${paced.p50.toFixed(1)} ms, p99 ${paced.p99.toFixed(1)} ms (rounds p50/p99: ${perRound})`);
    process.exit(0);
  }
  const ratio = median(egs.map((e, i) => e / noops[i]!));
  console.log(`\nno-op BullMQ     ${median(noops).toFixed(0)} jobs/s (median of ${rounds})`);
  console.log(`egress           ${median(egs).toFixed(0)} deliveries/s (median of ${rounds})`);
  console.log(
    `ratio            ${ratio.toFixed(2)}   (median of the ${rounds} round ratios ${egs.map((e, i) => (e / noops[i]!).toFixed(2)).join(", ")}; target ≥ 0.5)`,
  );
  console.log(
    `latency @ ${rate}/s  event → first attempt p50 ${paced.p50.toFixed(1)} ms, p99 ${paced.p99.toFixed(1)} ms   (median of 3 rounds, p50/p99: ${perRound}; target p99 < 25 ms)`,
  );
  rx.kill();
  probe.disconnect();
  await redis.dispose();
  process.exit(0);
}
