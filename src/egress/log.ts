import type { RedisClient } from "../redis.js";
import { normaliseErrorClass } from "./attempt-detail.js";
import { deliveryId, isDeliveryId } from "./ids.js";
import { createKeys } from "../redis-keys.js";

export type DeliveryStatus = "pending" | "delivered" | "failed";

/** One attempt as logged (attempt-detail.ts bounds each part: ~6 KB at most). */
export type AttemptRecord = {
  attempt: number;
  trigger: "scheduled" | "manual";
  at: number;
  status?: number;
  /** One of ERROR_CLASSES (attempt-detail.ts); absent on a success. */
  errorClass?: string;
  error?: string;
  durationMs: number;
  /** The request headers, credentials masked (absent on records from before they were kept). */
  requestHeaders?: Record<string, string>;
  /** The receiver's headers, masked and bounded; absent when nothing answered. */
  responseHeaders?: Record<string, string>;
  /** The first KiB of the response body. */
  responseBody: string;
  responseTruncated?: boolean;
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

/** A record without its attempts, plus the last attempt's duration and class (the lists' row). */
export type DeliverySummary = DeliveryRecord & { lastDurationMs: number | null; lastErrorClass: string | null };

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
export function createDeliveryLog(redis: RedisClient, opts: { prefix: string; retentionMs: number; endpoints: readonly string[] }) {
  const k: { record: (id: string) => string; byEndpoint: (e: string) => string; byStatus: (e: string, s: DeliveryStatus) => string } = createKeys(
    opts.prefix,
  ).delivery;
  const STATUSES: DeliveryStatus[] = ["pending", "delivered", "failed"];
  const ttl = Math.ceil(opts.retentionMs / 1000);

  /**
   * Ends a delivery that cannot be attempted (endpoint disabled, event expired, no secret). `endpoint`
   * is the one the id names (ids.ts), so the record and the indexes share its hash tag: one slot.
   */
  async function markFailed(id: string, endpoint: string, reason: string) {
    const now = Date.now();
    const m = redis.multi();
    m.hset(k.record(id), { status: "failed", updatedAt: now, lastError: reason, nextAttemptAt: "" });
    m.zrem(k.byStatus(endpoint, "pending"), id);
    m.zrem(k.byStatus(endpoint, "delivered"), id);
    m.zadd(k.byStatus(endpoint, "failed"), now, id);
    await m.exec();
  }

  /** Drops index entries older than the retention (their records have expired): one endpoint's keys, one slot. */
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
    const attemptLog: AttemptRecord[] = [];
    for (let n = 1; h[`a${n}`] !== undefined; n++) {
      const a = JSON.parse(h[`a${n}`]!) as AttemptRecord;
      if (a.errorClass !== undefined) a.errorClass = normaliseErrorClass(a.errorClass);
      attemptLog.push(a);
    }
    return { ...fields(h), attemptLog };
  }

  const SUMMARY_FIELDS = [
    "id",
    "eventId",
    "eventIdJson",
    "eventType",
    "endpoint",
    "status",
    "attempts",
    "createdAt",
    "updatedAt",
    "lastStatus",
    "lastError",
    "nextAttemptAt",
    "lastDurationMs",
    "lastErrorClass",
  ] as const;

  /**
   * Rows for the lists and the dashboard: the record's own fields only (HMGET), never its
   * attempts, so a page of 50 reads 50 small replies however many attempts each has. Unknown or
   * expired ids are left out.
   */
  async function summaries(ids: readonly string[]): Promise<DeliverySummary[]> {
    const rows = await Promise.all(ids.filter(isDeliveryId).map((id) => redis.hmget(k.record(id), ...SUMMARY_FIELDS)));
    const out: DeliverySummary[] = [];
    for (const row of rows) {
      if (!row[0]) continue;
      const h = Object.fromEntries(SUMMARY_FIELDS.map((f, i) => [f, row[i] ?? undefined])) as Record<string, string | undefined>;
      out.push({
        ...fields(h),
        lastDurationMs: h.lastDurationMs ? Number(h.lastDurationMs) : null,
        lastErrorClass: normaliseErrorClass(h.lastErrorClass || undefined) ?? null,
      });
    }
    return out;
  }

  /**
   * A delivery by its id, or an event's deliveries by the event id: a delivery id is computed
   * from the event id and the endpoint name (ids.ts), so an event's deliveries are one lookup per
   * configured endpoint, no index. Undefined when neither is known.
   */
  async function find(
    id: string,
  ): Promise<{ kind: "delivery"; delivery: DeliveryRecordWithAttempts } | { kind: "event"; eventId: string; deliveries: DeliverySummary[] } | undefined> {
    const one = await get(id);
    if (one) return { kind: "delivery", delivery: one };
    const deliveries = await summaries(opts.endpoints.map((e) => deliveryId(id, e)));
    return deliveries.length ? { kind: "event", eventId: id, deliveries } : undefined;
  }

  function fields(h: Record<string, string | undefined>): DeliveryRecord {
    const num = (v: string | undefined) => (v ? Number(v) : undefined);
    return {
      id: h.id!,
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
    };
  }

  /**
   * Delivery ids, newest first: with a status, by last update; without, by publish time. Filtered
   * by endpoint (one range query) or merged across the configured endpoints; `since` and `until`
   * in ms, both inclusive.
   */
  async function list(q: { status?: DeliveryStatus; endpoint?: string; since?: number; until?: number; limit?: number }): Promise<string[]> {
    const limit = q.limit ?? 50;
    const names = q.endpoint ? [q.endpoint] : opts.endpoints;
    const ranges = await Promise.all(
      names.map((e) =>
        redis.zrevrangebyscore(q.status ? k.byStatus(e, q.status) : k.byEndpoint(e), q.until ?? "+inf", q.since ?? "-inf", "WITHSCORES", "LIMIT", 0, limit),
      ),
    );
    const merged: [string, number][] = [];
    for (const r of ranges) for (let i = 0; i < r.length; i += 2) merged.push([r[i]!, Number(r[i + 1])]);
    if (names.length > 1) merged.sort((a, b) => b[1] - a[1]);
    return merged.slice(0, limit).map(([id]) => id);
  }

  /**
   * An endpoint's backlog: deliveries not yet delivered nor failed (first attempts waiting,
   * retries scheduled, attempts in flight), and since when the oldest has waited, from its last
   * update (publish or last attempt). Two commands on the pending index, whatever its size.
   */
  async function backlog(endpoint: string, now = Date.now()): Promise<{ pending: number; oldestAgeMs: number }> {
    const key = k.byStatus(endpoint, "pending");
    const [pending, oldest] = await Promise.all([redis.zcard(key), redis.zrange(key, 0, "0", "WITHSCORES")]);
    return { pending, oldestAgeMs: oldest.length === 2 ? Math.max(0, now - Number(oldest[1])) : 0 };
  }

  return { keys: k, backlog, ttl, retentionMs: opts.retentionMs, markFailed, trim, state, get, summaries, find, list };
}

export type DeliveryLog = ReturnType<typeof createDeliveryLog>;
