import { hasRedis, type Config } from "./config/schema.js";
import { migrateKeyLayout } from "./egress/migrate-layout.js";
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
import { StartupError } from "./errors.js";
import { instrumented } from "./gateway/instrumented.js";
import { checkRedisPolicy, closeRedis, connectRedis, createRedisConnector, openEgressConnections, type RedisClient } from "./redis.js";
import { version } from "./version.js";

export type Deps = {
  config: Config;
  log: Logger;
  metrics: Metrics;
  secrets: SecretResolver;
  redis: RedisClient | undefined;
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
      onRefused: (ref, problem) =>
        log.error({ secret: ref, problem }, "secret refused: its value cannot be used as a key or token (the route or endpoint acts as if it did not resolve)"),
    });

  let redis = overrides.redis;
  const connector = redis ? undefined : await createRedisConnector(config.redis, secrets);
  if (connector) {
    redis = await connectRedis(connector);
    try {
      await checkRedisPolicy(connector, log);
      // Keys written before the hash-tagged layout (issue #19) move to their names now, once.
      const migrated = await migrateKeyLayout(
        redis,
        config.redis.prefix,
        config.webhooks.endpoints.map((e) => e.name),
        Object.keys(config.webhooks.inbound?.endpoints ?? {}),
      );
      if (migrated.moved || migrated.merged) log.info(migrated, "redis: keys moved to the hash-tagged layout");
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
  const wantsEgress = Boolean(hasRedis(config.redis) && (config.webhooks.endpoints.length > 0 || config.webhooks.publishToken !== undefined));
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
    let connections;
    try {
      connections = await openEgressConnections(connector ?? (await createRedisConnector(config.redis, secrets))!);
    } catch (cause) {
      await closeRedis(redis);
      throw cause;
    }
    egress = await createEgress({ config, secrets, log, metrics, connections });
  }
  const events =
    overrides.events ??
    (egress
      ? createRelay((e) => egress.publish(e), {
          log,
          maxBuffered: config.webhooks.relayBuffer,
          onDrop: (n) => metrics.eventsDropped.inc(n),
          park: (e, reason) => egress.park(e, reason),
        })
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
            ? {
                baseUrl: gw.url.replace(/^ws/, "http"),
                path: hooks.path,
                token: () => secrets.resolve(hooks.token, { unchecked: true }),
                timeoutMs: gw.callTimeoutMs,
              }
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
          queue: () => egress.jobCounts(),
          endpoints: async () => (await egress.endpointStatus()).map((e) => ({ name: e.name, disabled: !e.enabled, circuitOpen: e.circuit.state === "open" })),
          backlog: () => Promise.all(config.webhooks.endpoints.map(async (e) => ({ name: e.name, ...(await egress.log.backlog(e.name)) }))),
        }
      : {}),
  });
  return {
    config,
    log,
    metrics,
    secrets,
    redis,
    limitStore,
    authGate,
    sessions,
    gateway,
    taskflow: taskflow!,
    egress,
    events,
    agent,
    idempotency,
    runs,
    state: { shuttingDown: false },
  };
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
