import { readFileSync } from "node:fs";
import type { RedisClient } from "../redis.js";
import { LRUCache } from "lru-cache";
import { createKeys } from "../redis-keys.js";

/** What a claim found: the key was free (now this owner's lease), is leased by another request, or has its answer. */
export type ClaimResult = { state: "won" } | { state: "in_progress"; ttlMs: number } | { state: "answered"; answer: string };

/**
 * Idempotency keys with owners. A claim is a short lease (`leaseMs`) held by one owner token; only
 * that owner can renew it, store the answer (kept for the whole window) or give it up. A lease that
 * nobody renews (a crashed replica, a Redis that came back after the owner gave up) runs out by
 * itself, so a key is never "in progress" for longer than the lease.
 */
export interface IdempotencyStore {
  claim(key: string, owner: string, leaseMs: number): Promise<ClaimResult>;
  /** False when the lease is no longer this owner's. */
  renew(key: string, owner: string, leaseMs: number): Promise<boolean>;
  /** Stores the answer for `windowMs` if the owner still holds the key or it is vacant; false otherwise. */
  complete(key: string, owner: string, answer: string, windowMs: number): Promise<boolean>;
  /** Gives the key up (the work failed) if the owner still holds it. */
  release(key: string, owner: string): Promise<boolean>;
}

const lua = (name: string) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), "utf8");

type Commands = {
  ocwhIdemClaim(key: string, owner: string, leaseMs: number): Promise<[1] | [2, number] | [3, string]>;
  ocwhIdemRenew(key: string, owner: string, leaseMs: number): Promise<number>;
  ocwhIdemComplete(key: string, owner: string, answer: string, windowMs: number): Promise<number>;
  ocwhIdemRelease(key: string, owner: string): Promise<number>;
};

/**
 * The store every replica shares: one Lua script per operation, so the owner check and the write
 * are one step. `key` is already unambiguous and safe (see keys.ts); the prefix is added here.
 */
export function createRedisIdempotencyStore(redis: RedisClient, prefix: string): IdempotencyStore {
  if (!("ocwhIdemClaim" in redis)) {
    redis.defineCommand("ocwhIdemClaim", { numberOfKeys: 1, lua: lua("claim-1") });
    redis.defineCommand("ocwhIdemRenew", { numberOfKeys: 1, lua: lua("renew-1") });
    redis.defineCommand("ocwhIdemComplete", { numberOfKeys: 1, lua: lua("complete-1") });
    redis.defineCommand("ocwhIdemRelease", { numberOfKeys: 1, lua: lua("release-1") });
  }
  const r = redis as unknown as Commands;
  const k = createKeys(prefix).idempotency;
  return {
    async claim(key, owner, leaseMs) {
      const reply = await r.ocwhIdemClaim(k(key), owner, leaseMs);
      if (reply[0] === 1) return { state: "won" };
      if (reply[0] === 2) return { state: "in_progress", ttlMs: Math.max(0, Number(reply[1])) };
      return { state: "answered", answer: String(reply[1]) };
    },
    renew: async (key, owner, leaseMs) => (await r.ocwhIdemRenew(k(key), owner, leaseMs)) === 1,
    complete: async (key, owner, answer, windowMs) => (await r.ocwhIdemComplete(k(key), owner, answer, windowMs)) === 1,
    release: async (key, owner) => (await r.ocwhIdemRelease(k(key), owner)) === 1,
  };
}

/** One replica's store (no Redis): the same rules, at most `maxKeys` keys, the oldest dropped first. */
export function createMemoryIdempotencyStore(opts: { maxKeys?: number; now?: () => number } = {}): IdempotencyStore {
  const max = opts.maxKeys ?? 10_000;
  const now = opts.now ?? Date.now;
  const map = new LRUCache<string, { owner?: string; answer?: string; until: number }>({ max });
  const live = (key: string) => {
    const e = map.get(key);
    if (e && e.until <= now()) map.delete(key);
    return e && e.until > now() ? e : undefined;
  };
  const put = (key: string, e: { owner?: string; answer?: string; until: number }) => {
    map.set(key, e);
  };
  return {
    async claim(key, owner, leaseMs) {
      const e = live(key);
      if (!e) {
        put(key, { owner, until: now() + leaseMs });
        return { state: "won" };
      }
      return e.answer !== undefined ? { state: "answered", answer: e.answer } : { state: "in_progress", ttlMs: e.until - now() };
    },
    async renew(key, owner, leaseMs) {
      const e = live(key);
      if (e?.owner !== owner || e.answer !== undefined) return false;
      e.until = now() + leaseMs;
      return true;
    },
    async complete(key, owner, answer, windowMs) {
      const e = live(key);
      if (e && (e.owner !== owner || e.answer !== undefined)) return false;
      put(key, { answer, until: now() + windowMs });
      return true;
    },
    async release(key, owner) {
      const e = live(key);
      if (e?.owner !== owner || e.answer !== undefined) return false;
      map.delete(key);
      return true;
    },
  };
}
