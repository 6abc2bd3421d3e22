import type { createStallRecorder } from "./stalls.js";

/** The tables of the event part of `npm run bench:openclaw` (bench/openclaw-events.ts). */
export const TYPES = ["message.received", "message.sent"] as const;
export type Type = (typeof TYPES)[number];
export type Kind = "turn" | "warmup" | "control";
/** Where one event was seen: `pt` is performance.now(); `ms` Date.now(), the receiver's clock. */
export type Stamps = {
  type?: Type;
  kind?: Kind;
  sessionKey?: string;
  /** When this process first saw the frame (or the control published it). */
  first?: { ms: number; pt: number };
  observer?: number;
  publishStart?: number;
  addStart?: number;
  addEnd?: number;
  active?: { ms: number; pt: number };
  received?: number;
  deliveries: number;
};
export type Seen = Stamps & Required<Pick<Stamps, "type" | "kind" | "sessionKey" | "first">>;

/** Nearest-rank quantile of sorted values. */
export const q = (sorted: number[], p: number) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? NaN;
export const sortNum = (xs: number[]) => [...xs].sort((a, b) => a - b);
const fmt = (x: number) => `${x.toFixed(1)} ms`.padStart(10);

/** Prints count, p50, p99 and max per type and overall; returns the overall p99. */
export function latencyTable(ss: Seen[]): number {
  const lat = (xs: Seen[]) => sortNum(xs.map((s) => s.received! - s.first.ms));
  console.log(`${"type".padEnd(18)} ${"count".padStart(6)} ${"p50".padStart(10)} ${"p99".padStart(10)} ${"max".padStart(10)}`);
  const row = (name: string, xs: number[]) =>
    console.log(`${name.padEnd(18)} ${String(xs.length).padStart(6)} ${fmt(q(xs, 0.5))} ${fmt(q(xs, 0.99))} ${fmt(xs.at(-1) ?? NaN)}`);
  for (const t of TYPES) row(t, lat(ss.filter((s) => s.type === t)));
  const overall = lat(ss);
  row("overall", overall);
  return q(overall, 0.99);
}

/** Where the time went, per stage (p50, p99, max), for the events that arrived. */
export function stageTable(ss: Seen[], stalls: ReturnType<typeof createStallRecorder>) {
  const stage = (name: string, f: (s: Seen) => number | undefined) => {
    const xs = sortNum(ss.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x)));
    if (xs.length) console.log(`  ${name.padEnd(48)} ${fmt(q(xs, 0.5))} ${fmt(q(xs, 0.99))} ${fmt(xs.at(-1) ?? NaN)}`);
  };
  const d = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : b - a);
  console.log(`stages (p50, p99, max over ${ss.length} events):`);
  stage("first sight → the observer's listener", (s) => d(s.first.pt, s.observer));
  stage("first sight → publish() start", (s) => d(s.first.pt, s.publishStart));
  stage("publish(): event + records script", (s) => d(s.publishStart, s.addStart));
  stage("publish(): BullMQ add", (s) => d(s.addStart, s.addEnd));
  stage("BullMQ add → worker 'active'", (s) => d(s.addEnd, s.active?.pt));
  stage("worker 'active' → receiver (gate, sign, POST)", (s) => (s.active && s.received !== undefined ? s.received - s.active.ms : undefined));
  const t = stalls.totals();
  console.log(
    `  this process stood still (stalls > 3 ms) ${t.stallMs.toFixed(0)} ms in all, GC pauses ${t.gcMs.toFixed(0)} ms, longest stall ${t.longest.toFixed(0)} ms`,
  );
  // The slowest events, each against the time its own process stood still while it was on its way.
  const slow = [...ss].sort((a, b) => b.received! - b.first.ms - (a.received! - a.first.ms)).slice(0, 5);
  console.log("  slowest (total: script, add, →active, →receiver | this process stalled, of it GC):");
  for (const s of slow) {
    const end = s.first.pt + (s.received! - s.first.ms);
    const x = stalls.overlap(s.first.pt, end);
    const f = (v: number | undefined) => (v === undefined ? "-" : v.toFixed(1));
    console.log(
      `    ${s.type.padEnd(16)} ${f(s.received! - s.first.ms).padStart(5)} ms: ${f(d(s.publishStart, s.addStart))}, ${f(d(s.addStart, s.addEnd))}, ${f(d(s.addEnd, s.active?.pt))}, ` +
        `${s.active ? f(s.received! - s.active.ms) : "-"} | ${f(x.stallMs)} ms, ${f(x.gcMs)} ms`,
    );
  }
}
