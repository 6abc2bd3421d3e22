import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import type { RedisClient } from "../redis.js";
import { atTurnEnd } from "../util/cork.js";
import type { AcquireResult, Limits, LimitStore } from "./store.js";
import { createKeys } from "../redis-keys.js";

const ACQUIRE_LUA = new URL("./lua/acquire-batch.lua", import.meta.url);

/** A status and a number per lease token asked for (see the script). */
type AcquireReply = number[];
type Waiter = { token: string; resolve: (r: [number, number]) => void; reject: (e: unknown) => void };
type Batch = { windowKey: string; leaseKey: string; limits: Limits; waiters: Waiter[] };

/**
 * Limits shared by every replica on one Redis. The window and the lease are taken by one Lua
 * script (one round trip), once for all the requests of a key that arrive in one event-loop turn:
 * a burst from one client (the benchmark's 64 connections) costs one command, not one each, here
 * and in Redis. A lease is a sorted-set member scored by the time it was taken, so a replica
 * killed mid-request leaves leases that the next acquire sweeps once `leaseMs` has passed.
 *
 * @param opts.prefix key prefix (config `redis.prefix`)
 * @param opts.leaseMs lease expiry (config `limits.leaseMs`, default 60 s): longer than any request
 */
export function createRedisLimitStore(redis: RedisClient, opts: { prefix: string; leaseMs: number }): LimitStore {
  if (!("ocwhAcquire" in redis)) {
    redis.defineCommand("ocwhAcquire", { numberOfKeys: 2, lua: readFileSync(ACQUIRE_LUA, "utf8") });
  }
  const acquireCmd = (redis as unknown as { ocwhAcquire: (...a: (string | number)[]) => Promise<AcquireReply> }).ocwhAcquire.bind(redis);
  // Acquires asked for during one event-loop turn, by key and limits; sent at the turn's end.
  let pendingAcquires = new Map<string, Batch>();
  let acquireScheduled = false;
  const flushAcquires = () => {
    acquireScheduled = false;
    const batches = pendingAcquires;
    pendingAcquires = new Map();
    for (const b of batches.values()) {
      acquireCmd(b.windowKey, b.leaseKey, b.limits.windowMs, b.limits.maxRequests, b.limits.maxInFlight, opts.leaseMs, ...b.waiters.map((w) => w.token)).then(
        (reply) => {
          for (const [i, w] of b.waiters.entries()) w.resolve([reply[2 * i]!, reply[2 * i + 1]!]);
        },
        (err) => {
          for (const w of b.waiters) w.reject(err);
        },
      );
    }
  };
  const take = (windowKey: string, leaseKey: string, limits: Limits, token: string) =>
    new Promise<[number, number]>((resolve, reject) => {
      const id = `${leaseKey} ${limits.windowMs} ${limits.maxRequests} ${limits.maxInFlight}`;
      let batch = pendingAcquires.get(id);
      if (!batch) pendingAcquires.set(id, (batch = { windowKey, leaseKey, limits, waiters: [] }));
      batch.waiters.push({ token, resolve, reject });
      if (!acquireScheduled) {
        acquireScheduled = true;
        atTurnEnd(flushAcquires);
      }
    });

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
    return Promise.all([...batch].map(([key, tokens]) => redis.zrem(key, ...tokens))).then(
      () => undefined,
      () => undefined,
    );
  };
  let flushing: Promise<void> = Promise.resolve();
  const release = (leaseKey: string, token: string): Promise<void> => {
    const tokens = pendingReleases.get(leaseKey);
    if (tokens) tokens.push(token);
    else pendingReleases.set(leaseKey, [token]);
    if (!flushScheduled) {
      flushScheduled = true;
      flushing = new Promise((resolve) => atTurnEnd(() => void flushReleases().then(resolve)));
    }
    return flushing;
  };
  const keys = createKeys(opts.prefix).limits;
  return {
    async acquire(key, limits): Promise<AcquireResult> {
      // Both keys carry `key` as their hash tag, and a batch is one key's: one slot per script call.
      const leaseKey = keys.inflight(key);
      const token = randomUUID();
      const [status, n] = await take(keys.window(key), leaseKey, limits, token);
      if (status === 0) return { ok: false, reason: "rate_limited", retryAfterMs: n };
      if (status === -1) return { ok: false, reason: "in_flight_limited" };
      let released: Promise<void> | undefined;
      return { ok: true, release: () => (released ??= release(leaseKey, token)) };
    },
  };
}
