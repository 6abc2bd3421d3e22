import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";
import type { AttemptRecord, DeliveryLog, DeliveryStatus } from "./log.js";
import { latencyBucket, minuteOf, STATS_BUCKET_TTL_MS } from "./stats.js";
import { createKeys } from "../redis-keys.js";

const lua = (name: string) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), "utf8");

export type GateReply = [1, 0 | 1, string | null] | [0, "disabled" | "circuit_open" | "circuit_probing" | "concurrency" | "rate_limited", number];
type Commands = {
  ocwhPublish(numKeys: number, ...args: (string | number)[]): Promise<number[]>;
  ocwhGate(...args: (string | number)[]): Promise<GateReply>;
  ocwhFinish(...args: (string | number)[]): Promise<["closed" | "open" | "opened", string | null]>;
};

/**
 * The egress's Redis scripts, one round trip each: `publish` (event + pending records),
 * `gate` (admit an attempt: disabled, circuit, concurrency, rate; returns the event) and `finish`
 * (free the lease, move the breaker, log the attempt, count it in the endpoint's stats). A script call costs Redis ~15 µs before it
 * does anything here, and each command inside a few more, so each does the least it can.
 * An endpoint's health (disabled marker, breaker) is one hash: `endpointKeys.state`.
 */
export function createEgressScripts(redis: Redis, deliveryLog: DeliveryLog, prefix: string) {
  redis.defineCommand("ocwhPublish", { lua: lua("publish") });
  redis.defineCommand("ocwhGate", { numberOfKeys: 4, lua: lua("gate-4") });
  redis.defineCommand("ocwhFinish", { numberOfKeys: 6, lua: lua("finish-6") });
  const r = redis as unknown as Commands;
  const k = deliveryLog.keys;
  const keys = createKeys(prefix);
  const ep = { state: keys.endpoint.state, inflight: keys.endpoint.inflight, rate: keys.endpoint.rate, event: keys.event };

  return {
    endpointKeys: ep,
    /**
     * Stores the event and its records unless an event with this id is still kept. `isNew` false
     * is a repeat (answered as a duplicate; it creates no delivery). Flags per target: 0 disabled
     * or not delivered, 1 needs its job, 2 already ended. `repair` creates missing records of a
     * kept event too (the replay of a parked event, whose first publish may have stopped half way).
     */
    async publish(event: { id: string; type: string; json: string }, targets: { deliveryId: string; endpoint: string }[], createdAt: number, repair = false) {
      const keys = [ep.event(event.id)];
      // A lone surrogate would reach Redis as U+FFFD: the record then keeps the id's JSON as well,
      // so the log (and a replay, which finds the event by it) has the exact id.
      const lossy = /\p{Cs}/u.test(event.id);
      const args: (string | number)[] = [
        event.json,
        deliveryLog.retentionMs,
        deliveryLog.ttl,
        createdAt,
        event.id,
        event.type,
        repair ? 1 : 0,
        lossy ? JSON.stringify(event.id) : "",
      ];
      for (const t of targets) {
        keys.push(ep.state(t.endpoint), k.record(t.deliveryId), k.byEndpoint(t.endpoint), k.byStatus(t.endpoint, "pending"));
        args.push(t.deliveryId, t.endpoint);
      }
      const [isNew, ...flags] = await r.ocwhPublish(keys.length, ...keys, ...args);
      return { isNew: isNew === 1, flags };
    },
    gate(endpoint: { name: string; timeoutMs: number; concurrency: number; rateLimit?: { perSecond: number } | undefined }, eventId: string, leaseId: string) {
      const interval = endpoint.rateLimit ? 1000 / endpoint.rateLimit.perSecond : 0;
      const n = endpoint.name;
      const leaseMs = endpoint.timeoutMs + 5_000;
      return r.ocwhGate(
        ep.state(n),
        ep.inflight(n),
        ep.rate(n),
        ep.event(eventId),
        leaseId,
        leaseMs,
        endpoint.concurrency,
        interval,
        Math.max(0, 1000 - interval),
        leaseMs,
      );
    },
    finish(
      a: { endpoint: string; leaseId: string; ok: boolean; isProbe: boolean; breaker: { failureThreshold: number; cooldownMs: number; maxCooldownMs: number } },
      d: { id: string; attempt: AttemptRecord; from: DeliveryStatus; status: DeliveryStatus; lastStatus?: number | undefined; lastError?: string | undefined },
    ) {
      const n = a.endpoint;
      return r.ocwhFinish(
        ep.state(n),
        ep.inflight(n),
        k.record(d.id),
        k.byStatus(n, d.from),
        k.byStatus(n, d.status),
        keys.endpoint.stats(n, minuteOf(d.attempt.at)),
        a.leaseId,
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
