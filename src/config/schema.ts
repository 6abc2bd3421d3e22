import { isIpOrCidr } from "../util/ip.js";
import { z } from "zod";
import { secretInputSchema, trimmed, type SecretInput } from "./common.js";
import { webhooksSchema } from "./endpoints.js";

/** The bundled plugin's route limits (2026.9.6 defaults, docs/openclaw-contract.md §1.1). */
export const ROUTE_DEFAULTS = {
  rateLimit: { windowMs: 60_000, maxRequests: 120 },
  maxInFlight: 8,
  maxBodyBytes: 256 * 1024,
  bodyTimeoutMs: 15_000,
  maxTrackedKeys: 4096,
} as const;

const providerSchema = z
  .discriminatedUnion("source", [
    z.strictObject({ source: z.literal("env").describe('Secrets from environment variables (what provider "default" does).') }),
    z.strictObject({
      source: z.literal("file").describe("Secrets from one file."),
      path: trimmed.describe("Absolute path of the secrets file."),
      mode: z.enum(["json", "singleValue"]).default("json").describe("json: id is a JSON pointer; singleValue: the file is the secret."),
    }),
    z.strictObject({
      source: z.literal("exec").describe("Secrets printed by a command."),
      command: trimmed.describe("Absolute path of the command (run without a shell)."),
      args: z.array(z.string()).default([]).describe("Arguments passed to the command."),
      timeoutMs: z.number().int().positive().default(5_000).describe("How long the command may run, in ms."),
    }),
  ])
  .describe("One provider, by its source.");

const rateLimitSchema = z.strictObject({
  windowMs: z.number().int().positive().describe("Fixed window length in ms."),
  maxRequests: z.number().int().positive().describe("Requests allowed per window per path + client IP."),
});

const redisAuth = {
  username: trimmed.optional().describe("ACL user name (Redis 6+)."),
  password: secretInputSchema.optional().describe("Password: a string or a SecretRef, resolved at startup."),
  tls: z.boolean().default(false).describe("Connect with TLS (managed services usually require it)."),
};

const redisClusterSchema = z.strictObject({
  nodes: z
    .array(trimmed.regex(/^rediss?:\/\/[^/\s]+:\d+\/?$/, "must be redis://host:port or rediss://host:port"))
    .min(1)
    .describe("Some of the cluster's nodes, as redis://host:port; the client finds the rest."),
  ...redisAuth,
});

const redisSentinelSchema = z.strictObject({
  sentinels: z
    .array(trimmed.regex(/^[^\s:/]+:\d+$/, "must be host:port"))
    .min(1)
    .describe("The sentinels, as host:port (three or more in production)."),
  name: trimmed.describe("The name the sentinels monitor the primary by (sentinel monitor <name> …)."),
  sentinelPassword: secretInputSchema.optional().describe("The sentinels' own password (requirepass on the sentinels), when they have one."),
  ...redisAuth,
});

/** Failed authentication attempts allowed per client IP and window, on every surface together. */
export const AUTH_FAILURE_DEFAULTS = { max: 10, windowMs: 300_000 } as const;

const authFailuresSchema = z
  .strictObject({
    max: z.number().int().positive().describe("Wrong tokens, signatures or logins a client IP may send per window; the next request is 429."),
    windowMs: z.number().int().positive().describe("Window length in ms, counted from the first failure; a locked-out client waits for its end (Retry-After)."),
  })
  .describe(
    "Limits guessing: admin API, dashboard login, POST /v1/events, TaskFlow routes and inbound endpoints share one count per client IP (in Redis when configured).",
  );

/** A route exactly as the bundled plugin takes it, plus this service's per-route limit overrides. */
export const routeSchema = z.strictObject({
  enabled: z.boolean().default(true).describe("Serve this route."),
  path: trimmed.optional().describe("Default /plugins/webhooks/<routeId>; must be unique."),
  sessionKey: trimmed.describe("Session that owns the route's TaskFlows."),
  secret: secretInputSchema.describe("Shared secret: a string or a SecretRef."),
  controllerId: trimmed.optional().describe("Default create_flow controller; default webhooks/<routeId>."),
  description: trimmed.optional().describe("Operator note only."),
  rateLimit: rateLimitSchema.optional().describe("Overrides limits.rateLimit for this route."),
  maxInFlight: z.number().int().positive().optional().describe("Overrides limits.maxInFlight."),
  maxBodyBytes: z.number().int().positive().optional().describe("Overrides limits.maxBodyBytes."),
});
export type RouteInput = z.infer<typeof routeSchema>;

const webhooksPluginSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe("Serve the TaskFlow routes at all."),
    config: z
      .strictObject({ routes: z.record(trimmed, routeSchema).default({}).describe("TaskFlow routes by route id, as the bundled webhooks plugin takes them.") })
      .default({ routes: {} }),
  })
  .prefault({});

export const gatewaySchema = z
  .preprocess(
    // A block with a url and no mode is a remote Gateway: the shape operators write.
    (v) => (v && typeof v === "object" && !Array.isArray(v) && !("mode" in v) ? { ...v, mode: "remote" } : v),
    z.discriminatedUnion("mode", [
      z.strictObject({
        mode: z.literal("embedded").describe("In-process TaskFlow runtime; flows live in memory."),
      }),
      z.strictObject({
        mode: z.literal("remote").describe("A Gateway over its WebSocket protocol (the mode a block with a url and no mode gets)."),
        url: z.url({ protocol: /^wss?$/ }).describe("Gateway WebSocket URL, e.g. ws://127.0.0.1:18789."),
        token: secretInputSchema.describe("Gateway shared token (gateway.auth.token)."),
        callTimeoutMs: z.number().int().positive().default(10_000).describe("Per-call RPC timeout."),
        connectTimeoutMs: z.number().int().positive().default(5_000).describe("Handshake timeout."),
        reconnectBaseMs: z
          .number()
          .int()
          .positive()
          .default(250)
          .describe("First reconnect delay after the connection drops; doubles per attempt, with full jitter."),
        reconnectMaxMs: z.number().int().positive().default(10_000).describe("Longest reconnect delay."),
        hooks: z
          .strictObject({
            token: secretInputSchema.describe("The Gateway's hooks.token."),
            path: trimmed.default("/hooks").describe("The Gateway's hooks.path."),
          })
          .optional()
          .describe(
            "Wake inbound endpoints through the Gateway's HTTP hooks (POST <path>/wake), which answer queued or coalesced; without it, the wake RPC (which answers ok).",
          ),
      }),
    ]),
  )
  .default({ mode: "embedded" });

export const configSchema = z.strictObject({
  server: z
    .strictObject({
      host: trimmed.default("0.0.0.0").describe("Address the HTTP server listens on."),
      port: z.number().int().min(0).max(65_535).default(8787).describe("Port the HTTP server listens on (env PORT overrides; 0 picks a free one)."),
      trustedProxies: z.array(trimmed.refine(isIpOrCidr, "not an IP address or CIDR")).default([]).describe("IPs or CIDRs whose X-Forwarded-For is believed."),
      allowRealIpFallback: z.boolean().default(false).describe("Use X-Real-IP when X-Forwarded-For yields nothing."),
      shutdownTimeoutMs: z.number().int().positive().default(20_000).describe("On SIGTERM or SIGINT, how long in-flight requests get to finish."),
      maxConnections: z.number().int().positive().default(1_024).describe("Open connections the server takes at once; further ones are closed on arrival."),
      headersTimeoutMs: z.number().int().positive().default(10_000).describe("Time a client has to send a request's head."),
      requestTimeoutMs: z
        .number()
        .int()
        .positive()
        .optional()
        .describe("Time a client has to send a whole request (default: limits.bodyTimeoutMs + 10 s; the routes' own body deadline comes first)."),
    })
    .prefault({})
    .describe("The HTTP server: address, client IPs behind proxies, connection bounds, shutdown."),
  redis: z
    .strictObject({
      url: trimmed.optional().describe("redis:// or rediss:// URL of one Redis (a primary, or a managed endpoint that is not in cluster mode)."),
      cluster: redisClusterSchema.optional().describe("A Redis Cluster (or a managed service in cluster mode), instead of url."),
      sentinel: redisSentinelSchema.optional().describe("A primary found through Redis Sentinel, instead of url."),
      prefix: trimmed
        .refine((p) => !/[{}]/.test(p), "must not contain { or }: the service adds its own hash tags")
        .default("ocwh:")
        .describe("Key prefix for everything this service stores."),
      shards: z
        .number()
        .int()
        .min(1)
        .max(1_024)
        .default(1)
        .describe(
          "Delivery queues are spread over this many hash tags, by endpoint (on a Cluster, one per master spreads them over the masters; docs/redis-topologies.md). Changing it moves queued deliveries, losing none.",
        ),
    })
    .refine((r) => [r.url, r.cluster, r.sentinel].filter((x) => x !== undefined).length <= 1, {
      message: "give one of url, cluster and sentinel",
      path: ["url"],
    })
    .prefault({})
    .describe(
      "Shared state: limits, idempotency keys, queues, the delivery log, sessions. Without url, cluster or sentinel, limits live in memory (one replica) and outgoing webhooks are off.",
    ),
  limits: z
    .strictObject({
      rateLimit: rateLimitSchema
        .default(ROUTE_DEFAULTS.rateLimit)
        .describe("Fixed-window rate limit per normalised path + client IP, for every route and inbound endpoint (429 rate_limited beyond)."),
      maxInFlight: z
        .number()
        .int()
        .positive()
        .default(ROUTE_DEFAULTS.maxInFlight)
        .describe("Requests in flight per normalised path + client IP (429 in_flight_limited beyond)."),
      maxBodyBytes: z
        .number()
        .int()
        .positive()
        .default(ROUTE_DEFAULTS.maxBodyBytes)
        .describe("Largest request body (413 beyond); Content-Length is checked before reading, chunked bodies are counted."),
      bodyTimeoutMs: z.number().int().positive().default(ROUTE_DEFAULTS.bodyTimeoutMs).describe("Time a client has to send the body (408 beyond)."),
      maxTrackedKeys: z.number().int().positive().default(ROUTE_DEFAULTS.maxTrackedKeys).describe("In-memory store only."),
      leaseMs: z
        .number()
        .int()
        .positive()
        .default(60_000)
        .describe("In-flight lease expiry in Redis: slots of a replica that died free themselves after this."),
      authFailures: authFailuresSchema.default(AUTH_FAILURE_DEFAULTS),
    })
    .prefault({})
    .describe("Defaults for every TaskFlow route and inbound endpoint; a route or endpoint may override rateLimit, maxInFlight and maxBodyBytes."),
  gateway: gatewaySchema.describe("The TaskFlow runtime and agent runs: embedded (in process, the default) or a real Gateway (remote)."),
  idempotency: z
    .strictObject({
      leaseMs: z
        .number()
        .int()
        .positive()
        .default(30_000)
        .describe(
          "In-progress lease of an Idempotency-Key or inbound delivery id, renewed while the first request runs: a crashed or cut-off first attempt blocks its retries this long at most.",
        ),
      waitMs: z
        .number()
        .int()
        .min(0)
        .default(2_000)
        .describe("How long a duplicate waits for the first request's answer before 409 idempotency_in_progress with Retry-After."),
    })
    .prefault({})
    .describe("Idempotency-Key on create_flow and run_task, and inbound delivery ids."),
  secrets: z
    .strictObject({ providers: z.record(trimmed, providerSchema).default({}).describe("Named secret providers that SecretRefs name as their provider.") })
    .prefault({})
    .describe('Where SecretRefs with a provider other than "default" are read from.'),
  plugins: z
    .strictObject({ entries: z.strictObject({ webhooks: webhooksPluginSchema }).prefault({}) })
    .prefault({})
    .describe("The Gateway's plugins block: plugins.entries.webhooks pastes in from a Gateway config."),
  webhooks: webhooksSchema.describe("Outgoing webhooks (endpoints) and the publish API."),
  admin: z
    .strictObject({
      token: secretInputSchema.optional().describe("Bearer token for /admin/api (and the dashboard); unset: the admin API answers 404."),
      maxLiveSubscribers: z
        .number()
        .int()
        .positive()
        .default(50)
        .describe("Dashboard live-update streams per replica; the next is 503 live_updates_full with Retry-After."),
      loginMaxBodyBytes: z.number().int().positive().default(4_096).describe("Largest dashboard login form body (413 beyond)."),
      loginBodyTimeoutMs: z.number().int().positive().default(2_000).describe("Time a client has to send the login form body (408 beyond)."),
    })
    .prefault({})
    .describe("The admin API (/admin/api) and the dashboard (/dashboard)."),
  log: z
    .strictObject({
      level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info").describe("pino log level (env LOG_LEVEL overrides)."),
    })
    .prefault({})
    .describe("Logs: pino JSON on stdout."),
});

export type ConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.infer<typeof configSchema>;
export type GatewayConfig = ParsedConfig["gateway"];
export type SecretProviders = ParsedConfig["secrets"]["providers"];

/** A route after defaults and path normalisation: what the ingress serves. */
export type Route = {
  id: string;
  path: string;
  sessionKey: string;
  secret: SecretInput;
  controllerId: string;
  description?: string;
  rateLimit: { windowMs: number; maxRequests: number };
  maxInFlight: number;
  maxBodyBytes: number;
};

export type Config = Readonly<ParsedConfig & { routes: readonly Route[] }>;

/** Whether a Redis is configured (by url, cluster or sentinel): what limits, idempotency and egress need to be shared. */
export const hasRedis = (r: Config["redis"] | ParsedConfig["redis"]) => r.url !== undefined || r.cluster !== undefined || r.sentinel !== undefined;
