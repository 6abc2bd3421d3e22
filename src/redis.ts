import { Redis } from "ioredis";
import { StartupError } from "./errors.js";
import type { Logger } from "./log.js";
import { corkUntilTurnEnds } from "./util/cork.js";
import { exponentialDelay } from "./util/backoff.js";

/**
 * Opens a Redis connection that fails fast: no offline queue, one retry per command. The commands
 * of every request handled in one event-loop turn leave in one write (`batchTurnWrites`), which
 * saves a system call per command under load.
 */
export async function connectRedis(url: string, opts: { connectTimeoutMs?: number } = {}): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: opts.connectTimeoutMs ?? 5_000,
    retryStrategy: (times) => exponentialDelay(times, { baseMs: 50, maxMs: 2_000 }),
  });
  batchTurnWrites(redis);
  redis.on("error", () => {}); // connection errors surface as failed commands (503), not crashes
  await redis.connect();
  return redis;
}

/**
 * Corks the connection's socket for the rest of the event-loop turn whenever a command is sent.
 * ioredis's own auto-pipelining batches too, but it keeps one pipeline in flight at a time: the
 * commands of the next turn wait for the previous batch's answer (a round trip of latency), and
 * the requests they belong to live long enough to be promoted out of V8's young generation,
 * which made every scavenge under load 3× longer (bench:ingress with BENCH_DEBUG).
 */
export function batchTurnWrites(redis: Redis): Redis {
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = (command, stream) => {
    corkUntilTurnEnds(redis.stream);
    return send(command, stream);
  };
  return redis;
}

/**
 * BullMQ and the delivery log need every key they write to stay: a Redis that evicts any key under
 * memory pressure (`allkeys-*`) would drop queued deliveries, so startup refuses it; `volatile-*`
 * evicts keys with a TTL (events, delivery records) and gets a warning, as does a Redis without
 * persistence. A Redis that hides CONFIG (some managed ones) is trusted with a warning.
 */
export async function checkRedisPolicy(redis: Redis, log: Logger): Promise<void> {
  let conf: { policy: string; aof: string; save: string };
  try {
    const [policy, aof, save] = await Promise.all([
      redis.config("GET", "maxmemory-policy") as Promise<string[]>,
      redis.config("GET", "appendonly") as Promise<string[]>,
      redis.config("GET", "save") as Promise<string[]>,
    ]);
    conf = { policy: policy[1] ?? "", aof: aof[1] ?? "", save: save[1] ?? "" };
  } catch {
    log.warn("redis: CONFIG GET is not allowed; cannot check maxmemory-policy (it must be noeviction)");
    return;
  }
  if (conf.policy.startsWith("allkeys-")) {
    throw new StartupError(
      `redis.url: Redis's maxmemory-policy is ${conf.policy}; it must be noeviction (BullMQ queues and the delivery log cannot lose keys)`,
    );
  }
  if (conf.policy.startsWith("volatile-"))
    log.warn({ maxmemoryPolicy: conf.policy }, "redis: maxmemory-policy should be noeviction; keys with a TTL may be evicted");
  if (conf.aof !== "yes" && conf.save === "") log.warn("redis: persistence is off (no AOF, no RDB): a Redis restart loses queued deliveries");
}

/**
 * Closes an ioredis client without hanging: QUIT only when connected (a QUIT issued while the
 * client is reconnecting can stay pending forever once reconnection stops), bounded by a second,
 * then disconnect.
 */
export async function closeRedis(r: Redis | undefined): Promise<void> {
  if (!r) return;
  if (r.status === "ready") {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([r.quit().catch(() => {}), new Promise((res) => (timer = setTimeout(res, 1_000)))]);
    clearTimeout(timer);
  }
  r.disconnect();
}

/**
 * The egress's connections, each with the policy its job needs:
 * - `producer` (publish, the delivery log, the gate and finish scripts) fails fast when Redis is
 *   away, so a publish answers 503 at once; ioredis auto-pipelining batches its commands.
 * - `queue` is BullMQ's own: BullMQ defines some fifty scripts on the connection it is given, and
 *   ioredis copies every defined script onto each pipeline it builds, which made our own commands
 *   on a shared connection ~10% of a delivery's CPU.
 * - `worker` is made on demand (startWorker) for BullMQ's blocking commands: it never gives up a
 *   command (`maxRetriesPerRequest: null`, as BullMQ requires for workers), so workers carry on
 *   by themselves after Redis comes back.
 * The egress owns them once given: its close() closes them.
 */
export type EgressConnections = { producer: Redis; queue: Redis; worker: () => Redis };

export async function openEgressConnections(url: string): Promise<EgressConnections> {
  const producer = batchTurnWrites(new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true }));
  producer.on("error", () => {});
  const queue = batchTurnWrites(new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true }));
  queue.on("error", () => {});
  try {
    await Promise.all([producer.connect(), queue.connect()]);
  } catch (err) {
    producer.disconnect();
    queue.disconnect();
    throw err;
  }
  return { producer, queue, worker: () => batchTurnWrites(new Redis(url, { maxRetriesPerRequest: null })) };
}
