import { Queue } from "bullmq";
import { scanKeys, type RedisClient } from "../redis.js";
import { lanePrefix, placeLanes } from "./shards.js";
import type { Endpoint } from "../config/endpoints.js";
import type { JobData } from "./context.js";

/** The one queue every delivery went through before lanes (kept drained for an upgrade). */
export const LEGACY_QUEUE = "deliveries";
/** Endpoint names are `[A-Za-z0-9][A-Za-z0-9._-]*`, so a lane's name never holds BullMQ's `:`. */
export const laneName = (endpoint: string) => `deliveries.${endpoint}`;

/** A BullMQ queue: its prefix (the service's BullMQ prefix and a shard's hash tag) and name. */
export type QueueRef = { prefix: string; name: string };

/** The job states a backlog is made of, and the ones the admin API and metrics count. */
export const JOB_STATES = ["waiting", "active", "delayed", "prioritized", "completed", "failed"] as const;

/**
 * Lanes: one BullMQ queue per endpoint. A queue is the unit BullMQ limits and orders, so giving
 * each endpoint its own is what keeps endpoints out of each other's way (docs/lanes.md has the
 * measurements behind the choice):
 * - the endpoint's concurrency and rate are the queue's global concurrency and rate limit, kept
 *   by BullMQ in Redis for every replica: a job the endpoint cannot take yet stays in its own
 *   wait list instead of being fetched and put back;
 * - an open circuit or a probe under way holds the whole lane (`hold`: BullMQ's manual rate
 *   limit), so 10,000 retries due to a dead endpoint wait in its lane, costing nothing, while the
 *   other lanes' workers carry on;
 * - each replica runs one worker per lane (worker.ts), so one endpoint's backlog can only ever
 *   use its own lane's slots.
 * Each lane's keys carry its shard's hash tag (shards.ts: `redis.shards` tags, each holding its
 * share of the lanes), so a lane lives on one Cluster master and the lanes spread over the masters.
 * A queue that holds jobs but is no lane here (the lane of an endpoint no longer configured, or
 * of an endpoint whose shard changed with `redis.shards`, and the single queue of earlier
 * versions) is drained by a worker of its own, which moves each job into its lane (engine.ts
 * `moveToLane`).
 */
export function createLanes(connection: RedisClient, bullPrefix: string, endpoints: ReadonlyMap<string, Endpoint>, shards: number) {
  const queues = new Map<string, Queue<JobData>>();
  const open = ({ prefix, name }: QueueRef) => {
    // Nothing here reads BullMQ's event stream (QueueEvents); it is kept short (default 10,000
    // entries per queue) so a lane costs Redis little memory.
    const q = new Queue<JobData>(name, { connection, prefix, streams: { events: { maxLen: 100 } } });
    q.on("error", () => {}); // surfaces as a failed command (503), not an unhandled event
    return q;
  };
  const placement = placeLanes([...endpoints.keys()], shards);
  const refOf = (endpoint: string): QueueRef => ({ prefix: lanePrefix(bullPrefix, placement.get(endpoint)!, shards), name: laneName(endpoint) });
  for (const name of endpoints.keys()) queues.set(name, open(refOf(name)));

  /** The lane of a configured endpoint. */
  function queue(endpoint: string): Queue<JobData> {
    const q = queues.get(endpoint);
    if (!q) throw new Error(`no lane for endpoint ${endpoint}`);
    return q;
  }

  return {
    queue,
    /** Where an endpoint's lane is. */
    ref: refOf,
    /**
     * Writes each lane's limits into its queue's meta (every replica writes the same values, so
     * the last writer changes nothing). Without a rate limit the lane still gets one far above any
     * real rate: BullMQ reads a manual hold (`hold`) only on a queue that has a limiter.
     */
    async configure() {
      await Promise.all(
        [...endpoints.values()].map(async (e) => {
          const q = queue(e.name);
          await q.setGlobalConcurrency(e.concurrency);
          const { max, duration } = limiterOf(e);
          await q.setGlobalRateLimit(max, duration);
        }),
      );
    },
    /** Holds an endpoint's lane for `ms`: no replica takes a job from it until then. */
    hold: (endpoint: string, ms: number) => queue(endpoint).rateLimit(Math.max(1, Math.round(ms))),
    /** Job counts by state, over every lane (or one endpoint's). */
    async counts(endpoint?: string): Promise<Record<string, number>> {
      const lanes = endpoint === undefined ? [...queues.values()] : [queue(endpoint)];
      const all = await Promise.all(lanes.map((q) => q.getJobCounts(...JOB_STATES)));
      const out: Record<string, number> = Object.fromEntries(JOB_STATES.map((s) => [s, 0]));
      for (const c of all) for (const s of JOB_STATES) out[s]! += c[s] ?? 0;
      return out;
    },
    /**
     * Queues that hold jobs but have no lane here: the single queue of earlier versions, and the
     * lanes of endpoints removed from the config or moved to another shard (found by the keys
     * BullMQ leaves, on every master).
     */
    async strays(redis: RedisClient): Promise<QueueRef[]> {
      const found = new Map<string, QueueRef>();
      for (const key of await scanKeys(redis, `${bullPrefix}:*deliveries*:meta`)) {
        const m = /^(.*):(deliveries(?:\.[^:]*)?):meta$/.exec(key);
        if (m) found.set(key, { prefix: m[1]!, name: m[2]! });
      }
      const mine = new Set([...endpoints.keys()].map((e) => `${refOf(e).prefix}:${laneName(e)}`));
      const out: QueueRef[] = [];
      for (const ref of found.values()) {
        if (mine.has(`${ref.prefix}:${ref.name}`)) continue;
        const q = open(ref);
        const c = await q.getJobCounts("waiting", "active", "delayed", "prioritized");
        await q.close();
        if (Object.values(c).some((n) => n > 0)) out.push(ref);
      }
      return out;
    },
    async close() {
      await Promise.all([...queues.values()].map((q) => q.close()));
    },
  };
}

export type Lanes = ReturnType<typeof createLanes>;

/**
 * An endpoint's `rateLimit.perSecond` as BullMQ's (max jobs, per duration): whole numbers, the
 * same average rate, in windows of about a tenth of a second (at least one job a window), so a
 * lane at its rate sends a steady stream, not a second's worth at once: a burst of 250 deliveries
 * at the top of each second made every other lane's deliveries wait behind it on a 2-core machine.
 */
export function limiterOf(e: Pick<Endpoint, "rateLimit">): { max: number; duration: number } {
  const perSecond = e.rateLimit?.perSecond;
  if (perSecond === undefined) return { max: 1_000_000, duration: 1_000 };
  const max = Math.max(1, Math.round(perSecond / 10));
  return { max, duration: Math.max(1, Math.round((1_000 * max) / perSecond)) };
}
