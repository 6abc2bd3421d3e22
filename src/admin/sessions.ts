import { createHash, createHmac, randomBytes } from "node:crypto";
import type { RedisClient } from "../redis.js";
import { LRUCache } from "lru-cache";
import { createKeys } from "../redis-keys.js";

/** How long a dashboard session lasts from its login (the cookie's Max-Age too). */
export const SESSION_TTL_MS = 12 * 3_600_000;

/**
 * Dashboard sessions: one random id per login (256 bits, the cookie's value), kept server-side
 * with a TTL so that logout ends it for good. Each records a fingerprint of the admin token it was
 * made with; once the configured token changes, no old session matches (token rotation signs
 * everyone out). Only a hash of the id is stored, so a copy of Redis holds no usable cookie.
 */
export interface SessionStore {
  create(fingerprint: string): Promise<string>;
  /** The fingerprint the session was made with; undefined when it does not exist or has ended. */
  fingerprintOf(id: string): Promise<string | undefined>;
  end(id: string): Promise<void>;
}

/** A fingerprint of the admin token (an HMAC keyed by the token: says nothing about it). */
export const tokenFingerprint = (token: string) => createHmac("sha256", token).update("openclaw-webhooks dashboard session").digest("base64url");

const newId = () => randomBytes(32).toString("base64url");
const hashOf = (id: string) => createHash("sha256").update(id).digest("base64url");
/** Cookie values are ours or forged; anything that is not one of our ids is not even looked up. */
const plausible = (id: string) => /^[A-Za-z0-9_-]{43}$/.test(id);

export function createRedisSessionStore(redis: RedisClient, opts: { prefix: string; ttlMs?: number }): SessionStore {
  const ttl = opts.ttlMs ?? SESSION_TTL_MS;
  const sessionKey = createKeys(opts.prefix).session;
  const keyOf = (id: string) => sessionKey(hashOf(id));
  return {
    async create(fingerprint) {
      const id = newId();
      await redis.set(keyOf(id), fingerprint, "PX", ttl);
      return id;
    },
    async fingerprintOf(id) {
      if (!plausible(id)) return undefined;
      return (await redis.get(keyOf(id))) ?? undefined;
    },
    async end(id) {
      if (plausible(id)) await redis.del(keyOf(id));
    },
  };
}

/** Without Redis (one replica): the same in this process, at most `max` sessions (oldest dropped). */
export function createMemorySessionStore(opts: { ttlMs?: number; max?: number; now?: () => number } = {}): SessionStore {
  const ttl = opts.ttlMs ?? SESSION_TTL_MS;
  const max = opts.max ?? 1_000;
  const now = opts.now ?? Date.now;
  const sessions = new LRUCache<string, { fingerprint: string; expiresAt: number }>({ max });
  return {
    async create(fingerprint) {
      const id = newId();
      sessions.set(hashOf(id), { fingerprint, expiresAt: now() + ttl });
      return id;
    },
    async fingerprintOf(id) {
      if (!plausible(id)) return undefined;
      const s = sessions.get(hashOf(id));
      if (s && s.expiresAt <= now()) sessions.delete(hashOf(id));
      return s && s.expiresAt > now() ? s.fingerprint : undefined;
    },
    async end(id) {
      sessions.delete(hashOf(id));
    },
  };
}
