import { readFileSync } from "node:fs";
import type { RedisClient } from "../redis.js";
import { LRUCache } from "lru-cache";
import { createKeys } from "../redis-keys.js";

const CHECK_LUA = new URL("./lua/auth-check-1.lua", import.meta.url);
const FAIL_LUA = new URL("./lua/auth-fail-1.lua", import.meta.url);

export type AuthFailureLimits = { max: number; windowMs: number };

/**
 * Failed authentication attempts per client: a window that opens at the client's first failure
 * and lasts `windowMs`. Once `max` failures are in it the client is locked out until it ends.
 */
export interface AuthFailureStore {
  /** Milliseconds the client is still locked out for; 0 when it is not. Rejects when the store is away. */
  lockedForMs(client: string): Promise<number>;
  /** Counts one failure; resolves with how long the client is now locked out for (0: not yet). Never rejects. */
  fail(client: string): Promise<number>;
}

/**
 * The count in Redis, shared by every replica: one key per client (`<prefix>authfail:{<ip>}`),
 * with the window as its TTL. Checks of one client that overlap share one round trip, so a burst
 * from one address costs one command, not one per request.
 */
export function createRedisAuthFailureStore(redis: RedisClient, opts: { prefix: string } & AuthFailureLimits): AuthFailureStore {
  if (!("ocwhAuthCheck" in redis)) {
    redis.defineCommand("ocwhAuthCheck", { numberOfKeys: 1, lua: readFileSync(CHECK_LUA, "utf8") });
    redis.defineCommand("ocwhAuthFail", { numberOfKeys: 1, lua: readFileSync(FAIL_LUA, "utf8") });
  }
  const cmds = redis as unknown as {
    ocwhAuthCheck: (key: string) => Promise<[number, number]>;
    ocwhAuthFail: (key: string, windowMs: number) => Promise<[number, number]>;
  };
  const keyOf = createKeys(opts.prefix).authFailures;
  const inFlight = new Map<string, Promise<number>>();
  return {
    lockedForMs(client) {
      let p = inFlight.get(client);
      if (!p) {
        p = cmds.ocwhAuthCheck(keyOf(client)).then(([n, ttl]) => (n >= opts.max ? Math.max(1, ttl) : 0));
        inFlight.set(client, p);
        const forget = () => inFlight.delete(client);
        p.then(forget, forget);
      }
      return p;
    },
    async fail(client) {
      try {
        const [n, ttl] = await cmds.ocwhAuthFail(keyOf(client), opts.windowMs);
        return n >= opts.max ? Math.max(1, ttl) : 0;
      } catch {
        return 0; // the request is refused (401) either way
      }
    },
  };
}

/** The same count in this process only (no Redis: one replica), in a Map capped at `maxTrackedKeys` (oldest evicted). */
export function createMemoryAuthFailureStore(opts: AuthFailureLimits & { maxTrackedKeys: number; now?: () => number }): AuthFailureStore {
  const now = opts.now ?? Date.now;
  const windows = new LRUCache<string, { endsAt: number; count: number }>({ max: opts.maxTrackedKeys });
  const live = (client: string) => {
    const w = windows.get(client);
    if (w && w.endsAt <= now()) windows.delete(client);
    return w && w.endsAt > now() ? w : undefined;
  };
  return {
    async lockedForMs(client) {
      const w = live(client);
      return w && w.count >= opts.max ? w.endsAt - now() : 0;
    },
    async fail(client) {
      const w = live(client) ?? { endsAt: now() + opts.windowMs, count: 0 };
      w.count++;
      windows.set(client, w);
      return w.count >= opts.max ? w.endsAt - now() : 0;
    },
  };
}
