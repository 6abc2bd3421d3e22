/**
 * `npm run bench:ingress`: create_flow through the full pipeline (Redis limits with the budget
 * raised, shared-secret auth, body read, zod, the Gateway client over WebSocket to a fake Gateway)
 * against a bare Hono hello-world, in the same run, on the same machine. Each target runs in its
 * own process; runs alternate (hello, ingress, hello, ingress, …) and the medians are compared, so
 * the figure is a ratio that survives a noisy shared machine.
 *
 * Env: BENCH_CONNECTIONS (64), BENCH_SECONDS (8 per run), BENCH_ROUNDS (3), BENCH_WARMUP_SECONDS (2);
 * BENCH_EMBEDDED=1 / BENCH_MEMORY_LIMITS=1 take the Gateway / Redis out, to see what each costs;
 * BENCH_NODE_FLAGS adds Node flags to the measured processes.
 * After the rounds, a control (BENCH_CONTROL=0 skips it): the hello-world made busy per request for
 * the CPU the ingress costs beyond it, measured the same way. It has the ingress's CPU per request
 * and none of its work, so its p99 at 64 connections is what this machine gives that CPU budget.
 * Target (issue #2): ingress ≥ 0.25 × hello-world req/s, ingress p99 < 10 ms at 64 connections.
 */
import autocannon from "autocannon";
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { Redis } from "ioredis";
import { startRedis } from "../test/support/redis.js";

const connections = Number(process.env.BENCH_CONNECTIONS ?? 64);
const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const warmup = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
const token = randomUUID();
const secret = randomUUID();

const children: ChildProcess[] = [];
const cpuReaders = new Map<string, () => Promise<number>>();
const pids = new Map<string, number>();
/** Read and write system calls and context switches of a process so far (Linux /proc; zeros elsewhere). */
function sysCounts(pid: number): { sys: number; ctx: number; kernelUs: number } {
  try {
    // utime and stime (fields 14 and 15, in clock ticks of 10 ms): the kernel's share of the CPU.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const kernelUs = Number(fields[12]) * 10_000;
    const io = readFileSync(`/proc/${pid}/io`, "utf8");
    const st = readFileSync(`/proc/${pid}/status`, "utf8");
    const n = (text: string, k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? 0);
    return { sys: n(io, "syscr") + n(io, "syscw"), ctx: n(st, "voluntary_ctxt_switches") + n(st, "nonvoluntary_ctxt_switches"), kernelUs };
  } catch {
    return { sys: 0, ctx: 0, kernelUs: 0 };
  }
}
function child(...args: string[]): Promise<string> {
  // BENCH_PROFILE=service (or gateway, hello) writes a CPU profile of that process into .tmp/ (for finding hot spots).
  const prof = process.env.BENCH_PROFILE && args[0] === process.env.BENCH_PROFILE ? ["--cpu-prof", "--cpu-prof-dir=.tmp"] : [];
  // Children run the compiled JavaScript beside this file (npm run bench:ingress builds it), as
  // production runs dist/: no transpiler in the measured process.
  const entry = [new URL("./servers.js", import.meta.url).pathname];
  const flags = (process.env.BENCH_NODE_FLAGS ?? "").split(" ").filter(Boolean);
  const p = spawn(process.execPath, [...flags, ...prof, ...entry, ...args], {
    env: { ...process.env, BENCH_GW_TOKEN: token, BENCH_ROUTE_SECRET: secret, LOG_LEVEL: "silent" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(p);
  return new Promise((resolve, reject) => {
    let out = "";
    const t = setTimeout(() => reject(new Error(`${args[0]} did not start`)), 20_000);
    p.stdout!.on("data", (d) => {
      out += d;
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line) {
        clearTimeout(t);
        p.stdout!.removeAllListeners("data");
        let buf = "";
        const waiters: ((us: number) => void)[] = [];
        p.stdout!.on("data", (d) => {
          buf += d;
          let nl;
          while ((nl = buf.indexOf("\n")) >= 0) {
            const text = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            // Other lines (Node's --trace-gc, say, through BENCH_NODE_FLAGS) go to stderr with BENCH_DEBUG.
            if (!text.startsWith("{")) {
              if (process.env.BENCH_DEBUG) process.stderr.write(`[${args[0]}] ${text}\n`);
              continue;
            }
            const msg = JSON.parse(text);
            if (typeof msg.cpuUs === "number") waiters.shift()?.(msg.cpuUs);
          }
        });
        const url = JSON.parse(line).url;
        pids.set(url, p.pid!);
        cpuReaders.set(
          url,
          () =>
            new Promise((r) => {
              waiters.push(r);
              p.kill("SIGUSR2");
            }),
        );
        resolve(url);
      }
    });
    p.once("exit", (code) => reject(new Error(`${args[0]} exited ${code}`)));
  });
}

type Run = {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  cpuUsPerReq: number;
  others: Record<string, number>;
  /** Per process: read/write system calls and context switches per request. */
  sys: Record<string, { sys: number; ctx: number; kernelUs: number }>;
  /** Commands the service sent Redis per request: what per-turn batching saves. */
  redisCmdsPerReq: number;
};
/**
 * One autocannon run; `server` is the measured process's URL, for its CPU time per request. The
 * other processes' CPU per request (load generator, fake Gateway, Redis) is kept too: on a
 * 2-core machine they share the cores with the server, so they bound its req/s as well.
 */
async function load(opts: autocannon.Options, duration: number, server: string): Promise<Run> {
  const cpu = cpuReaders.get(server)!;
  const others = {
    loadgen: async () => {
      const u = process.cpuUsage();
      return u.user + u.system;
    },
    gateway: cpuReaders.get(gwUrl)!,
    redis: redisCpuUs,
  };
  const procs = { server: pids.get(server)!, loadgen: process.pid, gateway: pids.get(gwUrl)!, redis: redisPid };
  const sysBefore = Object.values(procs).map(sysCounts);
  const before = await cpu();
  const cmdsBefore = await redisCommands();
  const othersBefore = await Promise.all(Object.values(others).map((f) => f()));
  const r = await autocannon({ connections, duration, ...opts });
  if (process.env.BENCH_DEBUG)
    console.error(
      `[loadgen] ${r.requests.average.toFixed(0)} req/s latency p50 ${r.latency.p50} p90 ${r.latency.p90} p97.5 ${r.latency.p97_5} p99 ${r.latency.p99} max ${r.latency.max} ms`,
    );
  const used = (await cpu()) - before;
  const sysAfter = Object.values(procs).map(sysCounts);
  const othersAfter = await Promise.all(Object.values(others).map((f) => f()));
  const total = Math.max(1, r.requests.total);
  const redisCmdsPerReq = ((await redisCommands()) - cmdsBefore) / total;
  return {
    redisCmdsPerReq,
    sys: Object.fromEntries(
      Object.keys(procs).map((k, i) => [
        k,
        {
          sys: (sysAfter[i]!.sys - sysBefore[i]!.sys) / total,
          ctx: (sysAfter[i]!.ctx - sysBefore[i]!.ctx) / total,
          kernelUs: (sysAfter[i]!.kernelUs - sysBefore[i]!.kernelUs) / total,
        },
      ]),
    ),
    others: Object.fromEntries(Object.keys(others).map((k, i) => [k, (othersAfter[i]! - othersBefore[i]!) / total])),
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    cpuUsPerReq: used / Math.max(1, r.requests.total),
  };
}
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

const redis = await startRedis();
const redisCli = new Redis(redis.url);
/** redis-server's own CPU time (INFO cpu), in µs. */
const redisCpuUs = async () => {
  const info = await redisCli.info("cpu");
  const f = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return (f("used_cpu_user") + f("used_cpu_sys")) * 1e6;
};
/**
 * The commands the service sends Redis (the limits' EVALSHA and ZREM; INFO commandstats also
 * counts what scripts call inside, which is not a round trip), since Redis started.
 */
const redisCommands = async () => {
  let n = 0;
  for (const m of (await redisCli.info("commandstats")).matchAll(/cmdstat_(?:evalsha|zrem):calls=(\d+)/g)) n += Number(m[1]);
  return n;
};
const redisPid = Number(/process_id:(\d+)/.exec(await redisCli.info("server"))?.[1] ?? 0);
let gwUrl = "";
try {
  gwUrl = await child("gateway", token);
  const [helloUrl, svcUrl] = await Promise.all([child("hello"), child("service", redis.url, gwUrl)]);
  const hello: autocannon.Options = { url: helloUrl };
  const ingress: autocannon.Options = {
    url: `${svcUrl}/hooks/bench`,
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${secret}` },
    body: JSON.stringify({ action: "create_flow", goal: "Review inbound queue", notifyPolicy: "silent" }),
  };
  // A create_flow must succeed before load: a broken pipeline would measure fast 4xx answers.
  const probe = await fetch(ingress.url as string, { method: "POST", headers: ingress.headers as Record<string, string>, body: ingress.body as string });
  if (probe.status !== 200) throw new Error(`ingress probe answered ${probe.status}: ${await probe.text()}`);
  await load(hello, warmup, helloUrl);
  await load(ingress, warmup, svcUrl);
  const runs = { hello: [] as Run[], ingress: [] as Run[] };
  for (let i = 0; i < rounds; i++) {
    runs.hello.push(await load(hello, seconds, helloUrl));
    runs.ingress.push(await load(ingress, seconds, svcUrl));
  }
  const summary = (rs: Run[]) => ({
    rps: median(rs.map((r) => r.rps)),
    p50: median(rs.map((r) => r.p50)),
    p99: median(rs.map((r) => r.p99)),
    bad: rs.reduce((n, r) => n + r.non2xx + r.errors, 0),
    cpu: median(rs.map((r) => r.cpuUsPerReq)),
    redisCmds: median(rs.map((r) => r.redisCmdsPerReq)),
    others: Object.fromEntries(Object.keys(rs[0]!.others).map((k) => [k, median(rs.map((r) => r.others[k]!))])),
    sys: Object.fromEntries(
      Object.keys(rs[0]!.sys).map((k) => [
        k,
        {
          sys: median(rs.map((r) => r.sys[k]!.sys)),
          ctx: median(rs.map((r) => r.sys[k]!.ctx)),
          kernelUs: median(rs.map((r) => r.sys[k]!.kernelUs)),
        },
      ]),
    ),
  });
  const h = summary(runs.hello);
  const g = summary(runs.ingress);
  const busyUs = Math.max(0, Math.round(g.cpu - h.cpu));
  let c: ReturnType<typeof summary> | undefined;
  if (process.env.BENCH_CONTROL !== "0") {
    const burnUrl = await child("burn", String(busyUs));
    // Under load the calibrated spin costs more (or less) than at startup: scale it until the
    // control's CPU per request is within 5% of the ingress's (at most five tries; the row shows
    // what it reached).
    for (let i = 0; i < 5; i++) {
      const w = await load({ url: burnUrl }, warmup, burnUrl);
      const extra = w.cpuUsPerReq - h.cpu;
      if (Math.abs(w.cpuUsPerReq - g.cpu) <= 0.05 * g.cpu || extra <= 0) break;
      await fetch(`${burnUrl}/scale?by=${Math.sqrt(busyUs / extra)}`, { method: "POST" });
    }
    const burns: Run[] = [];
    for (let i = 0; i < rounds; i++) burns.push(await load({ url: burnUrl }, seconds, burnUrl));
    c = summary(burns);
  }
  const ratio = g.rps / h.rps;
  const row = (name: string, s: ReturnType<typeof summary>) =>
    `${name.padEnd(30)} ${s.rps.toFixed(0).padStart(8)} ${String(s.p50).padStart(7)} ${String(s.p99).padStart(7)} ${String(s.bad).padStart(9)} ${s.cpu.toFixed(1).padStart(12)}`;
  console.log(`\ningress benchmark: ${connections} connections, ${rounds} × ${seconds} s per target (medians), node ${process.version}`);
  console.log(
    `${"target".padEnd(30)} ${"req/s".padStart(8)} ${"p50 ms".padStart(7)} ${"p99 ms".padStart(7)} ${"non-2xx".padStart(9)} ${"CPU µs/req".padStart(12)}`,
  );
  console.log(row("hono hello-world", h));
  console.log(row("create_flow full pipeline", g));
  if (c) console.log(row(`control: hello + ${busyUs} µs busy`, c));
  console.log(`ratio ingress/hello: ${ratio.toFixed(3)} (target ≥ 0.25)   ingress p99: ${g.p99} ms (target < 10 ms)`);
  console.log(`per-run req/s  hello: ${runs.hello.map((r) => r.rps.toFixed(0)).join(", ")}   ingress: ${runs.ingress.map((r) => r.rps.toFixed(0)).join(", ")}`);
  const spent = (s: ReturnType<typeof summary>) =>
    Object.entries({ server: s.cpu, ...s.others })
      .map(([k, v]) => `${k} ${v.toFixed(1)}`)
      .join(", ");
  console.log(`CPU µs per request, every process  hello: ${spent(h)}   ingress: ${spent(g)}`);
  // System calls are the dearest thing on a virtual machine: the figure that batching moves.
  const calls = (s: ReturnType<typeof summary>) =>
    Object.entries(s.sys)
      .filter(([, v]) => v.sys > 0)
      .map(([k, v]) => `${k} ${v.sys.toFixed(2)}/${v.ctx.toFixed(2)}/${v.kernelUs.toFixed(0)}`)
      .join(", ");
  console.log(`read+write syscalls / context switches / kernel CPU µs per request  hello: ${calls(h)}   ingress: ${calls(g)}`);
  console.log(`Redis commands (EVALSHA + ZREM) per ingress request: ${g.redisCmds.toFixed(3)}`);
  if (c) {
    console.log(`control: a hello-world costing the ingress's CPU per request, with no I/O or garbage, runs ${c.rps.toFixed(0)} req/s with p99 ${c.p99} ms;`);
    console.log(
      `  the ingress's p99 is ${(g.p99 / Math.max(1, c.p99)).toFixed(2)}× the control's, its req/s ${(g.rps / c.rps).toFixed(2)}× (1.00 = the pipeline adds nothing beyond its CPU)`,
    );
  }
  if (g.bad > 0) console.log(`WARNING: ${g.bad} non-2xx or failed ingress requests`);
} finally {
  for (const c of children) c.kill("SIGTERM");
  redisCli.disconnect();
  await redis.dispose();
}
