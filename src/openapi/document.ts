import { z } from "zod";
import type { Config } from "../config/schema.js";
import { actionRequestSchema } from "../taskflow/actions.js";
import { version } from "../version.js";
import { errorEnvelope } from "./answers.js";
import { DELIVERY_HEADERS, EVENT_CATALOGUE, OPEN_EVENTS, envelopeSchema } from "./catalogue.js";
import { operations, type Json } from "./operations.js";

/**
 * `/openapi.json`: an OpenAPI 3.1 document of every HTTP surface this deployment serves (its
 * configured TaskFlow routes and inbound endpoints, publish, the admin API, the dashboard, health
 * and metrics), generated from the zod schemas the routes validate with (zod's own JSON Schema
 * output, draft 2020-12, which OpenAPI 3.1 uses), and the outgoing event catalogue as its
 * `webhooks`. Built once per process from the config; nothing secret is in it (secrets are
 * described, never shown).
 */

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
        Object.entries(v).map(([k, x]) => [
          k,
          k === "$ref" && typeof x === "string" && x.startsWith("#/$defs/") ? `#/components/schemas/${names.get(x.slice(8))}` : rewrite(x),
        ]),
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

export function buildOpenApi(config: Config): Json {
  const w = componentsWriter();
  const error = w.named("ErrorEnvelope", errorEnvelope);
  const ops = operations(config, w.named("TaskFlowAction", actionRequestSchema, "input"));

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
      responses[String(r.status)] = {
        description: r.description,
        ...(r.schema || media !== "application/json"
          ? { content: { [media]: { schema: r.schema ? w.toSchema(r.schema, "output") : { type: "string" } } } }
          : {}),
      };
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
              content: {
                [op.body.media ?? "application/json"]: {
                  schema: op.body.ref ?? w.toSchema(op.body.schema, "input"),
                  ...(op.body.example !== undefined ? { example: op.body.example } : {}),
                },
              },
            },
          }
        : {}),
      responses,
    };
  }

  const webhooks: Record<string, unknown> = {};
  const headerParams = Object.entries(DELIVERY_HEADERS).map(([name, h]) => ({
    name,
    in: "header",
    required: h.required,
    description: h.description,
    schema: { type: "string" },
  }));
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
  for (const [type, e] of Object.entries(EVENT_CATALOGUE))
    hook(type, e.summary, `${e.description} (source: ${e.source})`, envelopeSchema(z.literal(type), e.data));
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
        taskflowSecretHeader: {
          type: "apiKey",
          in: "header",
          name: "x-openclaw-webhook-secret",
          description: "The route's shared secret, the plugin's other header.",
        },
        publishToken: { type: "http", scheme: "bearer", description: "webhooks.publishToken." },
        adminToken: { type: "http", scheme: "bearer", description: "admin.token." },
        inboundToken: { type: "http", scheme: "bearer", description: "A token inbound endpoint's secret (webhooks.inbound.endpoints.<name>.auth)." },
        dashboardSession: { type: "apiKey", in: "cookie", name: "ocwh_admin", description: "The dashboard's session, after POST /dashboard/login." },
        ...Object.fromEntries(
          Object.entries(config.webhooks.inbound?.enabled ? config.webhooks.inbound.endpoints : {})
            .filter(([, ep]) => ep.enabled && ep.auth.scheme === "token" && ep.auth.header)
            .map(([name, ep]) => [
              `inbound_${name}`,
              { type: "apiKey", in: "header", name: ep.auth.header!, description: `Inbound endpoint ${name}'s token, in its own header.` },
            ]),
        ),
      },
    },
  };
}
