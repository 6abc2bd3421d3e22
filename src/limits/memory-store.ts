import type { AcquireResult, LimitStore } from "./store.js";
import { LRUCache } from "lru-cache";

/**
 * Limits for a single replica without Redis, as the bundled plugin keeps them: a fixed window per
 * key in a Map capped at `maxTrackedKeys` (a touched key moves to the end; the oldest is evicted),
 * and an in-flight count per key that is deleted when it returns to zero.
 */
export function createMemoryLimitStore(opts: { maxTrackedKeys: number; now?: () => number }): LimitStore {
  const now = opts.now ?? Date.now;
  const windows = new LRUCache<string, { index: number; count: number }>({ max: opts.maxTrackedKeys });
  const inFlight = new Map<string, number>();
  return {
    async acquire(key, limits): Promise<AcquireResult> {
      const t = now();
      const index = Math.floor(t / limits.windowMs);
      const w = windows.get(key);
      const entry = w && w.index === index ? w : { index, count: 0 };
      entry.count++;
      windows.set(key, entry);
      if (entry.count > limits.maxRequests) {
        return { ok: false, reason: "rate_limited", retryAfterMs: (index + 1) * limits.windowMs - t };
      }
      const n = inFlight.get(key) ?? 0;
      if (n >= limits.maxInFlight) return { ok: false, reason: "in_flight_limited" };
      inFlight.set(key, n + 1);
      let released = false;
      return {
        ok: true,
        release: async () => {
          if (released) return;
          released = true;
          const left = (inFlight.get(key) ?? 1) - 1;
          if (left <= 0) inFlight.delete(key);
          else inFlight.set(key, left);
        },
      };
    },
  };
}
