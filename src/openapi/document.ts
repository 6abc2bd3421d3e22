import { z } from "zod";
import { bulkReplayBody, deliveryListQuery, endpointStatsQuery, findQuery, inboundQuery, parkedQuery } from "../admin/schemas.js";
import type { Config } from "../config/schema.js";
import { publishSchema } from "../egress/publish-route.js";
import { actionRequestSchema } from "../taskflow/actions.js";
import { version } from "../version.js";
import { adminAnswers, errorEnvelope, healthAnswer, inboundAgentAnswer, inboundWakeAnswer, publishAnswer, readyAnswer, taskflowEnvelope } from "./answers.js";
import { DELIVERY_HEADERS, EVENT_CATALOGUE, OPEN_EVENTS, envelopeSchema } from "./catalogue.js";

/**
 * `/openapi.json`: an OpenAPI 3.1 document of every HTTP surface this deployment serves (its
 * configured TaskFlow routes and inbound endpoints, publish, the admin API, the dashboard, health
 * and metrics), generated from the zod schemas the routes validate with (zod's own JSON Schema
 * output, draft 2020-12, which OpenAPI 3.1 uses), and the outgoing event catalogue as its
 * `webhooks`. Built once per process from the config; nothing secret is in it (secrets are
 * described, never shown).
 */

type Json = Record<string, unknown>;
type Op = {
  method: "get" | "post";
  path: string;
  summary: string;
  tags: string[];
  security?: Json[];
  description?: string;
  query?: z.ZodObject;
  pathParams?: string[];
  headers?: { name: string; description: string; required?: boolean }[];
  body?: { schema: z.ZodType; ref?: Json; example?: unknown; media?: string };
  ok: { status: number; schema?: z.ZodType; media?: string; description: string }[];
  errors: number[];
};

/**
 * zod writes each schema self-contained, with recursive parts (z.json()) under its own `$defs`
 * and `$ref: "#/$defs/…"`. In a larger document those refs would point at the document's root, so
 * the defs move to `components.schemas` under unique names and the refs follow.
 */
function componentsWriter() {
  const schemas: Record<string, unknown> = {};
  let n = 0;
  const toSchema = (schema: z.ZodType, io: "input" | "output"): Json => {
    const out = z.toJSONSchema(schema, { target: "draft-2020-12", io, unrepresentable: "any" }) as Json;
    delete out.$schema;
    const defs = (out.$defs ?? {}) as Record<string, unknown>;
    delete out.$defs;
    const names = new Map(Object.keys(defs).map((k) => [k, `Def${++n}`]));
    const rewrite = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(rewrite);
      if (!v || typeof v !== "object") return v;
      return Object.fromEntries(
        Object.entries(v).map(([k, x]) => [k, k === "$ref" && typeof x === "string" && x.startsWith("#/$defs/") ? `#/components/schemas/${names.get(x.slice(8))}` : rewrite(x)]),
      );
    };
    for (const [k, def] of Object.entries(defs)) schemas[names.get(k)!] = rewrite(def);
    return rewrite(out) as Json;
  };
  const named = (name: string, schema: z.ZodType, io: "input" | "output" = "output") => {
    schemas[name] = toSchema(schema, io);
    return { $ref: `#/components/schemas/${name}` };
  };
  return { schemas, toSchema, named };
}

const STATUS_TEXT: Record<number, string> = {
  400: "The request is malformed or fails validation (the first issue, as `path: message`).",
  401: "Missing or wrong credential.",
  403: "The credential may not use this event type or id.",
  404: "Not found, or the surface is not configured.",
  405: "Only POST.",
  408: "The body did not arrive within limits.bodyTimeoutMs.",
  409: "Conflict: see `code` (revision_conflict, idempotency_in_progress, delivery_pending, …).",
  413: "The body is larger than the route's limit.",
  415: "Only application/json.",
  429: "Rate, in-flight or failed-credential limit; see Retry-After.",
  500: "Internal error (logged; the text never carries details).",
  502: "The Gateway refused the call.",
  503: "Redis, the Gateway or the runtime is not available now; retry (Retry-After).",
  504: "The Gateway did not answer in time.",
};

const INGRESS_ERRORS = [400, 401, 405, 408, 409, 413, 415, 429, 500, 502, 503, 504];

export function buildOpenApi(config: Config): Json {
  const w = componentsWriter();
  const error = w.named("ErrorEnvelope", errorEnvelope);
  const ops: Op[] = [];

  ops.push(
    { method: "get", path: "/healthz", summary: "Liveness", tags: ["operations"], ok: [{ status: 200, schema: healthAnswer, description: "The process is up." }], errors: [] },
    {
      method: "get",
      path: "/readyz",
      summary: "Readiness: Redis, the Gateway, the delivery workers",
      tags: ["operations"],
      ok: [
        { status: 200, schema: readyAnswer, description: "Ready." },
        { status: 503, schema: readyAnswer, description: "A check failed (see `checks`)." },
      ],
      errors: [],
    },
    { method: "get", path: "/metrics", summary: "Prometheus metrics", tags: ["operations"], ok: [{ status: 200, media: "text/plain", description: "Prometheus text format." }], errors: [] },
    { method: "get", path: "/openapi.json", summary: "This document", tags: ["operations"], ok: [{ status: 200, description: "OpenAPI 3.1." }], errors: [] },
  );

  const taskflowBody = w.named("TaskFlowAction", actionRequestSchema, "input");
  for (const route of config.routes) {
    ops.push({
      method: "post",
      path: route.path,
      summary: `TaskFlow route ${route.id}: one of the 13 actions`,
      description: `Drives the Gateway's TaskFlows for session ${route.sessionKey}, wire-compatible with the bundled webhooks plugin. create_flow and run_task take an Idempotency-Key (24 h; a retry while the first runs is 409 idempotency_in_progress).`,
      tags: ["taskflow"],
      security: [{ taskflowSecret: [] }, { taskflowSecretHeader: [] }],
      headers: [{ name: "Idempotency-Key", description: "create_flow and run_task: makes a retry safe (at most 255 characters)." }],
      body: { schema: actionRequestSchema, ref: taskflowBody, example: { action: "list_flows" } },
      ok: [
        { status: 200, schema: taskflowEnvelope, description: "The action's result." },
        { status: 202, schema: taskflowEnvelope, description: "cancel_flow: cancellation requested, child tasks still active (`code: cancel_pending`)." },
      ],
      errors: [...INGRESS_ERRORS, 404],
    });
  }

  ops.push({
    method: "post",
    path: "/v1/events",
    summary: "Publish an event to the endpoints subscribed to its type",
    description: "202 only once the event, its delivery records and its jobs are stored. Repeat an `id` to retry safely.",
    tags: ["publish"],
    security: [{ publishToken: [] }],
    body: { schema: publishSchema, example: { type: "lead.qualified", data: { email: "a@example.com" } } },
    ok: [{ status: 202, schema: publishAnswer, description: "Stored (or a duplicate of a stored event)." }],
    errors: [400, 401, 403, 404, 405, 408, 413, 415, 429, 503],
  });

  const inbound = config.webhooks.inbound;
  if (inbound?.enabled) {
    for (const [name, ep] of Object.entries(inbound.endpoints)) {
      if (!ep.enabled) continue;
      const scheme = ep.auth.scheme;
      const sig: Record<string, { name: string; description: string }[]> = {
        "standard-webhooks": [
          { name: "webhook-id", description: "The delivery id (also the idempotency key)." },
          { name: "webhook-timestamp", description: "Unix seconds (within the tolerance)." },
          { name: "webhook-signature", description: "v1,<base64 HMAC-SHA256 over id.timestamp.body>." },
        ],
        github: [
          { name: "x-hub-signature-256", description: "sha256=<hex HMAC-SHA256 of the body>." },
          { name: "x-github-delivery", description: "The delivery id (also the idempotency key)." },
        ],
        stripe: [{ name: "stripe-signature", description: "t=<ts>,v1=<hex HMAC-SHA256 over ts.body>." }],
        hmac: [{ name: ep.auth.header ?? "x-signature", description: "The HMAC of the body, as the endpoint's config says." }],
        token: [],
      };
      ops.push({
        method: "post",
        path: `${inbound.basePath}/${name}`,
        summary: `Inbound endpoint ${name}: ${ep.action === "agent" ? "start an agent run" : "wake the agent"} (${scheme})`,
        tags: ["inbound"],
        ...(scheme === "token" ? { security: [{ inboundToken: [] }, ...(ep.auth.header ? [{ [`inbound_${name}`]: [] }] : [])] } : {}),
        headers: sig[scheme]!.map((h) => ({ ...h, required: !/delivery|webhook-id/.test(h.name) })),
        body: { schema: z.json(), example: { text: "hello" } },
        ok:
          ep.action === "agent"
            ? [{ status: 202, schema: inboundAgentAnswer, description: "The Gateway admitted the run (`runId`); `duplicate: true` for a repeated delivery id." }]
            : [{ status: 200, schema: inboundWakeAnswer, description: "The Gateway's answer to the wake." }],
        errors: INGRESS_ERRORS,
      });
    }
  }

  const admin = (method: "get" | "post", path: string, summary: string, schema: z.ZodType, extra: Partial<Op> = {}): Op => ({
    method,
    path: `/admin/api${path}`,
    summary,
    tags: ["admin"],
    security: [{ adminToken: [] }, { dashboardSession: [] }],
    ok: [{ status: method === "post" && !/enable|disable|discard/.test(path) ? 202 : 200, schema, description: "Done." }],
    errors: [400, 401, 404, 409, 415, 429, 503],
    ...extra,
  });
  ops.push(
    admin("get", "/routes", "The TaskFlow routes and inbound endpoints served", adminAnswers.routes),
    admin("get", "/endpoints", "Endpoints: enabled, circuit breaker, in flight", adminAnswers.endpoints),
    admin("post", "/endpoints/{name}/test", "Send a webhook.test to one endpoint", adminAnswers.endpointTest, { pathParams: ["name"] }),
    admin("post", "/endpoints/{name}/enable", "Enable an endpoint", adminAnswers.endpointToggle, { pathParams: ["name"] }),
    admin("post", "/endpoints/{name}/disable", "Disable an endpoint", adminAnswers.endpointToggle, { pathParams: ["name"] }),
    admin("get", "/endpoints/stats", "Each endpoint's success rate and latency over the last hour", adminAnswers.endpointStats, { query: endpointStatsQuery }),
    admin("get", "/deliveries", "Deliveries, newest first, filtered by endpoint, status, event type and time window", adminAnswers.deliveries, { query: deliveryListQuery }),
    admin("get", "/find", "A delivery by its id, or an event's deliveries by the event id", adminAnswers.find, { query: findQuery }),
    admin("get", "/deliveries/{id}", "One delivery with every attempt", adminAnswers.delivery, { pathParams: ["id"] }),
    admin("post", "/deliveries/{id}/replay", "Send a delivery again", adminAnswers.replay, { pathParams: ["id"] }),
    admin("post", "/deliveries/replay", "Replay an endpoint's failed deliveries (dryRun: count them, send nothing)", adminAnswers.bulkReplay, {
      body: { schema: bulkReplayBody, example: { endpoint: "crm", since: "1h", dryRun: true } },
      ok: [
        { status: 202, schema: adminAnswers.bulkReplay, description: "Replays started." },
        { status: 200, schema: adminAnswers.bulkReplay, description: "A dry run: how many would be replayed; nothing was." },
      ],
    }),
    admin("get", "/parked", "Parked events (stored nowhere for a reason retrying cannot fix)", adminAnswers.parkedList, { query: parkedQuery }),
    admin("get", "/parked/{id}", "One parked event", adminAnswers.parked, { pathParams: ["id"] }),
    admin("post", "/parked/{id}/replay", "Publish a parked event again", adminAnswers.parkedReplay, { pathParams: ["id"] }),
    admin("post", "/parked/{id}/discard", "Drop a parked event", adminAnswers.parkedDiscard, { pathParams: ["id"] }),
    admin("get", "/inbound", "Inbound endpoints and their newest runs", adminAnswers.inbound, { query: inboundQuery }),
    admin("get", "/queue", "BullMQ job counts", adminAnswers.queue),
  );

  const html = (status: number, description: string) => ({ status, media: "text/html", description });
  ops.push(
    { method: "get", path: "/dashboard", summary: "The dashboard (or its login form)", tags: ["dashboard"], ok: [html(200, "The page.")], errors: [] },
    {
      method: "post",
      path: "/dashboard/login",
      summary: "Log in with the admin token (form field `token`); sets the session cookie",
      tags: ["dashboard"],
      body: { schema: z.strictObject({ token: z.string() }), media: "application/x-www-form-urlencoded" },
      ok: [{ status: 303, description: "Logged in: back to /dashboard." }, html(401, "The token was not accepted.")],
      errors: [403, 404, 413, 415, 429],
    },
    { method: "post", path: "/dashboard/logout", summary: "End the session", tags: ["dashboard"], ok: [{ status: 303, description: "Logged out." }], errors: [403] },
    {
      method: "get",
      path: "/dashboard/events",
      summary: "Live updates (server-sent events: `snapshot`)",
      tags: ["dashboard"],
      security: [{ dashboardSession: [] }, { adminToken: [] }],
      ok: [{ status: 200, media: "text/event-stream", description: "A stream of snapshots." }],
      errors: [401, 503],
    },
  );

  const queryParams = (query: z.ZodObject | undefined) => {
    if (!query) return [];
    const schema = w.toSchema(query, "input") as { properties?: Record<string, unknown>; required?: string[] };
    return Object.entries(schema.properties ?? {}).map(([name, s]) => ({ name, in: "query", required: schema.required?.includes(name) ?? false, schema: s }));
  };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of ops) {
    const parameters = [
      ...(op.pathParams ?? []).map((name) => ({ name, in: "path", required: true, schema: { type: "string" } })),
      ...queryParams(op.query),
      ...(op.headers ?? []).map((h) => ({ name: h.name, in: "header", required: h.required ?? false, description: h.description, schema: { type: "string" } })),
    ];
    const responses: Record<string, unknown> = {};
    for (const r of op.ok) {
      const media = r.media ?? "application/json";
      responses[String(r.status)] = { description: r.description, ...(r.schema || media !== "application/json" ? { content: { [media]: { schema: r.schema ? w.toSchema(r.schema, "output") : { type: "string" } } } } : {}) };
    }
    for (const s of op.errors) responses[String(s)] ??= { description: STATUS_TEXT[s], content: { "application/json": { schema: error } } };
    (paths[op.path] ??= {})[op.method] = {
      operationId: `${op.method}${op.path.replace(/[^A-Za-z0-9]+(.)?/g, (_, ch: string | undefined) => (ch ?? "").toUpperCase())}`,
      summary: op.summary,
      ...(op.description ? { description: op.description } : {}),
      tags: op.tags,
      ...(op.security ? { security: op.security } : { security: [] }),
      ...(parameters.length ? { parameters } : {}),
      ...(op.body
        ? {
            requestBody: {
              required: true,
              content: { [op.body.media ?? "application/json"]: { schema: op.body.ref ?? w.toSchema(op.body.schema, "input"), ...(op.body.example !== undefined ? { example: op.body.example } : {}) } },
            },
          }
        : {}),
      responses,
    };
  }

  const webhooks: Record<string, unknown> = {};
  const headerParams = Object.entries(DELIVERY_HEADERS).map(([name, h]) => ({ name, in: "header", required: h.required, description: h.description, schema: { type: "string" } }));
  const hook = (name: string, summary: string, description: string, schema: z.ZodType) => {
    webhooks[name] = {
      post: {
        summary,
        description: `${description}\n\nThe body is the event's envelope unless the endpoint sets a \`transform\`. Answer 2xx within the endpoint's timeout; anything else is retried with backoff (410 disables the endpoint).`,
        parameters: headerParams,
        requestBody: { required: true, content: { "application/json": { schema: w.named(`Event_${name.replace(/[^A-Za-z0-9]+/g, "_")}`, schema) } } },
        responses: { "2XX": { description: "Received." } },
      },
    };
  };
  for (const [type, e] of Object.entries(EVENT_CATALOGUE)) hook(type, e.summary, `${e.description} (source: ${e.source})`, envelopeSchema(z.literal(type), e.data));
  for (const [name, e] of Object.entries(OPEN_EVENTS)) hook(name, e.summary, e.description, envelopeSchema(z.string(), e.data));

  return {
    openapi: "3.1.0",
    info: {
      title: "openclaw-webhooks",
      version: version(),
      description: "Webhooks for an OpenClaw Gateway: TaskFlow routes and inbound endpoints in, signed and retried deliveries out.",
    },
    servers: [{ url: "/" }],
    tags: ["taskflow", "publish", "inbound", "admin", "dashboard", "operations"].map((name) => ({ name })),
    paths,
    webhooks,
    components: {
      schemas: w.schemas,
      securitySchemes: {
        taskflowSecret: { type: "http", scheme: "bearer", description: "The route's shared secret (routes[].secret)." },
        taskflowSecretHeader: { type: "apiKey", in: "header", name: "x-openclaw-webhook-secret", description: "The route's shared secret, the plugin's other header." },
        publishToken: { type: "http", scheme: "bearer", description: "webhooks.publishToken." },
        adminToken: { type: "http", scheme: "bearer", description: "admin.token." },
        inboundToken: { type: "http", scheme: "bearer", description: "A token inbound endpoint's secret (webhooks.inbound.endpoints.<name>.auth)." },
        dashboardSession: { type: "apiKey", in: "cookie", name: "ocwh_admin", description: "The dashboard's session, after POST /dashboard/login." },
        ...Object.fromEntries(
          Object.entries(inbound?.enabled ? inbound.endpoints : {})
            .filter(([, ep]) => ep.enabled && ep.auth.scheme === "token" && ep.auth.header)
            .map(([name, ep]) => [`inbound_${name}`, { type: "apiKey", in: "header", name: ep.auth.header!, description: `Inbound endpoint ${name}'s token, in its own header.` }]),
        ),
      },
    },
  };
}
