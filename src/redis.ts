import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import type { Config } from "./config/schema.js";
import { StartupError } from "./errors.js";
import type { Logger } from "./log.js";
import type { SecretResolver } from "./secrets/resolve.js";
import { corkUntilTurnEnds } from "./util/cork.js";
import { exponentialDelay } from "./util/backoff.js";

/** A connection to whichever Redis is configured: one server or a primary behind Sentinel (`Redis`), or a Cluster. */
export type RedisClient = Redis | Cluster;

/**
 * What a connection does while Redis is away:
 * - `command`: fails fast (no offline queue, one retry), so a request answers 503 at once instead
 *   of hanging; on a Cluster, a command still follows a failover for ioredis's default
 *   redirections (16 × 100 ms) before it fails.
 * - `worker`: never gives up a command (`maxRetriesPerRequest: null`, as BullMQ requires for
 *   workers), so workers carry on by themselves after Redis comes back; on a Cluster it rides out
 *   a failover (40 redirections 300 ms apart: with ioredis's defaults a completion failed part
 *   way through a 2.5 s failover and BullMQ marked a processed job failed; docs/redis-topologies.md).
 */
export type ConnectionRole = "command" | "worker";

/** Opens connections to the configured Redis; `key` names it in startup errors. */
export type RedisConnector = {
  engine: "single" | "cluster" | "sentinel";
  key: string;
  /** A new connection, not yet connected (`worker` ones connect by themselves). */
  open(role: ConnectionRole): RedisClient;
  /** Every server a policy check must look at, as one-off connections (the caller closes them). */
  servers(): Promise<{ name: string; client: Redis }[]>;
  /** The `redis_mode` of the first configured Cluster node that answers (Cluster only). */
  probe(): Promise<{ name: string; mode: string } | undefined>;
};

const CONNECT_TIMEOUT_MS = 5_000;

/** A connection for one look at a server at startup (its mode, its config): it never reconnects. */
const ONE_OFF = { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null, connectTimeout: CONNECT_TIMEOUT_MS } satisfies RedisOptions;

/** A reconnect delay that stays short: a failover is over in seconds, and ioredis's own backs off to 5 s (measured: first job 3.9 s after a Sentinel failover, 2.9 s with this). */
const reconnectDelay = (times: number) => exponentialDelay(times, { baseMs: 50, maxMs: 1_000 });

/**
 * The connector for `config.redis` (undefined when none is configured). Passwords given as
 * SecretRefs are resolved once, here.
 */
export async function createRedisConnector(r: Config["redis"], secrets: SecretResolver): Promise<RedisConnector | undefined> {
  const secret = async (input: Parameters<SecretResolver["resolve"]>[0] | undefined, key: string) => {
    if (input === undefined) return undefined;
    const value = await secrets.resolve(input, { unchecked: true });
    if (value === undefined) throw new StartupError(`${key}: the secret did not resolve`);
    return value;
  };
  const roleOptions = (role: ConnectionRole): RedisOptions => ({
    ...(role === "command" ? { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 } : { maxRetriesPerRequest: null }),
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: reconnectDelay,
    // A managed primary endpoint (one DNS name) points at the new primary after a failover, but a
    // connection made before it still talks to the demoted one, which answers READONLY: reconnect
    // and send the command again (READONLY means it did not run, so sending it again is safe).
    reconnectOnError: (err) => (err.message.startsWith("READONLY") ? 2 : false),
  });

  if (r.url !== undefined) {
    const url = r.url;
    return {
      engine: "single",
      key: "redis.url",
      open: (role) => batchTurnWrites(new Redis(url, roleOptions(role))),
      servers: async () => [{ name: redactUrl(url), client: new Redis(url, ONE_OFF) }],
      probe: async () => undefined,
    };
  }
  if (r.sentinel !== undefined) {
    const s = r.sentinel;
    const [password, sentinelPassword] = [
      await secret(s.password, "redis.sentinel.password"),
      await secret(s.sentinelPassword, "redis.sentinel.sentinelPassword"),
    ];
    const sentinels = s.sentinels.map(hostPort);
    const auth = { ...(s.username ? { username: s.username } : {}), ...(password ? { password } : {}), ...(s.tls ? { tls: {} } : {}) };
    const sentinelAuth = { ...(sentinelPassword ? { sentinelPassword } : {}), ...(s.tls ? { enableTLSForSentinelMode: true, sentinelTLS: {} } : {}) };
    const base = {
      sentinels,
      name: s.name,
      ...auth,
      ...sentinelAuth,
      // Drops the connection when the sentinels announce a new primary (+switch-master): after a
      // graceful failover the old primary keeps taking writes that vanish when it becomes a
      // replica (measured: 330 of 400 jobs gone without it, 46 with it; docs/redis-topologies.md).
      failoverDetector: true,
    } satisfies RedisOptions;
    return {
      engine: "sentinel",
      key: "redis.sentinel.sentinels",
      probe: async () => undefined,
      open: (role) => batchTurnWrites(new Redis({ ...base, ...roleOptions(role) })),
      // The primary, then every replica the sentinels know: a replica becomes the primary in a failover.
      async servers() {
        const out: { name: string; client: Redis }[] = [];
        out.push({ name: `${s.name} (primary)`, client: new Redis({ ...base, ...ONE_OFF, failoverDetector: false }) });
        for (const sentinel of sentinels) {
          const probe = new Redis({ ...sentinel, ...ONE_OFF, ...(sentinelPassword ? { password: sentinelPassword } : {}), ...(s.tls ? { tls: {} } : {}) });
          try {
            await probe.connect();
            const replicas = (await probe.call("SENTINEL", "REPLICAS", s.name)) as string[][];
            for (const fields of replicas) {
              const f = Object.fromEntries(fields.flatMap((v, i, a) => (i % 2 === 0 ? [[v, a[i + 1]]] : [])));
              if (String(f.flags ?? "").includes("down")) continue;
              out.push({ name: `${f.ip}:${f.port} (replica)`, client: new Redis({ host: f.ip, port: Number(f.port), ...auth, ...ONE_OFF }) });
            }
            break;
          } catch {
            // the next sentinel
          } finally {
            probe.disconnect();
          }
        }
        return out;
      },
    };
  }
  if (r.cluster !== undefined) {
    const c = r.cluster;
    const password = await secret(c.password, "redis.cluster.password");
    const nodes = c.nodes.map((n) => {
      const u = new URL(n);
      return { host: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port) };
    });
    const tls = c.tls || c.nodes.some((n) => n.startsWith("rediss:"));
    const auth = { ...(c.username ? { username: c.username } : {}), ...(password ? { password } : {}), ...(tls ? { tls: {} } : {}) };
    const options = (role: ConnectionRole): ClusterOptions => ({
      // BullMQ reads maxRetriesPerRequest here: a worker's must be null.
      redisOptions: { ...auth, connectTimeout: CONNECT_TIMEOUT_MS, maxRetriesPerRequest: role === "command" ? 1 : null },
      // A managed cluster's TLS certificates name the configuration endpoint, not each node's IP:
      // ioredis documents resolving names as given for such services.
      ...(tls ? { dnsLookup: (address: string, done: (err: null, a: string) => void) => done(null, address) } : {}),
      clusterRetryStrategy: reconnectDelay,
      ...(role === "command"
        ? // No auto-pipelining: ioredis follows a MOVED inside a pipeline only when every reply of
          // the batch is the same redirection, so after a failover a batch over many slots handed
          // the raw MOVED to the request (test/reliability/failover.test.ts).
          { lazyConnect: true, enableOfflineQueue: false }
        : { retryDelayOnFailover: 300, retryDelayOnClusterDown: 300, retryDelayOnMoved: 100, maxRedirections: 40 }),
    });
    return {
      engine: "cluster",
      key: "redis.cluster.nodes",
      open: (role) => new Cluster(nodes, options(role)),
      async probe() {
        for (const n of nodes) {
          const client = new Redis({ ...n, ...auth, ...ONE_OFF });
          client.on("error", () => {});
          try {
            return { name: `${n.host}:${n.port}`, mode: await modeOf(client) };
          } catch {
            // the next node
          } finally {
            client.disconnect();
          }
        }
        return undefined;
      },
      async servers() {
        const cluster = new Cluster(nodes, { ...options("command"), clusterRetryStrategy: () => null });
        cluster.on("error", () => {});
        try {
          await withTimeout(cluster.connect(), CONNECT_TIMEOUT_MS, "the cluster did not become ready");
          // CLUSTER NODES, not cluster.nodes("all"): the client's list comes from CLUSTER SLOTS,
          // which leaves out a replica that has not replicated anything yet.
          const lines = String(await cluster.cluster("NODES")).split("\n");
          return lines.flatMap((line) => {
            const [, addr, flags = ""] = line.trim().split(" ");
            if (!addr || /fail|noaddr|handshake/.test(flags)) return [];
            const hostPortPart = addr.split("@")[0]!;
            const { host, port } = hostPort(hostPortPart);
            return [{ name: hostPortPart, client: new Redis({ host, port, ...auth, ...ONE_OFF }) }];
          });
        } finally {
          cluster.disconnect();
        }
      },
    };
  }
  return undefined;
}

/**
 * Connects a `command` connection to the configured Redis and checks that it is the engine the
 * config says: a Cluster node behind `redis.url` (every multi-key script would fail with
 * CROSSSLOT or MOVED) or a Sentinel behind it is a startup error naming the key.
 */
export async function connectRedis(connector: RedisConnector): Promise<RedisClient> {
  if (connector.engine === "cluster") {
    // A node that is not in cluster mode would leave the Cluster client retrying forever: ask the
    // first configured node that answers what it is.
    const probe = await connector.probe();
    if (probe && probe.mode !== "cluster")
      throw new StartupError(`${connector.key}: ${probe.name} is not a Cluster node (redis_mode:${probe.mode}); use redis.url for one Redis`);
  }
  const client = connector.open("command");
  client.on("error", () => {}); // connection errors surface as failed commands (503), not crashes
  try {
    await withTimeout(client.connect(), CONNECT_TIMEOUT_MS + 1_000, "timed out");
  } catch (err) {
    client.disconnect();
    throw new StartupError(`${connector.key}: cannot connect to Redis (${(err as Error).message})`, { cause: err });
  }
  if (connector.engine !== "cluster") {
    const mode = await modeOf(client as Redis);
    if (mode !== "standalone") {
      client.disconnect();
      throw new StartupError(
        mode === "cluster"
          ? `${connector.key}: this Redis is a Cluster node (redis_mode:cluster); configure redis.cluster.nodes instead`
          : `${connector.key}: this is a Redis ${mode}, not a data node; configure redis.sentinel for a primary behind Sentinel`,
      );
    }
  }
  return client;
}

/** `redis_mode` from INFO server: standalone, cluster or sentinel. */
async function modeOf(client: Redis): Promise<string> {
  if (client.status === "wait") await client.connect();
  const info = await client.info("server");
  return /redis_mode:(\w+)/.exec(info)?.[1] ?? "standalone";
}

function hostPort(s: string) {
  const i = s.lastIndexOf(":");
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(s.slice(i + 1)) };
}

const redactUrl = (url: string) => url.replace(/\/\/[^@/]*@/, "//***@");

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
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
 * memory pressure (`allkeys-*`) would drop queued deliveries, so startup refuses it on any server
 * (every node of a Cluster, the primary and each replica behind Sentinel: a replica is promoted in
 * a failover); `volatile-*` evicts keys with a TTL (events, delivery records) and gets a warning,
 * as does a server without persistence. A server that hides CONFIG (some managed ones) is trusted
 * with a warning.
 */
export async function checkRedisPolicy(connector: RedisConnector, log: Logger): Promise<void> {
  const servers = await connector.servers().catch((err: Error) => {
    throw new StartupError(`${connector.key}: cannot list the Redis servers (${err.message})`, { cause: err });
  });
  try {
    for (const { name, client } of servers) {
      let conf: { policy: string; aof: string; save: string };
      try {
        client.on("error", () => {});
        if (client.status === "wait") await client.connect();
        const [policy, aof, save] = await Promise.all([
          client.config("GET", "maxmemory-policy") as Promise<string[]>,
          client.config("GET", "appendonly") as Promise<string[]>,
          client.config("GET", "save") as Promise<string[]>,
        ]);
        conf = { policy: policy[1] ?? "", aof: aof[1] ?? "", save: save[1] ?? "" };
      } catch {
        log.warn({ server: name }, "redis: CONFIG GET is not allowed; cannot check maxmemory-policy (it must be noeviction)");
        continue;
      }
      if (conf.policy.startsWith("allkeys-")) {
        throw new StartupError(
          `${connector.key}: ${name} has maxmemory-policy ${conf.policy}; it must be noeviction on every server (BullMQ queues and the delivery log cannot lose keys)`,
        );
      }
      if (conf.policy.startsWith("volatile-"))
        log.warn({ server: name, maxmemoryPolicy: conf.policy }, "redis: maxmemory-policy should be noeviction; keys with a TTL may be evicted");
      if (conf.aof !== "yes" && conf.save === "")
        log.warn({ server: name }, "redis: persistence is off (no AOF, no RDB): a Redis restart loses queued deliveries");
    }
  } finally {
    for (const { client } of servers) client.disconnect();
  }
}

/**
 * Every key matching `pattern`, on every primary (a SCAN on a Cluster client sees one node), in
 * bounded rounds.
 */
export async function scanKeys(client: RedisClient, pattern: string, maxRounds = 10_000): Promise<string[]> {
  const nodes = client instanceof Cluster ? client.nodes("master") : [client];
  const out: string[] = [];
  for (const node of nodes) {
    let cursor = "0";
    let rounds = 0;
    do {
      const [next, keys] = await node.scan(cursor, "MATCH", pattern, "COUNT", 1_000);
      cursor = next;
      out.push(...keys);
    } while (cursor !== "0" && ++rounds < maxRounds);
  }
  return out;
}

/**
 * Whether Redis takes commands now, for /readyz, within `timeoutMs`: a PING on one server; on a
 * Cluster, the cluster's own view (`cluster_state:ok`) and a PING to every master that CLUSTER
 * SLOTS names, over the client's own connection to it, since a PING to any one node says nothing
 * of the shard whose master just died. The masters named, not the ones the client holds: the
 * client drops a dead master's connection at once, and the cluster names a new master only a
 * failover later (measured: /readyz 200 for the first 1.5 s of a 2.3 s failover when it pinged
 * the masters it held, test/reliability/failover.test.ts). A master it holds no connection to
 * (a failover it has not seen yet) is not ready, and makes it refresh its slot map.
 */
export async function redisAnswers(client: RedisClient, timeoutMs = 1_000): Promise<boolean> {
  const check = async () => {
    if (!(client instanceof Cluster)) return (await client.ping()) === "PONG";
    // Each entry: [first slot, last slot, [master host, port, id, …], …replicas].
    const [info, slots] = await Promise.all([client.cluster("INFO") as Promise<string>, client.cluster("SLOTS")]);
    if (!/cluster_state:ok/.test(info) || slots.length === 0) return false;
    // The client's connections by the address CLUSTER SLOTS gave it (replicas too: one may be the new master).
    const held = new Map(client.nodes("all").map((n) => [`${n.options.host}:${n.options.port}`, n]));
    const masters = [...new Set(slots.map(([, , master]) => (master ? `${master[0]}:${master[1]}` : "")))].map((addr) => held.get(addr));
    if (masters.some((m) => m === undefined)) {
      client.refreshSlotsCache();
      return false;
    }
    return (await Promise.all(masters.map((m) => m!.ping()))).every((p) => p === "PONG");
  };
  return withTimeout(check(), timeoutMs, "timed out").catch(() => false);
}

/**
 * Closes a client without hanging: QUIT only when connected (a QUIT issued while the client is
 * reconnecting can stay pending forever once reconnection stops), bounded by a second, then
 * disconnect.
 */
export async function closeRedis(r: RedisClient | undefined): Promise<void> {
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
 *   away, so a publish answers 503 at once.
 * - `queue` is BullMQ's own: BullMQ defines some fifty scripts on the connection it is given, and
 *   ioredis copies every defined script onto each pipeline it builds, which made our own commands
 *   on a shared connection ~10% of a delivery's CPU.
 * - `worker` is made on demand (startWorker) for BullMQ's blocking commands (`worker` role).
 * The egress owns them once given: its close() closes them.
 */
export type EgressConnections = { producer: RedisClient; queue: RedisClient; worker: () => RedisClient };

export async function openEgressConnections(connector: RedisConnector): Promise<EgressConnections> {
  const [producer, queue] = [connector.open("command"), connector.open("command")];
  for (const c of [producer, queue]) c.on("error", () => {});
  try {
    await withTimeout(Promise.all([producer.connect(), queue.connect()]), CONNECT_TIMEOUT_MS + 1_000, "timed out");
  } catch (err) {
    producer.disconnect();
    queue.disconnect();
    throw new StartupError(`${connector.key}: cannot connect to Redis (${(err as Error).message})`, { cause: err });
  }
  return { producer, queue, worker: () => connector.open("worker") };
}
