import { readFileSync } from "node:fs";
import type { RedisClient } from "../redis.js";
import type { AttemptRecord, DeliveryLog, DeliveryStatus } from "./log.js";
import { latencyBucket, minuteOf, STATS_BUCKET_TTL_MS } from "./stats.js";
import { createKeys } from "../redis-keys.js";

const lua = (name: string) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), "utf8");

export type ProbeReply = [1] | [0, "closed" | "circuit_open" | "circuit_probing", number];
type Commands = {
  ocwhRecord(...args: (string | number)[]): Promise<0 | 1 | 2>;
  ocwhProbe(...args: (string | number)[]): Promise<ProbeReply>;
  ocwhFinish(...args: (string | number)[]): Promise<["closed" | "open" | "opened", string | null]>;
};

/**
 * The egress's Redis scripts, one round trip each: `record` (an endpoint's pending record), `probe`
 * (claim the one attempt that tests an endpoint whose circuit is open) and `finish` (move the
 * breaker, log the attempt, count it in the endpoint's stats). A script call costs Redis ~15 µs
 * before it does anything here, and each command inside a few more, so each does the least it
 * can, and the usual attempt reads its gate with two plain commands (`gate`). How many attempts
 * run at once and how often is each lane's BullMQ concurrency and rate limit (lanes.ts).
 * An endpoint's health (disabled marker, breaker) is one hash: `endpointKeys.state`.
 */
export function createEgressScripts(redis: RedisClient, deliveryLog: DeliveryLog, prefix: string) {
  redis.defineCommand("ocwhRecord", { numberOfKeys: 4, lua: lua("record-4") });
  redis.defineCommand("ocwhProbe", { numberOfKeys: 1, lua: lua("probe-1") });
  redis.defineCommand("ocwhFinish", { numberOfKeys: 5, lua: lua("finish-5") });
  const r = redis as unknown as Commands;
  const k = deliveryLog.keys;
  const keys = createKeys(prefix);
  const ep = { state: keys.endpoint.state, event: keys.event };

  return {
    endpointKeys: ep,
    /**
     * Whether an event with this id is still kept: then a publish of it is a repeat (answered as a
     * duplicate), which creates no delivery.
     */
    eventKept: async (id: string) => (await redis.exists(ep.event(id))) === 1,
    /** Stores the event, first writer wins; true when this call stored it. */
    storeEvent: async (event: { id: string; json: string }) => (await redis.set(ep.event(event.id), event.json, "PX", deliveryLog.retentionMs, "NX")) === "OK",
    /**
     * One endpoint's pending record of an event (lua/record-4.lua, on the endpoint's hash tag):
     * created when `create` and missing. Flag: 0 disabled or not delivered, 1 needs its job, 2
     * already ended.
     */
    record(event: { id: string; type: string }, target: { deliveryId: string; endpoint: string }, createdAt: number, create: boolean) {
      // A lone surrogate would reach Redis as U+FFFD: the record then keeps the id's JSON as well,
      // so the log (and a replay, which finds the event by it) has the exact id.
      const lossy = /\p{Cs}/u.test(event.id);
      return r.ocwhRecord(
        ep.state(target.endpoint),
        k.record(target.deliveryId),
        k.byEndpoint(target.endpoint),
        k.byStatus(target.endpoint, "pending"),
        create ? 1 : 0,
        deliveryLog.ttl,
        createdAt,
        event.id,
        event.type,
        target.deliveryId,
        target.endpoint,
        lossy ? JSON.stringify(event.id) : "",
      );
    },
    /**
     * What an attempt needs first: the endpoint's disabled marker and breaker, and the event, in
     * two plain commands that leave in one write (redis.ts corks each turn's commands).
     */
    async gate(endpoint: string, eventId: string) {
      const [[disabled, state, openUntil], raw] = await Promise.all([
        redis.hmget(ep.state(endpoint), "disabled", "state", "openUntil"),
        redis.get(ep.event(eventId)),
      ]);
      return { disabled: disabled !== null, open: state === "open", openUntil: Number(openUntil ?? 0), raw };
    },
    /** Claims the probe of an open circuit whose cooldown has passed (lua/probe-1.lua). */
    probe(endpoint: { name: string; timeoutMs: number }) {
      return r.ocwhProbe(ep.state(endpoint.name), endpoint.timeoutMs + 5_000);
    },
    finish(
      a: { endpoint: string; ok: boolean; isProbe: boolean; breaker: { failureThreshold: number; cooldownMs: number; maxCooldownMs: number } },
      d: { id: string; attempt: AttemptRecord; from: DeliveryStatus; status: DeliveryStatus; lastStatus?: number | undefined; lastError?: string | undefined },
    ) {
      const n = a.endpoint;
      return r.ocwhFinish(
        ep.state(n),
        k.record(d.id),
        k.byStatus(n, d.from),
        k.byStatus(n, d.status),
        keys.endpoint.stats(n, minuteOf(d.attempt.at)),
        a.ok ? 1 : 0,
        a.breaker.failureThreshold,
        a.breaker.cooldownMs,
        a.breaker.maxCooldownMs,
        a.isProbe ? 1 : 0,
        d.attempt.attempt,
        JSON.stringify(d.attempt),
        d.status,
        d.attempt.at,
        d.lastStatus ?? "",
        d.lastError ?? "",
        d.attempt.nextAttemptAt ?? "",
        d.attempt.durationMs,
        d.attempt.errorClass ?? "",
        d.attempt.status !== undefined ? latencyBucket(d.attempt.durationMs) : "",
        STATS_BUCKET_TTL_MS,
      );
    },
  };
}

export type EgressScripts = ReturnType<typeof createEgressScripts>;
