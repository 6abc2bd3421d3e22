import { PerformanceObserver } from "node:perf_hooks";

/**
 * Records when this process's event loop stood still: a 1 ms interval timer whose tick comes late
 * marks the gap as a stall, and V8's GC pauses come from the `gc` performance entries. `overlap`
 * then says how much of a window (performance.now() times) this process could not run JavaScript,
 * and how much of that was GC: what an event's latency owes to its own process.
 */
export function createStallRecorder(opts: { thresholdMs?: number } = {}) {
  const threshold = opts.thresholdMs ?? 3;
  const stalls: [number, number][] = [];
  const gcs: [number, number][] = [];
  let timer: NodeJS.Timeout | undefined;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push([e.startTime, e.startTime + e.duration]);
  });
  const sum = (xs: [number, number][], a: number, b: number) => xs.reduce((n, [s, e]) => n + Math.max(0, Math.min(b, e) - Math.max(a, s)), 0);
  return {
    start() {
      let last = performance.now();
      timer = setInterval(() => {
        const t = performance.now();
        if (t - last > threshold) stalls.push([last + 1, t]);
        last = t;
      }, 1);
      obs.observe({ entryTypes: ["gc"] });
    },
    stop() {
      clearInterval(timer);
      obs.disconnect();
    },
    overlap(from: number, to: number) {
      return { stallMs: sum(stalls, from, to), gcMs: sum(gcs, from, to) };
    },
    /** Total stalled and GC time while recording, and the longest stall. */
    totals() {
      return { stallMs: sum(stalls, -Infinity, Infinity), gcMs: sum(gcs, -Infinity, Infinity), longest: Math.max(0, ...stalls.map(([s, e]) => e - s)) };
    },
  };
}
