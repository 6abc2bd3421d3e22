import { z } from "zod";
import { bulkReplayBody, deliveryListQuery, endpointStatsQuery, findQuery, inboundQuery, parkedQuery } from "../admin/schemas.js";
import type { Config } from "../config/schema.js";
import { publishSchema } from "../egress/publish-route.js";
import { actionRequestSchema } from "../taskflow/actions.js";
import { adminAnswers, healthAnswer, inboundAgentAnswer, inboundWakeAnswer, publishAnswer, readyAnswer, taskflowEnvelope } from "./answers.js";

/**
 * Every operation this deployment serves, described for /openapi.json (document.ts renders them):
 * health and metrics, the configured TaskFlow routes and inbound endpoints, publish, the admin API
 * and the dashboard. Request schemas are the ones the routes validate with; test/openapi.test.ts
 * holds this list to the routes the app really mounts.
 */
export type Json = Record<string, unknown>;
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

export const INGRESS_ERRORS = [400, 401, 405, 408, 409, 413, 415, 429, 500, 502, 503, 504];

export function operations(config: Config, taskflowBody: Json): Op[] {
  const ops: Op[] = [];

  ops.push(
    {
      method: "get",
      path: "/healthz",
      summary: "Liveness",
      tags: ["operations"],
      ok: [{ status: 200, schema: healthAnswer, description: "The process is up." }],
      errors: [],
    },
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
    {
      method: "get",
      path: "/metrics",
      summary: "Prometheus metrics",
      tags: ["operations"],
      ok: [{ status: 200, media: "text/plain", description: "Prometheus text format." }],
      errors: [],
    },
    { method: "get", path: "/openapi.json", summary: "This document", tags: ["operations"], ok: [{ status: 200, description: "OpenAPI 3.1." }], errors: [] },
  );

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
            ? [
                {
                  status: 202,
                  schema: inboundAgentAnswer,
                  description: "The Gateway admitted the run (`runId`); `duplicate: true` for a repeated delivery id.",
                },
              ]
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
    admin("get", "/deliveries", "Deliveries, newest first, filtered by endpoint, status, event type and time window", adminAnswers.deliveries, {
      query: deliveryListQuery,
    }),
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
    {
      method: "post",
      path: "/dashboard/logout",
      summary: "End the session",
      tags: ["dashboard"],
      ok: [{ status: 303, description: "Logged out." }],
      errors: [403],
    },
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

  return ops;
}
