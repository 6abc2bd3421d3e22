import { readFileSync } from "node:fs";
import type { RedisClient } from "../redis.js";
import type { EventSource } from "./gateway-events.js";
import { parkedId } from "./ids.js";
import { createKeys } from "../redis-keys.js";

/** What is needed to publish a parked event again. */
export type ParkedInput = { id: string; type: string; data: unknown; source?: EventSource | undefined; onlyEndpoint?: string | undefined };

export type ParkedEvent = {
  parkedId: string;
  eventId: string;
  type: string;
  source: EventSource;
  reason: string;
  firstParkedAt: number;
  parkedAt: number;
  /** How many times this event was parked (a replay that fails again parks it again). */
  times: number;
  /** False when the data could not be kept (it does not serialise, or is over 1 MiB). */
  replayable: boolean;
  onlyEndpoint?: string;
  data?: unknown;
  /** `memory` while Redis could not take the entry: this replica alone has it, until Redis is back. */
  storedIn: "redis" | "memory";
};

const MAX_DATA_BYTES = 1 << 20;
type Commands = { ocwhPark(...args: (string | number)[]): Promise<string[]> };

/**
 * Events that could not be stored or queued for a reason other than Redis being away (see
 * failure.ts), kept where an operator sees them (admin API, CLI, a gauge) until replayed,
 * discarded, or older than the retention. In Redis: a hash of entries and a sorted set by park
 * time (`<prefix>parked:{parked}:items`, `<prefix>parked:{parked}:at`: one hash tag, as the park
 * script and `remove` use both at once), at most `maxEntries`, the oldest dropped
 * beyond it. When Redis cannot take an entry either, it stays in this replica's memory (at most
 * `maxMemory`) and moves to Redis on a later park or list.
 *
 * @param opts.maxEntries entries kept in Redis (default 10,000)
 * @param opts.maxMemory entries kept in memory while Redis refuses them (default 1,000)
 * @param opts.onDrop called with entries removed for a cap, so they are counted and logged
 */
export function createParkedStore(
  redis: RedisClient,
  opts: {
    prefix: string;
    retentionMs: number;
    maxEntries?: number;
    maxMemory?: number;
    onDrop?: (dropped: { parkedId: string; eventId?: string | undefined }[]) => void;
  },
) {
  redis.defineCommand("ocwhPark", { numberOfKeys: 2, lua: readFileSync(new URL("./lua/park-2.lua", import.meta.url), "utf8") });
  const r = redis as unknown as Commands;
  const keys = createKeys(opts.prefix).parked;
  const maxEntries = opts.maxEntries ?? 10_000;
  const maxMemory = opts.maxMemory ?? 1_000;
  const memory = new Map<string, ParkedEvent>();
  let draining = false;

  const horizon = () => Date.now() - opts.retentionMs;
  const live = (e: ParkedEvent) => e.parkedAt >= horizon();
  const stored = ({ storedIn: _, ...e }: ParkedEvent) => JSON.stringify(e);
  const parse = (raw: string | null | undefined): ParkedEvent | undefined => (raw ? { ...(JSON.parse(raw) as ParkedEvent), storedIn: "redis" } : undefined);

  async function write(e: ParkedEvent) {
    const over = await r.ocwhPark(keys.items, keys.at, e.parkedId, stored(e), e.parkedAt, opts.retentionMs, maxEntries);
    if (over.length) opts.onDrop?.(over.map((id) => ({ parkedId: id })));
  }

  /** Moves entries parked in memory to Redis once it takes them again. */
  async function drain() {
    if (draining || memory.size === 0) return;
    draining = true;
    try {
      for (const [id, e] of memory) {
        if (live(e)) await write(e);
        memory.delete(id);
      }
    } catch {
      // Still refused: they stay in memory for the next try.
    } finally {
      draining = false;
    }
  }

  // What waits in memory goes to Redis as soon as Redis is back, not only on the next park or list.
  redis.on("ready", () => void drain());

  async function get(id: string): Promise<ParkedEvent | undefined> {
    const mine = memory.get(id);
    if (mine && live(mine)) return mine;
    const e = parse(await redis.hget(keys.items, id));
    return e && live(e) ? e : undefined;
  }

  return {
    keys,
    /** Parks an event (again: the entry keeps its first time and counts). Never throws. */
    async park(input: ParkedInput, reason: string): Promise<ParkedEvent> {
      const id = parkedId(input.id);
      const now = Date.now();
      const previous = await get(id).catch(() => memory.get(id));
      let data: string | undefined;
      let why = reason;
      try {
        data = JSON.stringify(input.data ?? {});
        if (data === undefined) why = `${reason} (the data does not serialise)`;
        else if (Buffer.byteLength(data) > MAX_DATA_BYTES) {
          data = undefined;
          why = `${reason} (the data is over 1 MiB and was not kept)`;
        }
      } catch (err) {
        why = `${reason} (the data does not serialise: ${(err as Error).message})`;
      }
      const entry: ParkedEvent = {
        parkedId: id,
        eventId: input.id,
        type: input.type,
        source: input.source ?? "api",
        reason: why,
        firstParkedAt: previous?.firstParkedAt ?? now,
        parkedAt: now,
        times: (previous?.times ?? 0) + 1,
        replayable: data !== undefined,
        ...(input.onlyEndpoint ? { onlyEndpoint: input.onlyEndpoint } : {}),
        ...(data !== undefined ? { data: JSON.parse(data) as unknown } : {}),
        storedIn: "redis",
      };
      try {
        await write(entry);
        memory.delete(id);
        void drain();
        return entry;
      } catch {
        memory.delete(id);
        memory.set(id, { ...entry, storedIn: "memory" });
        if (memory.size > maxMemory) {
          const [oldest, e] = memory.entries().next().value!;
          memory.delete(oldest);
          opts.onDrop?.([{ parkedId: oldest, eventId: e.eventId }]);
        }
        return { ...entry, storedIn: "memory" };
      }
    },
    get,
    /** Newest first, without their data (`get` has it); memory entries of this replica included. */
    async list(limit = 50): Promise<{ parked: Omit<ParkedEvent, "data">[]; total: number }> {
      await drain();
      const since = horizon();
      let fromRedis: ParkedEvent[] = [];
      let count = 0;
      try {
        const [ids, n] = await Promise.all([redis.zrevrangebyscore(keys.at, "+inf", since, "LIMIT", 0, limit), redis.zcount(keys.at, since, "+inf")]);
        const raws = ids.length ? await redis.hmget(keys.items, ...ids) : [];
        fromRedis = raws.map(parse).filter((e): e is ParkedEvent => e !== undefined);
        count = n;
      } catch (err) {
        // Redis away: what this replica holds in memory is still worth showing.
        if (memory.size === 0) throw err;
      }
      const mine = [...memory.values()].filter(live);
      const all = [...mine, ...fromRedis].sort((a, b) => b.parkedAt - a.parkedAt).slice(0, limit);
      return { parked: all.map(({ data: _, ...e }) => e), total: count + mine.length };
    },
    /** Removes an entry (replayed or discarded); false when there was none. */
    async remove(id: string): Promise<boolean> {
      const inMemory = memory.delete(id);
      try {
        const [[, n]] = (await redis.multi().hdel(keys.items, id).zrem(keys.at, id).exec()) as [[Error | null, number]];
        return inMemory || n === 1;
      } catch (err) {
        if (inMemory) return true;
        throw err;
      }
    },
    /** Entries still only in this replica's memory at shutdown: counted and logged as dropped. */
    close() {
      if (memory.size) opts.onDrop?.([...memory.values()].map((e) => ({ parkedId: e.parkedId, eventId: e.eventId })));
      memory.clear();
    },
    /** Parked events now (the gauge): Redis's within the retention, plus this replica's in memory. */
    async count(): Promise<number> {
      void drain();
      const mine = [...memory.values()].filter(live).length;
      return mine + (await redis.zcount(keys.at, horizon(), "+inf").catch(() => 0));
    },
  };
}

export type ParkedStore = ReturnType<typeof createParkedStore>;
