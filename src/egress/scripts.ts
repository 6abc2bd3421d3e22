import { readFileSync } from "node:fs";
import type { RedisClient } from "../redis.js";
import type { AttemptRecord, DeliveryLog, DeliveryStatus } from "./log.js";
import { latencyBucket, minuteOf, STATS_BUCKET_TTL_MS } from "./stats.js";
import { createKeys } from "../redis-keys.js";
import { turnBatcher } from "../util/turn-batch.js";

const lua = (name: string) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), "utf8");

export type ProbeReply = [1] | [0, "closed" | "circuit_open" | "circuit_probing", number];
type Failed = ["!", string];
type FinishReply = ["closed" | "open" | "opened", string | null];
type Commands = {
  ocwhRecordBatch(...args: (string | number)[]): Promise<(0 | 1 | 2 | Failed)[]>;
  ocwhProbe(...args: (string | number)[]): Promise<ProbeReply>;
  ocwhFinishBatch(...args: (string | number)[]): Promise<(FinishReply | Failed)[]>;
  ocwhExistsEach(...args: (string | number)[]): Promise<(0 | 1)[]>;
  ocwhStoreEach(...args: (string | number)[]): Promise<(0 | 1)[]>;
};
/** A batch script's answer for one item: its result, or the error it failed with alone. */
const itemResult = <R>(r: R | Failed): R | Error => (Array.isArray(r) && r[0] === "!" ? new Error(String(r[1])) : (r as R));

type FinishArgs = [
  a: { endpoint: string; ok: boolean; isProbe: boolean; breaker: { failureThreshold: number; cooldownMs: number; maxCooldownMs: number } },
  d: { id: string; attempt: AttemptRecord; from: DeliveryStatus; status: DeliveryStatus; lastStatus?: number | undefined; lastError?: string | undefined },
];

/**
 * The egress's Redis scripts: `record` (an endpoint's pending record), `probe` (claim the one
 * attempt that tests an endpoint whose circuit is open) and `finish` (move the breaker, log the
 * attempt, count it in the endpoint's stats). A script call costs Redis ~15 µs before it does
 * anything here, and ioredis a Command object, so `record`, `finish` and the gate's reads gather
 * what one event-loop turn asks of an endpoint into one call (util/turn-batch.ts): under load a
 * turn settles many attempts, and a batch script reads the endpoint's breaker once for them all.
 * Every batch keeps to its endpoint's hash tag (one slot on a Redis Cluster); the publish's and
 * the gate's event reads and writes are batched too, except on a Cluster (each event its own
 * slot). How many attempts run at once and how often is each lane's BullMQ concurrency and rate
 * limit (lanes.ts). An endpoint's health (disabled marker, breaker) is one hash:
 * `endpointKeys.state`.
 */
export function createEgressScripts(redis: RedisClient, deliveryLog: DeliveryLog, prefix: string) {
  // Key counts vary with the batch: given first in each call.
  redis.defineCommand("ocwhRecordBatch", { lua: lua("record-batch") });
  redis.defineCommand("ocwhProbe", { numberOfKeys: 1, lua: lua("probe-1") });
  redis.defineCommand("ocwhFinishBatch", { lua: lua("finish-batch") });
  redis.defineCommand("ocwhExistsEach", { lua: lua("exists-each") });
  redis.defineCommand("ocwhStoreEach", { lua: lua("store-each") });
  const r = redis as unknown as Commands;
  const k = deliveryLog.keys;
  const keys = createKeys(prefix);
  const ep = { state: keys.endpoint.state, event: keys.event };

  type RecordItem = { event: { id: string; type: string }; deliveryId: string; createdAt: number; create: boolean };
  const recordBatch = turnBatcher<RecordItem, 0 | 1 | 2>(async (endpoint, items) => {
    const args: (string | number)[] = [3 + items.length, ep.state(endpoint), k.byEndpoint(endpoint), k.byStatus(endpoint, "pending")];
    for (const it of items) args.push(k.record(it.deliveryId));
    args.push(deliveryLog.ttl, endpoint);
    for (const it of items) {
      // A lone surrogate would reach Redis as U+FFFD: the record then keeps the id's JSON as well,
      // so the log (and a replay, which finds the event by it) has the exact id.
      const lossy = /\p{Cs}/u.test(it.event.id);
      args.push(it.create ? 1 : 0, it.createdAt, it.event.id, it.event.type, it.deliveryId, lossy ? JSON.stringify(it.event.id) : "");
    }
    return (await r.ocwhRecordBatch(...args)).map(itemResult);
  });

  // Grouped by endpoint and minute (the stats bucket): one call per group and turn.
  const finishBatch = turnBatcher<FinishArgs, FinishReply>(async (_group, items) => {
    const [first] = items[0]!;
    const n = first.endpoint;
    const { breaker } = first;
    const args: (string | number)[] = [2 + 3 * items.length, ep.state(n), keys.endpoint.stats(n, minuteOf(items[0]![1].attempt.at))];
    for (const [, d] of items) args.push(k.record(d.id), k.byStatus(n, d.from), k.byStatus(n, d.status));
    args.push(breaker.failureThreshold, breaker.cooldownMs, breaker.maxCooldownMs, STATS_BUCKET_TTL_MS);
    for (const [a, d] of items)
      args.push(
        a.ok ? 1 : 0,
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
      );
    return (await r.ocwhFinishBatch(...args)).map(itemResult);
  });

  // Events, by id: on one Redis (or Sentinel's primary) a turn's events share one command; on a
  // Cluster each event's key has a slot of its own, so each goes alone (one plain command).
  const eventGroup = redis.isCluster ? (id: string) => id : () => "";
  const readEvent = turnBatcher<string, string | null>((_group, ids) =>
    ids.length === 1 ? redis.get(ep.event(ids[0]!)).then((v) => [v]) : redis.mget(ids.map((id) => ep.event(id))),
  );
  const eventKept = turnBatcher<string, boolean>(async (_group, ids) =>
    ids.length === 1
      ? [(await redis.exists(ep.event(ids[0]!))) === 1]
      : (await r.ocwhExistsEach(ids.length, ...ids.map((id) => ep.event(id)))).map((x) => x === 1),
  );
  const storeEvent = turnBatcher<{ id: string; json: string }, boolean>(async (_group, events) =>
    events.length === 1
      ? [(await redis.set(ep.event(events[0]!.id), events[0]!.json, "PX", deliveryLog.retentionMs, "NX")) === "OK"]
      : (await r.ocwhStoreEach(events.length, ...events.map((e) => ep.event(e.id)), deliveryLog.retentionMs, ...events.map((e) => e.json))).map((x) => x === 1),
  );
  // The gate's health read: an endpoint's, once per turn for all its attempts.
  const readHealth = turnBatcher<null, (string | null)[]>(async (endpoint, items) => {
    const health = await redis.hmget(ep.state(endpoint), "disabled", "state", "openUntil");
    return items.map(() => health);
  });

  return {
    endpointKeys: ep,
    /**
     * Whether an event with this id is still kept: then a publish of it is a repeat (answered as a
     * duplicate), which creates no delivery.
     */
    eventKept: (id: string) => eventKept(eventGroup(id), id),
    /** Stores the event, first writer wins; true when this call stored it. */
    storeEvent: (event: { id: string; json: string }) => storeEvent(eventGroup(event.id), event),
    /**
     * One endpoint's pending record of an event (lua/record-batch.lua, on the endpoint's hash tag,
     * gathered with the turn's other records of that endpoint): created when `create` and
     * missing. Flag: 0 disabled or not delivered, 1 needs its job, 2 already ended.
     */
    record(event: { id: string; type: string }, target: { deliveryId: string; endpoint: string }, createdAt: number, create: boolean) {
      return recordBatch(target.endpoint, { event, deliveryId: target.deliveryId, createdAt, create });
    },
    /**
     * What an attempt needs first: the endpoint's disabled marker and breaker, and the event, read
     * with plain commands shared by the turn's attempts (above) that leave in one write (redis.ts
     * corks each turn's commands).
     */
    async gate(endpoint: string, eventId: string) {
      const [[disabled, state, openUntil], raw] = await Promise.all([readHealth(endpoint, null), readEvent(eventGroup(eventId), eventId)]);
      return { disabled: disabled !== null, open: state === "open", openUntil: Number(openUntil ?? 0), raw };
    },
    /** Claims the probe of an open circuit whose cooldown has passed (lua/probe-1.lua). */
    probe(endpoint: { name: string; timeoutMs: number }) {
      return r.ocwhProbe(ep.state(endpoint.name), endpoint.timeoutMs + 5_000);
    },
    /** Ends an attempt (lua/finish-batch.lua, gathered with the turn's other attempts to its endpoint). */
    finish(...args: FinishArgs) {
      return finishBatch(`${args[0].endpoint}\n${minuteOf(args[1].attempt.at)}`, args);
    },
    /** Resolves once the attempt ends asked for so far have been sent on the connection (not answered). */
    finishesSent: () => finishBatch.sent(),
  };
}

export type EgressScripts = ReturnType<typeof createEgressScripts>;
