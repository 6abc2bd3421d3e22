/**
 * Child-process entry for the ingress benchmark, so the load generator, the fake Gateway and the
 * server under test each have their own event loop. Modes:
 *   hello                    bare Hono hello-world on @hono/node-server
 *   burn <µs>                the same hello-world, busy for <µs> of CPU time per request (the control)
 *   gateway <token>          the fake protocol-v4 Gateway (test/support/fake-gateway.ts)
 *   service <redis> <gwUrl>  the real service: Redis limits (budget raised), auth, body, zod, Gateway client
 * Each prints one JSON line `{ "url": … }` when ready.
 */
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks";
import { startFakeGateway } from "../test/support/fake-gateway.js";
import { startService } from "../test/support/service.js";

const [mode, a, b] = process.argv.slice(2);
// BENCH_HEAP_PROFILE=<mode> samples every allocation of that process, collected or not, and writes
// .tmp/<mode>.heapprofile on exit: where the garbage that the scavenger pays for comes from.
let heapSession: Session | undefined;
if (process.env.BENCH_HEAP_PROFILE === mode) {
  heapSession = new Session();
  heapSession.connect();
  await heapSession.post("HeapProfiler.startSampling", {
    samplingInterval: Number(process.env.BENCH_HEAP_INTERVAL ?? 1024),
    includeObjectsCollectedByMajorGC: !process.env.BENCH_HEAP_LIVE,
    includeObjectsCollectedByMinorGC: !process.env.BENCH_HEAP_LIVE && !process.env.BENCH_HEAP_PROMOTED,
  });
}
async function writeHeapProfile() {
  if (!heapSession) return;
  const { profile } = await heapSession.post("HeapProfiler.stopSampling");
  writeFileSync(`.tmp/${mode}.heapprofile`, JSON.stringify(profile));
}
const ready = (url: string) => process.stdout.write(`${JSON.stringify({ url })}\n`);
// SIGUSR2 prints this process's CPU time so far: the benchmark turns it into CPU µs per request,
// a figure far steadier than req/s on a shared machine.
// With BENCH_DEBUG it also prints, to stderr, the event loop's delay and the time spent in GC
// since the last signal: where a latency tail comes from.
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
let gcMs = 0,
  gcCount = 0,
  gcMax = 0;
let gcByKind: Record<string, number[]> = {};
if (process.env.BENCH_DEBUG) {
  loopDelay.enable();
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcMs += e.duration;
      gcCount++;
      gcMax = Math.max(gcMax, e.duration);
      const k = String((e as unknown as { detail: { kind: number } }).detail.kind);
      (gcByKind[k] ??= [0, 0])[0]!++;
      gcByKind[k]![1]! += e.duration;
    }
  }).observe({ entryTypes: ["gc"] });
}
process.on("SIGUSR2", () => {
  const u = process.cpuUsage();
  process.stdout.write(`${JSON.stringify({ cpuUs: u.user + u.system })}\n`);
  if (process.env.BENCH_DEBUG) {
    const ms = (ns: number) => (ns / 1e6).toFixed(1);
    process.stderr.write(
      `[${mode}] loop delay p50 ${ms(loopDelay.percentile(50))} p99 ${ms(loopDelay.percentile(99))} max ${ms(loopDelay.max)} ms; gc ${gcCount}× ${gcMs.toFixed(0)} ms (max ${gcMax.toFixed(1)}) by kind ${JSON.stringify(gcByKind)} heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MB\n`,
    );
    loopDelay.reset();
    gcMs = gcCount = gcMax = 0;
    gcByKind = {};
  }
});

if (mode === "hello") {
  const app = new Hono();
  app.get("/", (c) => c.text("Hello Hono!"));
  const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, (info) => ready(`http://127.0.0.1:${info.port}`));
  process.on("SIGTERM", () => server.close(() => process.exit(0)));
} else if (mode === "burn") {
  // The control: a server that costs what the ingress costs per request in CPU, with none of its
  // I/O, awaits or garbage. What its latency tail is at 64 connections, the ingress's cannot beat
  // without spending less CPU per request.
  // Busy for CPU time, not wall time: a fixed amount of arithmetic per request, calibrated against
  // this thread's CPU clock over 300 ms at startup (the clock itself ticks too coarsely to time one
  // request, and a wall-clock spin would count time the process spent preempted).
  const busyUs = Number(a);
  let sink = 0;
  const spin = (n: number) => {
    let x = sink;
    for (let i = 0; i < n; i++) x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
    sink = x;
  };
  const cpuUs = () => {
    const u = process.threadCpuUsage();
    return u.user + u.system;
  };
  spin(1e6); // compiled before it is timed
  const c0 = cpuUs();
  let spins = 0;
  while (cpuUs() - c0 < 300_000) {
    spin(1e5);
    spins += 1e5;
  }
  let perUs = spins / (cpuUs() - c0);
  const app = new Hono();
  app.get("/", (c) => {
    spin(Math.round(busyUs * perUs));
    return c.text("Hello Hono!");
  });
  // The same arithmetic runs slower when the other core is busy (they may be one physical core's
  // two threads), so the benchmark measures the control under load and scales it here.
  app.post("/scale", (c) => {
    perUs *= Number(c.req.query("by"));
    return c.text(String(perUs));
  });
  const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, (info) => ready(`http://127.0.0.1:${info.port}`));
  process.on("SIGTERM", () => server.close(() => process.exit(0)));
} else if (mode === "gateway") {
  // The fake Gateway keeps fewer flows than its default 10,000 and no record of the frames it got:
  // at 10,000 flows a second, what it keeps would survive its young generation and cost this
  // stand-in GC pauses that show up as the service's latency. The real Gateway keeps its flows in
  // SQLite.
  const gw = await startFakeGateway({ token: a!, maxFlows: 1_000, recordFrames: false });
  ready(gw.url);
  process.on(
    "SIGTERM",
    () =>
      void gw
        .stop()
        .then(writeHeapProfile)
        .then(() => process.exit(0)),
  );
} else if (mode === "service") {
  const svc = await startService({
    ...(process.env.BENCH_MEMORY_LIMITS ? {} : { redis: { url: a!, prefix: "bench:" } }),
    gateway: process.env.BENCH_EMBEDDED ? { mode: "embedded" } : { url: b!, token: process.env.BENCH_GW_TOKEN! },
    limits: { rateLimit: { windowMs: 60_000, maxRequests: 100_000_000 }, maxInFlight: 1_000 },
    routes: { bench: { path: "/hooks/bench", sessionKey: "agent:main:bench", secret: process.env.BENCH_ROUTE_SECRET! } },
  });
  ready(svc.url);
  if (process.env.BENCH_DEBUG) {
    // The service's own view of request latency (its histogram, from the request's first
    // middleware to its last): against the load generator's, it tells time spent inside the
    // service from time spent queued in sockets and in other processes.
    let last = new Map<number, number>();
    process.on("SIGUSR2", async () => {
      const metric = (await svc.deps.metrics.ingressDuration.get()).values.filter((v) => v.metricName?.endsWith("_bucket"));
      const now = new Map(metric.map((v) => [Number(String((v.labels as Record<string, unknown>).le).replace("+Inf", "Infinity")), v.value]));
      const total = (now.get(Infinity) ?? 0) - (last.get(Infinity) ?? 0);
      const share = [...now].map(([le, n]) => `≤${le * 1000}ms ${((100 * (n - (last.get(le) ?? 0))) / Math.max(1, total)).toFixed(1)}%`);
      process.stderr.write(`[service] in-service latency: ${share.slice(0, 7).join(", ")}\n`);
      last = now;
    });
  }
  process.on(
    "SIGTERM",
    () =>
      void svc
        .close()
        .then(writeHeapProfile)
        .then(() => process.exit(0)),
  );
} else {
  throw new Error(`unknown mode ${mode}`);
}
