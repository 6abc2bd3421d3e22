import type { Redis } from "ioredis";
import { keyPart } from "../util/key-part.js";

/**
 * Claims on delivery ids and idempotency keys, shared by every replica when Redis is there (one
 * replica's memory otherwise). `claim` is atomic (SET NX): of fifty identical requests at once,
 * one wins and does the work; the others see its claim, then its stored answer.
 */
export interface IdempotencyStore {
  /** True when this caller won the key; otherwise the stored value ("" while the winner works). */
  claim(key: string, ttlMs: number): Promise<{ won: true } | { won: false; value: string }>;
  /** Stores the winner's answer for the rest of the window. */
  complete(key: string, value: string, ttlMs: number): Promise<void>;
  /** Gives the key up (the work failed): a retry may try again. */
  release(key: string): Promise<void>;
  get(key: string): Promise<string | undefined>;
}

const PENDING = "";

export function createRedisIdempotencyStore(redis: Redis, prefix: string): IdempotencyStore {
  // Keys carry what senders chose (a webhook-id, a body's id, an Idempotency-Key): plain ones as
  // they are, anything else (control characters, spaces, unicode, over 512) hashed.
  const k = (key: string) => `${prefix}idem:${keyPart(key, 512)}`;
  return {
    async claim(key, ttlMs) {
      const won = await redis.set(k(key), PENDING, "PX", ttlMs, "NX");
      if (won === "OK") return { won: true };
      return { won: false, value: (await redis.get(k(key))) ?? PENDING };
    },
    async complete(key, value, ttlMs) {
      await redis.set(k(key), value, "PX", ttlMs);
    },
    async release(key) {
      await redis.del(k(key));
    },
    async get(key) {
      return (await redis.get(k(key))) ?? undefined;
    },
  };
}

/** One replica's store: at most `maxKeys` keys, the oldest dropped first. */
export function createMemoryIdempotencyStore(opts: { maxKeys?: number; now?: () => number } = {}): IdempotencyStore {
  const max = opts.maxKeys ?? 10_000;
  const now = opts.now ?? Date.now;
  const map = new Map<string, { value: string; until: number }>();
  const live = (key: string) => {
    const e = map.get(key);
    if (e && e.until <= now()) map.delete(key);
    return e && e.until > now() ? e : undefined;
  };
  const put = (key: string, value: string, ttlMs: number) => {
    map.delete(key);
    map.set(key, { value, until: now() + ttlMs });
    if (map.size > max) map.delete(map.keys().next().value!);
  };
  return {
    async claim(key, ttlMs) {
      const e = live(key);
      if (e) return { won: false, value: e.value };
      put(key, PENDING, ttlMs);
      return { won: true };
    },
    async complete(key, value, ttlMs) {
      put(key, value, ttlMs);
    },
    async release(key) {
      map.delete(key);
    },
    async get(key) {
      return live(key)?.value;
    },
  };
}

/** Waits for a winner's stored answer (polling every 25 ms), or undefined after `ms`. */
export async function awaitAnswer(store: IdempotencyStore, key: string, ms: number): Promise<string | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await store.get(key);
    if (v === undefined) return undefined; // released: the winner failed
    if (v !== PENDING) return v;
    if (Date.now() > end) return PENDING;
    await new Promise((r) => setTimeout(r, 25));
  }
}
