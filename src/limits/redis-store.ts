import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import type { RedisClient } from "../redis.js";
import { turnBatcher } from "../util/turn-batch.js";
import type { AcquireResult, Limits, LimitStore } from "./store.js";
import { createKeys } from "../redis-keys.js";

const ACQUIRE_LUA = new URL("./lua/acquire-batch.lua", import.meta.url);

/** A status and a number per lease token asked for (see the script). */
type AcquireReply = number[];
type AcquireItem = { windowKey: string; leaseKey: string; limits: Limits; token: string };

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
  // Acquires asked for during one event-loop turn, by key and limits: one script call per group,
  // sent at the turn's end (util/turn-batch.ts).
  const take = turnBatcher<AcquireItem, [number, number]>(
    async (_group, items) => {
      const { windowKey, leaseKey, limits } = items[0]!;
      const reply = await acquireCmd(windowKey, leaseKey, limits.windowMs, limits.maxRequests, limits.maxInFlight, opts.leaseMs, ...items.map((w) => w.token));
      return items.map((_, i) => [reply[2 * i]!, reply[2 * i + 1]!]);
    },
    // All of a turn's acquires of a key in one call, however many.
    { maxItems: Number.POSITIVE_INFINITY },
  );
  const takeOne = (item: AcquireItem) => take(`${item.leaseKey} ${item.limits.windowMs} ${item.limits.maxRequests} ${item.limits.maxInFlight}`, item);

  // Releases made during one event-loop turn go out together: one ZREM per key with every token.
  // Under load that is a fraction of the commands of one ZREM per request, and the connection
  // sends a turn's commands in one write (deps.ts). Plain commands, not a pipeline: ioredis copies
  // every script defined on the connection onto each pipeline it builds. A failed release is not
  // fatal: the lease expires on its own after leaseMs, so a release never rejects (its callers
  // do not await it), not even on a throw. All of a turn's releases of a key in one ZREM.
  const release = turnBatcher<string, undefined>(
    async (leaseKey, tokens) => {
      try {
        await redis.zrem(leaseKey, ...tokens);
      } catch {
        // The lease expires by itself.
      }
      return tokens.map(() => undefined);
    },
    { maxItems: Number.POSITIVE_INFINITY },
  );
  const keys = createKeys(opts.prefix).limits;
  return {
    async acquire(key, limits): Promise<AcquireResult> {
      // Both keys carry `key` as their hash tag, and a batch is one key's: one slot per script call.
      const leaseKey = keys.inflight(key);
      const token = randomUUID();
      const [status, n] = await takeOne({ windowKey: keys.window(key), leaseKey, limits, token });
      if (status === 0) return { ok: false, reason: "rate_limited", retryAfterMs: n };
      if (status === -1) return { ok: false, reason: "in_flight_limited" };
      let released: Promise<void> | undefined;
      return { ok: true, release: () => (released ??= release(leaseKey, token)) };
    },
  };
}
