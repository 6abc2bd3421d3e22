/**
 * What `npm run bench:open-loop` (open-loop.ts) prints and writes: one line per step as it ends,
 * then the table, the saturation per receiver and the notes; and the JSON file under
 * bench/results/ with the machine, the code measured, the settings and every figure.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import type { ReceiverKind } from "./open-loop-children.js";

type Summary = { p50: number; p99: number; max: number };
export type StepResult = {
  receiver: ReceiverKind;
  rate: number;
  sent: number;
  accepted: number;
  /** Publishes not answered 202, by status or error name. */
  rejected: Record<string, number>;
  /** First attempts that reached the receiver during the step, per second. */
  deliveredPerS: number;
  /** Share of the events whose first attempt arrived by the end of the step plus the drain. */
  inTimeShare: number;
  /** Due time → first attempt at the receiver; ∞ for an event without one by the end of the drain. */
  latencyMs: { p50: number; p95: number; p99: number };
  publishMs: Summary;
  generator: { lagMs: Summary; kept: boolean; maxOutstanding: number; queuedForConnection: number };
  retriesSeen: number;
  breakerOpens: number;
  jobsAtEnd: Record<string, number>;
  /** When first attempts arrived, ms after the step's start. */
  arrivalsMs: { first: number; median: number; last: number };
  warmupDelivered: number;
  /** During the step, as % of one core; `others` is the rest of the machine. */
  cpuPercentOfCore: Record<string, number>;
  runQueueWaitPercentOfCore: Record<string, number>;
  cpuUsPerAttempt: { service: number; redis: number };
  keptUp: boolean;
};

/** Nearest-rank percentile of an ascending list (NaN when empty). */
export const pct = (sorted: readonly number[], q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]! : NaN);
const fmtMs = (x: number) => (!Number.isFinite(x) ? "∞" : x < 10 ? x.toFixed(1) : x.toFixed(0));

export function stepLine(s: StepResult): string {
  const c = s.cpuPercentOfCore;
  const w = s.runQueueWaitPercentOfCore;
  const l = s.latencyMs;
  return (
    `${s.receiver.padEnd(8)} ${String(s.rate).padStart(5)}/s  first attempts ${s.deliveredPerS.toFixed(0)}/s, in time ${(s.inTimeShare * 100).toFixed(1)}%, ` +
    `p50/p95/p99 ${fmtMs(l.p50)}/${fmtMs(l.p95)}/${fmtMs(l.p99)} ms, publish p99 ${fmtMs(s.publishMs.p99)} ms, gen. lag p99 ${fmtMs(s.generator.lagMs.p99)} ms; ` +
    `CPU % svc ${c.service} redis ${c.redis} gen ${c.generator} rx ${c.receiver} others ${c.others}; run-queue wait % svc ${w.service} redis ${w.redis}; ` +
    `CPU µs per first attempt: svc ${s.cpuUsPerAttempt.service}, redis ${s.cpuUsPerAttempt.redis}; jobs at the end ${JSON.stringify(s.jobsAtEnd)}` +
    (Object.keys(s.rejected).length ? `; publish not accepted: ${JSON.stringify(s.rejected)}` : "")
  );
}

/** CPU of other processes (and interrupts) from which a step is said to have run on a busy machine, % of a core. */
const CONTENDED_PERCENT = 30;

/** What the reader must know about a step besides its figures. */
export function stepNotes(s: StepResult, connections: number): string[] {
  const at = `${s.receiver} @ ${s.rate}/s`;
  const out: string[] = [];
  if (!s.generator.kept) out.push(`${at}: the generator fell behind its schedule (lag p99 ${fmtMs(s.generator.lagMs.p99)} ms).`);
  if (s.generator.queuedForConnection)
    out.push(`${at}: ${s.generator.queuedForConnection} sends found all ${connections} connections busy and waited for one.`);
  if (s.breakerOpens) out.push(`${at}: the circuit breaker opened ${s.breakerOpens}×.`);
  if (s.retriesSeen) out.push(`${at}: ${s.retriesSeen} repeated attempts reached the receiver (not measured).`);
  // Another tenant's CPU use: the step then measured a service starved of CPU, not its capacity.
  const others = s.cpuPercentOfCore.others ?? 0;
  if (others >= CONTENDED_PERCENT)
    out.push(`${at}: other work on the machine used ${others}% of a core (the service waited for a CPU ${s.runQueueWaitPercentOfCore.service}% of the time).`);
  if (s.warmupDelivered < 1) out.push(`${at}: the warm-up was not all delivered when the step began (${(s.warmupDelivered * 100).toFixed(0)}%).`);
  return out;
}

function table(steps: StepResult[]): string {
  const head = ["receiver", "offered/s", "first attempts/s", "in time", "p50 ms", "p95 ms", "p99 ms", "publish p99 ms", "gen. lag p99 / max ms"];
  head.push("CPU % svc / redis / gen / rx / others", "kept up");
  const rows = steps.map((s) => {
    const c = s.cpuPercentOfCore;
    return [
      s.receiver,
      s.rate.toLocaleString("en-US"),
      s.deliveredPerS.toFixed(0),
      `${(s.inTimeShare * 100).toFixed(1)}%`,
      fmtMs(s.latencyMs.p50),
      fmtMs(s.latencyMs.p95),
      fmtMs(s.latencyMs.p99),
      fmtMs(s.publishMs.p99),
      `${fmtMs(s.generator.lagMs.p99)} / ${fmtMs(s.generator.lagMs.max)}${s.generator.kept ? "" : " (behind)"}`,
      `${c.service} / ${c.redis} / ${c.generator} / ${c.receiver} / ${c.others}`,
      s.keptUp ? "yes" : "**no**",
    ];
  });
  return [head, head.map(() => "---"), ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
}

/** Per receiver: the highest rate that kept up below the first that did not, and that first one. */
function saturationOf(steps: StepResult[], kinds: ReceiverKind[], rates: number[]) {
  return Object.fromEntries(
    kinds.map((kind) => {
      const mine = steps.filter((s) => s.receiver === kind);
      const firstFail = mine.find((s) => !s.keptUp);
      const kept = mine.filter((s) => s.keptUp && (!firstFail || s.rate < firstFail.rate)).at(-1);
      return [kind, { keptUpTo: kept?.rate ?? null, saturatesAt: firstFail ? String(firstFail.rate) : `> ${rates.at(-1)}` }];
    }),
  );
}

/** The commit measured, and whether src/ had local changes (it is rebuilt from the working tree on every run). */
function codeMeasured() {
  const git = (...args: string[]) => {
    try {
      return execFileSync("git", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    } catch {
      return undefined; // not a git checkout
    }
  };
  const status = git("status", "--porcelain", "src");
  return { commit: git("rev-parse", "HEAD") ?? null, srcChanged: status === undefined ? null : status !== "" };
}

/** Writes bench/results/open-loop-<UTC date-time, `:` as `-`>.json and prints the summary. */
export function writeResults(run: {
  started: Date;
  rates: number[];
  kinds: ReceiverKind[];
  settings: Record<string, unknown> & { stepSeconds: number; latency: string; retry: string; circuitBreaker: string };
  notes: string[];
  steps: StepResult[];
}): void {
  const { settings, steps, notes } = run;
  const machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    loadavg: os.loadavg(),
  };
  const saturation = saturationOf(steps, run.kinds, run.rates);
  const dir = join(process.cwd(), "bench", "results");
  const file = join(
    dir,
    `open-loop-${run.started
      .toISOString()
      .replace(/\.\d+Z$/, "Z")
      .replaceAll(":", "-")}.json`,
  );
  mkdirSync(dir, { recursive: true });
  // JSON has no ∞: a percentile that fell on an event without a first attempt in time is null.
  const body = { startedAt: run.started.toISOString(), code: codeMeasured(), machine, settings, saturation, notes, steps };
  writeFileSync(file, `${JSON.stringify(body, (_, v) => (v === Infinity ? null : v), 2)}\n`);

  console.log(`\nOpen loop, ${settings.stepSeconds} s a step, ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}. Latency: ${settings.latency}.`);
  console.log(`Retries excluded (${settings.retry}). Circuit breaker: ${settings.circuitBreaker}.\n`);
  console.log(table(steps));
  console.log("");
  for (const [kind, s] of Object.entries(saturation)) console.log(`${kind.padEnd(8)} kept up to ${s.keptUpTo ?? "none"}/s; saturates at ${s.saturatesAt}/s`);
  for (const n of notes) console.log(`note: ${n}`);
  console.log(`\nwrote ${file}`);
}
