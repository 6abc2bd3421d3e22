import { Redis } from "ioredis";
import type { Config } from "./config/schema.js";
import { createEmbeddedAgentRuntime, createGatewayAgentRuntime, type AgentRuntime } from "./agent/runtime.js";
import { createEgress, type Egress } from "./egress/engine.js";
import { createIdempotency, type Idempotency } from "./idempotency/idempotency.js";
import { createMemoryIdempotencyStore, createRedisIdempotencyStore } from "./idempotency/store.js";
import { createRunTracker, type RunTracker } from "./inbound/runs.js";
import { createGatewayMapper } from "./egress/gateway-events.js";
import { createRelay, type Relay } from "./egress/relay.js";
import { createGatewayClient, GatewayAuthError, type GatewayClient } from "./gateway/client.js";
import { createGatewayTaskFlowRuntime } from "./gateway/taskflow-runtime.js";
import { createMemoryAuthFailureStore, createRedisAuthFailureStore } from "./limits/auth-failures.js";
import { createAuthGate, type AuthGate } from "./http/auth-gate.js";
import { createClientIpResolver } from "./http/client-ip.js";
import { createMemorySessionStore, createRedisSessionStore, type SessionStore } from "./admin/sessions.js";
import { createMemoryLimitStore } from "./limits/memory-store.js";
import { createRedisLimitStore } from "./limits/redis-store.js";
import type { LimitStore } from "./limits/store.js";
import { createLogger, type Logger } from "./log.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { createSecretResolver, type SecretResolver } from "./secrets/resolve.js";
import { createEmbeddedRuntime } from "./taskflow/embedded.js";
import type { TaskFlowRuntime } from "./taskflow/runtime.js";
import { corkUntilTurnEnds } from "./util/cork.js";
import { version } from "./version.js";

export type Deps = {
  config: Config;
  log: Logger;
  metrics: Metrics;
  secrets: SecretResolver;
  redis: Redis | undefined;
  limitStore: LimitStore;
  /** Failed-authentication count per client IP (Redis when configured), for every surface that takes a secret. */
  authGate: AuthGate;
  /** Dashboard sessions (Redis when configured): one per login, ended by logout or a new admin token. */
  sessions: SessionStore;
  gateway: GatewayClient | undefined;
  taskflow: TaskFlowRuntime;
  /** Outgoing webhooks; present when endpoints or a publish token are configured (needs Redis). */
  egress: Egress | undefined;
  /** Events nobody waits for (Gateway broadcasts, flow lifecycle) on their way to `egress.publish`. */
  events: Relay | undefined;
  /** Agent runs and wakes (inbound endpoints): the Gateway's `agent`/`wake`, or the embedded stand-in. */
  agent: AgentRuntime;
  /** Delivery-id dedupe and Idempotency-Key answers: leases and stored answers (Redis when configured). */
  idempotency: Idempotency;
  /** Publishes inbound.completed when an inbound run ends (needs egress). */
  runs: RunTracker | undefined;
  /** Set when shutdown begins: /readyz answers 503 from then on. */
  state: { shuttingDown: boolean };
};

/** A startup failure that names the config key at fault; main.ts prints it and exits 1. */
export class StartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StartupError";
  }
}

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
    retryStrategy: (times) => Math.min(50 * 2 ** times, 2_000),
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
function batchTurnWrites(redis: Redis): void {
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = (command, stream) => {
    corkUntilTurnEnds(redis.stream);
    return send(command, stream);
  };
}

/**
 * Builds every long-lived client from the config. Only main.ts and the tests call this; nothing
 * else creates clients. Pass `overrides` to inject parts (tests, benchmarks).
 */
export async function createDeps(config: Config, overrides: Partial<Deps> = {}): Promise<Deps> {
  const log = overrides.log ?? createLogger({ level: config.log.level });
  const metrics = overrides.metrics ?? createMetrics();
  const secrets =
    overrides.secrets ??
    createSecretResolver({
      providers: config.secrets.providers,
      onRefused: (ref, problem) => log.error({ secret: ref, problem }, "secret refused: its value cannot be used as a key or token (the route or endpoint acts as if it did not resolve)"),
    });

  let redis = overrides.redis;
  if (!redis && config.redis.url) {
    try {
      redis = await connectRedis(config.redis.url);
    } catch (cause) {
      throw new StartupError(`redis.url: cannot connect to Redis (${(cause as Error).message})`, { cause });
    }
  }
  if (redis && !overrides.redis) {
    try {
      await checkRedisPolicy(redis, log);
    } catch (err) {
      await closeRedis(redis);
      throw err;
    }
  }
  const limitStore =
    overrides.limitStore ??
    (redis
      ? createRedisLimitStore(redis, { prefix: config.redis.prefix, leaseMs: config.limits.leaseMs })
      : createMemoryLimitStore({ maxTrackedKeys: config.limits.maxTrackedKeys }));

  const authFailures = config.limits.authFailures;
  const authGate =
    overrides.authGate ??
    createAuthGate(
      redis
        ? createRedisAuthFailureStore(redis, { prefix: config.redis.prefix, ...authFailures })
        : createMemoryAuthFailureStore({ ...authFailures, maxTrackedKeys: config.limits.maxTrackedKeys }),
      createClientIpResolver(config.server),
      () => metrics.authLockouts.inc(),
    );

  const sessions = overrides.sessions ?? (redis ? createRedisSessionStore(redis, { prefix: config.redis.prefix }) : createMemorySessionStore());

  let gateway = overrides.gateway;
  let taskflow = overrides.taskflow;
  const gw = config.gateway;
  const wantsEgress = Boolean(config.redis.url && (config.webhooks.endpoints.length > 0 || config.webhooks.publishToken !== undefined));
  if (!taskflow && gw.mode === "embedded") taskflow = createEmbeddedRuntime();
  if (!taskflow && gw.mode === "remote") {
    gateway ??= createGatewayClient({
      url: gw.url,
      token: () => secrets.resolve(gw.token, { unchecked: true }),
      log,
      version: version(),
      connectTimeoutMs: gw.connectTimeoutMs,
      callTimeoutMs: gw.callTimeoutMs,
      reconnectBaseMs: gw.reconnectBaseMs,
      reconnectMaxMs: gw.reconnectMaxMs,
      subscribeSessions: wantsEgress || overrides.egress !== undefined,
    });
    try {
      await gateway.start();
    } catch (cause) {
      await closeRedis(redis);
      if (cause instanceof GatewayAuthError) {
        throw new StartupError(`gateway.token: the Gateway at ${gw.url} rejected the token (${cause.message})`, { cause });
      }
      throw cause;
    }
    taskflow = createGatewayTaskFlowRuntime(instrumented(gateway, metrics));
  }
  let egress = overrides.egress;
  if (!egress && wantsEgress) {
    egress = await createEgress({ config, secrets, log, metrics });
  }
  const events =
    overrides.events ??
    (egress
      ? createRelay((e) => egress.publish(e), { log, maxBuffered: config.webhooks.relayBuffer, onDrop: (n) => metrics.eventsDropped.inc(n), park: (e, reason) => egress.park(e, reason) })
      : undefined);
  if (events && gateway) {
    const map = createGatewayMapper();
    gateway.onEvent((e) => {
      for (const mapped of map(e.event, e.payload)) events.emit({ ...mapped, source: "gateway" });
    });
  }
  const hooks = gw.mode === "remote" && gw.hooks ? gw.hooks : undefined;
  const agent =
    overrides.agent ??
    (gateway
      ? createGatewayAgentRuntime(
          instrumented(gateway, metrics),
          hooks && gw.mode === "remote"
            ? { baseUrl: gw.url.replace(/^ws/, "http"), path: hooks.path, token: () => secrets.resolve(hooks.token, { unchecked: true }), timeoutMs: gw.callTimeoutMs }
            : undefined,
        )
      : createEmbeddedAgentRuntime());
  const idempotency =
    overrides.idempotency ??
    createIdempotency(redis ? createRedisIdempotencyStore(redis, config.redis.prefix) : createMemoryIdempotencyStore(), { ...config.idempotency, log });
  const runs = overrides.runs ?? (events ? createRunTracker({ agent, relay: events, redis, prefix: config.redis.prefix, log }) : undefined);
  const gatewayClient = gateway;
  metrics.setCollectors({
    ...(gatewayClient ? { gatewayConnected: () => gatewayClient.connected } : {}),
    ...(egress
      ? {
          queue: () => egress.queue.getJobCounts("waiting", "active", "delayed", "failed", "completed", "prioritized"),
          endpoints: async () => (await egress.endpointStatus()).map((e) => ({ name: e.name, disabled: !e.enabled, circuitOpen: e.circuit.state === "open" })),
        }
      : {}),
  });
  return { config, log, metrics, secrets, redis, limitStore, authGate, sessions, gateway, taskflow: taskflow!, egress, events, agent, idempotency, runs, state: { shuttingDown: false } };
}

/**
 * BullMQ and the delivery log need every key they write to stay: a Redis that evicts any key under
 * memory pressure (`allkeys-*`) would drop queued deliveries, so startup refuses it; `volatile-*`
 * evicts keys with a TTL (events, delivery records) and gets a warning, as does a Redis without
 * persistence. A Redis that hides CONFIG (some managed ones) is trusted with a warning.
 */
async function checkRedisPolicy(redis: Redis, log: Logger): Promise<void> {
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
    throw new StartupError(`redis.url: Redis's maxmemory-policy is ${conf.policy}; it must be noeviction (BullMQ queues and the delivery log cannot lose keys)`);
  }
  if (conf.policy.startsWith("volatile-")) log.warn({ maxmemoryPolicy: conf.policy }, "redis: maxmemory-policy should be noeviction; keys with a TTL may be evicted");
  if (conf.aof !== "yes" && conf.save === "") log.warn("redis: persistence is off (no AOF, no RDB): a Redis restart loses queued deliveries");
}

/**
 * The Gateway client with each call counted and timed by method and outcome. Label children are
 * cached per method: the label lookup is on every ingress request's path.
 */
function instrumented(client: GatewayClient, metrics: Metrics): Pick<GatewayClient, "call" | "onEvent"> {
  const children = new Map<string, { timer: ReturnType<Metrics["gatewayCallDuration"]["labels"]>; outcomes: Map<string, ReturnType<Metrics["gatewayCalls"]["labels"]>> }>();
  const forMethod = (method: string) => {
    let c = children.get(method);
    if (!c) children.set(method, (c = { timer: metrics.gatewayCallDuration.labels(method), outcomes: new Map() }));
    return c;
  };
  const count = (c: ReturnType<typeof forMethod>, method: string, outcome: string) => {
    let counter = c.outcomes.get(outcome);
    if (!counter) c.outcomes.set(outcome, (counter = metrics.gatewayCalls.labels(method, outcome)));
    counter.inc();
  };
  return {
    onEvent: (l) => client.onEvent(l),
    async call<T>(method: string, params: unknown, opts?: { timeoutMs?: number }): Promise<T> {
      const c = forMethod(method);
      const started = performance.now();
      try {
        const out = await client.call<T>(method, params, opts);
        count(c, method, "ok");
        return out;
      } catch (err) {
        const code = (err as { code?: string }).code;
        count(c, method, code === "gateway_timeout" ? "timeout" : code === "gateway_unavailable" ? "unavailable" : "error");
        throw err;
      } finally {
        c.timer.observe((performance.now() - started) / 1000);
      }
    },
  };
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

/** Closes clients in dependency order: egress worker and queue, Gateway, then Redis. */
export async function closeDeps(deps: Deps): Promise<void> {
  deps.runs?.close();
  // The Gateway first: no frame arrives after the relay has flushed what it holds.
  await deps.gateway?.close().catch(() => {});
  await deps.events?.close().catch(() => {});
  await deps.egress?.close().catch(() => {});
  await closeRedis(deps.redis);
}
