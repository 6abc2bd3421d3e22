import type { RedisClient } from "../redis.js";
import { createKeys } from "../redis-keys.js";

/**
 * Per-endpoint success rate and latency over the last hour, from per-minute buckets in Redis.
 *
 * The finish script (lua/finish-batch.lua) adds each attempt to its endpoint's bucket for the minute:
 * `n` attempts, `ok` successes, and one latency histogram count `b<i>` for attempts that got an
 * answer (a refused connection's 0 ms would make a failing endpoint look fast). A bucket expires
 * two hours after its first write. Reading an hour is 61 small HGETALLs per endpoint, whatever the
 * rate: at 1,000 deliveries a minute the alternative, reading the last hour of the endpoint's
 * index, would be 60,000 records (and a cap would bias the answer towards the newest minutes).
 * A minute more than two minutes old no longer changes (attempts are counted in the minute they
 * end, and replicas' clocks are within seconds of each other), so each replica keeps those in
 * memory and a read after the first fetches two buckets per endpoint, not 61.
 * Percentiles are the upper bound of the histogram bucket they fall in, so `p95Ms: 250` means
 * "95% of answered attempts took at most 250 ms". Counted per attempt, manual ones included:
 * that is what the receiver saw.
 */

/** Upper bounds of the latency buckets, in ms; the last bucket is "more than 30 s". */
export const LATENCY_BOUNDS_MS = [10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000] as const;
const MINUTE = 60_000;
export const STATS_WINDOW_MINUTES = 60;
/** A bucket outlives the window it can be read in. */
export const STATS_BUCKET_TTL_MS = 2 * 3_600_000;

/** The histogram bucket of a duration: 0 … LATENCY_BOUNDS_MS.length (the overflow bucket). */
export function latencyBucket(ms: number): number {
  const i = LATENCY_BOUNDS_MS.findIndex((b) => ms <= b);
  return i === -1 ? LATENCY_BOUNDS_MS.length : i;
}

/** The minute a time falls in: the stats bucket it counts in (redis-keys.ts `endpoint.stats`). */
export const minuteOf = (at: number) => Math.floor(at / MINUTE);

export type EndpointStats = {
  endpoint: string;
  windowMinutes: number;
  attempts: number;
  succeeded: number;
  /** succeeded / attempts, 0…1; null with no attempts. */
  successRate: number | null;
  /** Attempts that got an HTTP answer (the latency sample). */
  answered: number;
  p50Ms: number | null;
  p95Ms: number | null;
};

/** The bound a percentile falls under; the overflow bucket is reported as "over 30 s" (the last bound). */
function percentile(hist: number[], total: number, p: number): number | null {
  if (!total) return null;
  const rank = Math.ceil(total * p);
  let seen = 0;
  for (let i = 0; i < hist.length; i++) {
    seen += hist[i]!;
    if (seen >= rank) return LATENCY_BOUNDS_MS[Math.min(i, LATENCY_BOUNDS_MS.length - 1)]!;
  }
  return LATENCY_BOUNDS_MS.at(-1)!;
}

const SETTLED_AFTER_MINUTES = 2;

export function createEndpointStats(redis: RedisClient, prefix: string) {
  const settled = new Map<string, Record<string, string>>();
  let prunedAt = 0;
  const statsKey = createKeys(prefix).endpoint.stats;

  async function read(endpoint: string, now = Date.now()): Promise<EndpointStats> {
    const keys: string[] = [];
    for (let m = 0; m <= STATS_WINDOW_MINUTES; m++) keys.push(statsKey(endpoint, minuteOf(now - m * MINUTE)));
    const buckets = await Promise.all(
      keys.map(async (key, m) => {
        const kept = settled.get(key);
        if (kept) return kept;
        const b = await redis.hgetall(key);
        if (m >= SETTLED_AFTER_MINUTES) settled.set(key, b);
        return b;
      }),
    );
    // Once a minute, forget the minutes that left the window (every endpoint's: keys end in the minute).
    const oldest = Math.floor(now / MINUTE) - STATS_WINDOW_MINUTES;
    if (oldest !== prunedAt) {
      prunedAt = oldest;
      for (const key of settled.keys()) if (Number(key.slice(key.lastIndexOf(":") + 1)) < oldest) settled.delete(key);
    }
    const hist = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
    let attempts = 0;
    let succeeded = 0;
    for (const b of buckets) {
      attempts += Number(b.n ?? 0);
      succeeded += Number(b.ok ?? 0);
      for (let i = 0; i < hist.length; i++) hist[i] = hist[i]! + Number(b[`b${i}`] ?? 0);
    }
    const answered = hist.reduce((a, b) => a + b, 0);
    return {
      endpoint,
      windowMinutes: STATS_WINDOW_MINUTES,
      attempts,
      succeeded,
      successRate: attempts ? succeeded / attempts : null,
      answered,
      p50Ms: percentile(hist, answered, 0.5),
      p95Ms: percentile(hist, answered, 0.95),
    };
  }
  return { read };
}
