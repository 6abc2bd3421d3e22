import type { Redis } from "ioredis";
import { isDeliveryId } from "./ids.js";

export type DeliveryStatus = "pending" | "delivered" | "failed";

export type AttemptRecord = {
  attempt: number;
  trigger: "scheduled" | "manual";
  at: number;
  status?: number;
  errorClass?: string;
  error?: string;
  durationMs: number;
  responseBody: string;
  nextAttemptAt?: number;
};

export type DeliveryRecord = {
  id: string;
  eventId: string;
  eventType: string;
  endpoint: string;
  status: DeliveryStatus;
  attempts: number;
  createdAt: number;
  updatedAt: number;
  lastStatus?: number;
  lastError?: string;
  nextAttemptAt?: number;
};

export type DeliveryRecordWithAttempts = DeliveryRecord & { attemptLog: AttemptRecord[] };

/**
 * The delivery log in Redis. One hash per delivery holds its state and its attempts (fields `a1`,
 * `a2`, …, one JSON each). Per endpoint, sorted sets index the deliveries: `all` by publish time,
 * and one per status by last update, so "failed deliveries of X since T" is one range query; a
 * query across endpoints merges the configured endpoints' sets. Records expire after
 * `retentionMs`; index entries older than that are trimmed (`trim`). Records are written by the
 * publish and finish scripts (scripts.ts); this module names the keys and reads them. Delivery ids
 * are built by ids.ts (printable ASCII, no `:`); an id of any other form is looked up nowhere.
 */
export function createDeliveryLog(redis: Redis, opts: { prefix: string; retentionMs: number; endpoints: readonly string[] }) {
  const k = {
    record: (id: string) => `${opts.prefix}delivery:${id}`,
    byEndpoint: (e: string) => `${opts.prefix}deliveries:${e}:all`,
    byStatus: (e: string, s: DeliveryStatus) => `${opts.prefix}deliveries:${e}:${s}`,
  };
  const STATUSES: DeliveryStatus[] = ["pending", "delivered", "failed"];
  const ttl = Math.ceil(opts.retentionMs / 1000);

  /** Ends a delivery that cannot be attempted (endpoint disabled, event expired, no secret). */
  async function markFailed(id: string, endpoint: string, reason: string) {
    const now = Date.now();
    const m = redis.multi();
    m.hset(k.record(id), { status: "failed", updatedAt: now, lastError: reason, nextAttemptAt: "" });
    m.zrem(k.byStatus(endpoint, "pending"), id);
    m.zrem(k.byStatus(endpoint, "delivered"), id);
    m.zadd(k.byStatus(endpoint, "failed"), now, id);
    await m.exec();
  }

  /** Drops index entries older than the retention (their records have expired). */
  async function trim(endpoint: string) {
    const horizon = Date.now() - opts.retentionMs;
    const m = redis.multi();
    for (const key of [k.byEndpoint(endpoint), ...STATUSES.map((s) => k.byStatus(endpoint, s))]) m.zremrangebyscore(key, "-inf", horizon);
    await m.exec();
  }

  /** Attempts made so far and the status (for a manual attempt), undefined for an unknown delivery. */
  async function state(id: string): Promise<{ attempts: number; status: DeliveryStatus } | undefined> {
    if (!isDeliveryId(id)) return undefined;
    const [attempts, status] = await redis.hmget(k.record(id), "attempts", "status");
    return attempts === null ? undefined : { attempts: Number(attempts), status: status as DeliveryStatus };
  }

  async function get(id: string): Promise<DeliveryRecordWithAttempts | undefined> {
    if (!isDeliveryId(id)) return undefined;
    const h = await redis.hgetall(k.record(id));
    if (!h.id) return undefined;
    const num = (v: string | undefined) => (v ? Number(v) : undefined);
    const attemptLog: AttemptRecord[] = [];
    for (let n = 1; h[`a${n}`] !== undefined; n++) attemptLog.push(JSON.parse(h[`a${n}`]!) as AttemptRecord);
    return {
      id: h.id,
      eventId: h.eventIdJson ? (JSON.parse(h.eventIdJson) as string) : h.eventId!,
      eventType: h.eventType!,
      endpoint: h.endpoint!,
      status: h.status as DeliveryStatus,
      attempts: Number(h.attempts),
      createdAt: Number(h.createdAt),
      updatedAt: Number(h.updatedAt),
      ...(h.lastStatus ? { lastStatus: num(h.lastStatus)! } : {}),
      ...(h.lastError ? { lastError: h.lastError } : {}),
      ...(h.nextAttemptAt ? { nextAttemptAt: num(h.nextAttemptAt)! } : {}),
      attemptLog,
    };
  }

  /**
   * Delivery ids, newest first: with a status, by last update; without, by publish time. Filtered
   * by endpoint (one range query) or merged across the configured endpoints; `since` in ms.
   */
  async function list(q: { status?: DeliveryStatus; endpoint?: string; since?: number; limit?: number }): Promise<string[]> {
    const limit = q.limit ?? 50;
    const names = q.endpoint ? [q.endpoint] : opts.endpoints;
    const ranges = await Promise.all(
      names.map((e) => redis.zrevrangebyscore(q.status ? k.byStatus(e, q.status) : k.byEndpoint(e), "+inf", q.since ?? "-inf", "WITHSCORES", "LIMIT", 0, limit)),
    );
    const merged: [string, number][] = [];
    for (const r of ranges) for (let i = 0; i < r.length; i += 2) merged.push([r[i]!, Number(r[i + 1])]);
    if (names.length > 1) merged.sort((a, b) => b[1] - a[1]);
    return merged.slice(0, limit).map(([id]) => id);
  }

  return { keys: k, ttl, retentionMs: opts.retentionMs, markFailed, trim, state, get, list };
}

export type DeliveryLog = ReturnType<typeof createDeliveryLog>;
