import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";
import type { AcquireResult, LimitStore } from "./store.js";

const ACQUIRE_LUA = new URL("./lua/acquire-2.lua", import.meta.url);

type AcquireReply = [number, number];

/**
 * Limits shared by every replica on one Redis. The window and the lease are taken by one Lua
 * script (one round trip); a lease is a sorted-set member scored by the time it was taken, so a
 * replica killed mid-request leaves leases that the next acquire sweeps once `leaseMs` has passed.
 *
 * @param opts.prefix key prefix (config `redis.prefix`)
 * @param opts.leaseMs lease expiry (config `limits.leaseMs`, default 60 s): longer than any request
 */
export function createRedisLimitStore(redis: Redis, opts: { prefix: string; leaseMs: number }): LimitStore {
  if (!("ocwhAcquire" in redis)) {
    redis.defineCommand("ocwhAcquire", { numberOfKeys: 2, lua: readFileSync(ACQUIRE_LUA, "utf8") });
  }
  // Releases made during one event-loop turn go out together: one ZREM per key with every token.
  // Under load that is a fraction of the commands of one ZREM per request, and the connection
  // sends a turn's commands in one write (deps.ts). Plain commands, not a pipeline: ioredis copies
  // every script defined on the connection onto each pipeline it builds.
  let pendingReleases = new Map<string, string[]>();
  let flushScheduled = false;
  const flushReleases = () => {
    flushScheduled = false;
    const batch = pendingReleases;
    pendingReleases = new Map();
    // A failed release is not fatal: the lease expires on its own after leaseMs.
    return Promise.all([...batch].map(([key, tokens]) => redis.zrem(key, ...tokens))).then(() => undefined, () => undefined);
  };
  let flushing: Promise<void> = Promise.resolve();
  const release = (leaseKey: string, token: string): Promise<void> => {
    const tokens = pendingReleases.get(leaseKey);
    if (tokens) tokens.push(token);
    else pendingReleases.set(leaseKey, [token]);
    if (!flushScheduled) {
      flushScheduled = true;
      flushing = new Promise((resolve) => setImmediate(() => void flushReleases().then(resolve)));
    }
    return flushing;
  };
  const acquireCmd = (redis as unknown as { ocwhAcquire: (...a: (string | number)[]) => Promise<AcquireReply> }).ocwhAcquire.bind(redis);
  return {
    kind: "redis",
    async acquire(key, limits): Promise<AcquireResult> {
      const tag = `{${key}}`;
      const leaseKey = `${opts.prefix}inflight:${tag}`;
      const token = randomUUID();
      const [status, n] = await acquireCmd(
        `${opts.prefix}window:${tag}`,
        leaseKey,
        limits.windowMs,
        limits.maxRequests,
        limits.maxInFlight,
        opts.leaseMs,
        token,
      );
      if (status === 0) return { ok: false, reason: "rate_limited", retryAfterMs: n };
      if (status === -1) return { ok: false, reason: "in_flight_limited" };
      let released: Promise<void> | undefined;
      return { ok: true, release: () => (released ??= release(leaseKey, token)) };
    },
  };
}
