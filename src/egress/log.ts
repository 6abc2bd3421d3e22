import type { Redis } from "ioredis";

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
 * The delivery log in Redis: one hash per delivery, its attempts in a list, and sorted sets
 * (scored by last update) per status and per endpoint, so "failed deliveries of X since T" is a
 * range query. Every key expires after `retentionMs`. Records are written by the publish and
 * finish scripts (scripts.ts); this module names the keys and reads them.
 */
export function createDeliveryLog(redis: Redis, opts: { prefix: string; retentionMs: number }) {
  const k = {
    record: (id: string) => `${opts.prefix}delivery:${id}`,
    attempts: (id: string) => `${opts.prefix}delivery:${id}:attempts`,
    byStatus: (s: DeliveryStatus) => `${opts.prefix}deliveries:status:${s}`,
    byEndpoint: (e: string) => `${opts.prefix}deliveries:endpoint:${e}`,
    all: `${opts.prefix}deliveries:all`,
  };
  const ttl = Math.ceil(opts.retentionMs / 1000);

  /** Ends a delivery that cannot be attempted (endpoint disabled, event expired, no secret). */
  async function markFailed(id: string, endpoint: string, reason: string) {
    const now = Date.now();
    const m = redis.multi();
    m.hset(k.record(id), { status: "failed", updatedAt: now, lastError: reason, nextAttemptAt: "" });
    m.expire(k.record(id), ttl);
    m.zrem(k.byStatus("pending"), id);
    m.zrem(k.byStatus("delivered"), id);
    m.zadd(k.byStatus("failed"), now, id);
    m.zadd(k.byEndpoint(endpoint), now, id);
    m.zadd(k.all, now, id);
    await m.exec();
  }

  /** Attempts made so far (for numbering a manual attempt), undefined for an unknown delivery. */
  async function attempts(id: string): Promise<number | undefined> {
    const v = await redis.hget(k.record(id), "attempts");
    return v === null ? undefined : Number(v);
  }

  async function get(id: string): Promise<DeliveryRecordWithAttempts | undefined> {
    const [h, list] = await Promise.all([redis.hgetall(k.record(id)), redis.lrange(k.attempts(id), 0, -1)]);
    if (!h.id) return undefined;
    const num = (v: string | undefined) => (v ? Number(v) : undefined);
    return {
      id: h.id,
      eventId: h.eventId!,
      eventType: h.eventType!,
      endpoint: h.endpoint!,
      status: h.status as DeliveryStatus,
      attempts: Number(h.attempts),
      createdAt: Number(h.createdAt),
      updatedAt: Number(h.updatedAt),
      ...(h.lastStatus ? { lastStatus: num(h.lastStatus)! } : {}),
      ...(h.lastError ? { lastError: h.lastError } : {}),
      ...(h.nextAttemptAt ? { nextAttemptAt: num(h.nextAttemptAt)! } : {}),
      attemptLog: list.map((x) => JSON.parse(x) as AttemptRecord),
    };
  }

  /** Delivery ids, newest first, filtered by status and/or endpoint, updated since `since`. */
  async function list(q: { status?: DeliveryStatus; endpoint?: string; since?: number; limit?: number }): Promise<string[]> {
    const limit = q.limit ?? 50;
    const key = q.status ? k.byStatus(q.status) : q.endpoint ? k.byEndpoint(q.endpoint) : k.all;
    const ids = await redis.zrevrangebyscore(key, "+inf", q.since ?? "-inf", "LIMIT", 0, q.status && q.endpoint ? limit * 20 : limit);
    if (!(q.status && q.endpoint)) return ids;
    const inEndpoint = await Promise.all(ids.map((id) => redis.zscore(k.byEndpoint(q.endpoint!), id)));
    return ids.filter((_, i) => inEndpoint[i] !== null).slice(0, limit);
  }

  return { keys: k, ttl, retentionMs: opts.retentionMs, markFailed, attempts, get, list };
}

export type DeliveryLog = ReturnType<typeof createDeliveryLog>;
