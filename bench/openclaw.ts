/**
 * `npm run bench:openclaw`: against the real OpenClaw 2026.9.6 Gateway, in two parts.
 *
 * `flows`: create_flow directly through the bundled webhooks plugin's route and through this
 * service (bridge plugin, WebSocket), alternating targets; prints req/s, p50 and p99 for both and
 * their ratio. Target (issue #3): service ≥ 0.9 × the plugin's throughput, adding < 2 ms at p50.
 *
 * The bundled plugin's limits cannot be configured: 120 requests / 60 s per path + client IP, and
 * at most 8 requests in flight on its path (measured: 16 concurrent connections, even from 16
 * source addresses, get 429s). So every request carries its own X-Forwarded-For client (the
 * Gateway trusts 127.0.0.0/8 here) and the load stays under 8 connections. The service gets the
 * same traffic with its budget raised.
 *
 * `events` (bench/openclaw-events.ts): real agent turns on the stub model; the latency from the
 * Gateway's session.message frame to the webhook at the receiver, p50 and p99 per type. Target
 * (issue #14): p99 < 50 ms, and every frame delivered (else the exit code is 1). Each part starts
 * its own Gateway.
 *
 * Env: BENCH_PARTS (flows,events).
 * flows: BENCH_CONNECTIONS (6), BENCH_SECONDS (8), BENCH_ROUNDS (3), BENCH_WARMUP_SECONDS (3).
 * events: BENCH_TURNS (200), BENCH_TURN_CONCURRENCY (4), BENCH_WARMUP_TURNS (3),
 * BENCH_EVENT_DEADLINE_MS (10000), BENCH_ALL_EVENTS (0; 1 subscribes the endpoint to `*`),
 * BENCH_EVENT_CONTROL (1; 0 skips the idle control after the turns).
 */
import { Pool } from "undici";
import { startService, type TestService } from "../test/support/service.js";
import { startRealGateway } from "../test/openclaw/real-gateway.js";
import { runEventLatency } from "./openclaw-events.js";

const parts = new Set(
  (process.env.BENCH_PARTS ?? "flows,events")
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean),
);
for (const p of parts) if (p !== "flows" && p !== "events") throw new Error(`BENCH_PARTS: unknown part ${p} (flows, events)`);

const connections = Number(process.env.BENCH_CONNECTIONS ?? 6);
const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const warmup = Number(process.env.BENCH_WARMUP_SECONDS ?? 3);
const SECRET = "bench-secret-0123456789abcdef";
const SESSION = { builtin: "agent:main:bench-builtin", service: "agent:main:bench-service" };
const body = JSON.stringify({ action: "create_flow", goal: "Review inbound queue", notifyPolicy: "silent" });

type Run = { rps: number; p50: number; p99: number; bad: number };

/** Closed-loop load: `connections` workers on keep-alive connections, for `durationS` seconds. */
async function load(origin: string, path: string, durationS: number): Promise<Run> {
  const pool = new Pool(origin, { connections });
  const latencies: number[] = [];
  let bad = 0;
  let n = 0;
  const statuses = new Map<number, number>();
  const until = performance.now() + durationS * 1000;
  const worker = async () => {
    while (performance.now() < until) {
      n++;
      const xff = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
      const t0 = performance.now();
      const res = await pool.request({
        path,
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${SECRET}`, "x-forwarded-for": xff },
        body,
      });
      await res.body.dump();
      latencies.push(performance.now() - t0);
      if (res.statusCode !== 200) {
        bad++;
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: connections }, () => worker()));
  const elapsed = (performance.now() - started) / 1000;
  await pool.close();
  if (statuses.size) console.log(`  ${origin}${path}: non-200 answers ${JSON.stringify(Object.fromEntries(statuses))}`);
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return { rps: latencies.length / elapsed, p50: q(0.5), p99: q(0.99), bad };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The flows part: prints its table. */
async function runFlows() {
  const gw = await startRealGateway({
    trustedProxies: ["127.0.0.0/8"],
    routes: { bench: { path: "/plugins/webhooks/bench", sessionKey: SESSION.builtin, secret: SECRET } },
  });
  let svc: TestService | undefined;
  try {
    svc = await startService({
      gateway: { url: gw.url, token: gw.token },
      limits: { rateLimit: { windowMs: 60_000, maxRequests: 100_000_000 }, maxInFlight: 10_000 },
      routes: { bench: { path: "/hooks/bench", sessionKey: SESSION.service, secret: SECRET } },
    });
    const svcUrl = svc.url;
    const targets = {
      builtin: () => load(gw.http, "/plugins/webhooks/bench", seconds),
      service: () => load(svcUrl, "/hooks/bench", seconds),
    };
    await load(gw.http, "/plugins/webhooks/bench", warmup);
    await load(svcUrl, "/hooks/bench", warmup);
    const runs: Record<"builtin" | "service", Run[]> = { builtin: [], service: [] };
    for (let i = 0; i < rounds; i++) {
      runs.builtin.push(await targets.builtin());
      runs.service.push(await targets.service());
    }
    const s = (rs: Run[]) => ({
      rps: median(rs.map((r) => r.rps)),
      p50: median(rs.map((r) => r.p50)),
      p99: median(rs.map((r) => r.p99)),
      bad: rs.reduce((n, r) => n + r.bad, 0),
    });
    const b = s(runs.builtin);
    const v = s(runs.service);
    const row = (name: string, x: ReturnType<typeof s>) =>
      `${name.padEnd(34)} ${x.rps.toFixed(0).padStart(7)} ${x.p50.toFixed(2).padStart(8)} ${x.p99.toFixed(2).padStart(8)} ${String(x.bad).padStart(8)}`;
    console.log(`\nopenclaw benchmark: create_flow, ${connections} connections, ${rounds} × ${seconds} s per target (medians), node ${process.version}`);
    console.log(`${"target".padEnd(34)} ${"req/s".padStart(7)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)} ${"non-200".padStart(8)}`);
    console.log(row("bundled plugin (in the Gateway)", b));
    console.log(row("openclaw-webhooks → bridge", v));
    console.log(`ratio service/plugin: ${(v.rps / b.rps).toFixed(3)} (target ≥ 0.9)   added p50: ${(v.p50 - b.p50).toFixed(2)} ms (target < 2 ms)`);
    console.log(
      `per-run req/s  plugin: ${runs.builtin.map((r) => r.rps.toFixed(0)).join(", ")}   service: ${runs.service.map((r) => r.rps.toFixed(0)).join(", ")}`,
    );
  } finally {
    await svc?.close();
    await gw.dispose();
  }
}

if (parts.has("flows")) await runFlows();
if (parts.has("events")) {
  const events = await runEventLatency({
    turns: Number(process.env.BENCH_TURNS ?? 200),
    concurrency: Number(process.env.BENCH_TURN_CONCURRENCY ?? 4),
    warmup: Number(process.env.BENCH_WARMUP_TURNS ?? 3),
    deadlineMs: Number(process.env.BENCH_EVENT_DEADLINE_MS ?? 10_000),
    allEvents: process.env.BENCH_ALL_EVENTS === "1",
    control: process.env.BENCH_EVENT_CONTROL !== "0",
  });
  if (!events.ok) process.exitCode = 1;
}
