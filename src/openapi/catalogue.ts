import { z } from "zod";

/**
 * The outgoing event catalogue: every event type the service delivers, as zod schemas of its
 * envelope and `data`. `/openapi.json` publishes them (its `webhooks` section, document.ts), and
 * the tests hold the producers to them: the mappers' output for every frame the real Gateway
 * 2026.9.6 sent (test/fixtures/gateway), the flow, inbound, endpoint and agent events, and the
 * payloads real Gateway runs delivered (test/openclaw). Objects are open (`looseObject`): a field
 * added later is not a breaking change for a receiver, and the Gateway's own objects (a cron job,
 * a task) are passed on as it sent them.
 */

const id = z.string().min(1);

/** What every Gateway-derived event carries where the frame has it (`filter.agentIds` reads agentId). */
const gatewayBase = {
  agentId: id.optional().describe("The agent, from the frame or its session key `agent:<agentId>:…`."),
  sessionKey: id.optional(),
  sessionId: id.optional(),
  runId: id.optional(),
};

const message = (role: "user" | "assistant") =>
  z.looseObject({
    role: z.literal(role),
    content: z.string().describe("The text of the transcript row."),
    messageId: id,
    timestamp: z.number().optional().describe("Epoch ms, as the Gateway stamped the row."),
  });

const flowView = z.looseObject({
  flowId: id,
  syncMode: z.enum(["managed", "task_mirrored"]),
  controllerId: z.string().optional(),
  currentStep: z.string().optional(),
  blockedTaskId: z.string().optional(),
  blockedSummary: z.string().optional(),
  revision: z.number().int().nonnegative(),
  status: z.string(),
  notifyPolicy: z.enum(["done_only", "state_changes", "silent"]),
  goal: z.string(),
  stateJson: z.unknown().optional(),
  waitJson: z.unknown().optional(),
  cancelRequestedAt: z.number().optional(),
  createdAt: z.number(),
  updatedAt: z.number(),
  endedAt: z.number().optional(),
});
const flowData = z.looseObject({ routeId: id.describe("The TaskFlow route the change came through."), flow: flowView });

/** Fields the bridge plugin's `webhooks_emit` tool adds from the Gateway's own context (gateway-plugin/emit.js). */
const agentContext = {
  agentId: id.optional(),
  sessionKey: id.optional(),
  sessionId: id.optional(),
  runId: id.optional(),
  channel: id.optional().describe("The conversation's channel, where the Gateway has one."),
  trigger_message: z.string().optional().describe("The user's message that started the run (needs the plugin's conversation access)."),
};

type Entry = { summary: string; description: string; source: "gateway" | "flow" | "inbound" | "system" | "agent" | "api"; data: z.ZodType };

export const EVENT_CATALOGUE = {
  "message.received": {
    source: "gateway",
    summary: "A user's message reached an agent",
    description: "A `session.message` frame with a user row.",
    data: z.looseObject({ ...gatewayBase, channel: id.optional(), userId: id.optional(), message: message("user") }),
  },
  "message.sent": {
    source: "gateway",
    summary: "An agent replied",
    description: "A `session.message` frame with an assistant row that has text (a row that only calls tools is `tool.called`).",
    data: z.looseObject({
      ...gatewayBase,
      channel: id.optional(),
      message: message("assistant"),
      model: id.optional(),
      provider: id.optional(),
      usage: z.looseObject({ inputTokens: z.number().optional(), outputTokens: z.number().optional(), totalTokens: z.number().optional() }).optional(),
      stopReason: id.optional(),
    }),
  },
  "tool.called": {
    source: "gateway",
    summary: "An agent called a tool",
    description: "A `session.tool` frame, phase `start`.",
    data: z.looseObject({ ...gatewayBase, toolName: id.optional(), toolCallId: id, args: z.unknown().optional() }),
  },
  "tool.completed": {
    source: "gateway",
    summary: "A tool call returned",
    description: "A `session.tool` frame, phase `result`; the result text is cut at 4,096 characters.",
    data: z.looseObject({
      ...gatewayBase,
      toolName: id.optional(),
      toolCallId: id,
      isError: z.boolean().optional(),
      durationMs: z.number().optional(),
      result: z.string().optional(),
    }),
  },
  "session.created": {
    source: "gateway",
    summary: "A session began",
    description: "A `sessions.changed` frame for a new session.",
    data: z.looseObject({
      agentId: id.optional(),
      sessionKey: id,
      sessionId: id.optional(),
      createdVia: id.optional(),
      kind: id.optional(),
      createdAt: z.number().optional(),
    }),
  },
  "session.ended": {
    source: "gateway",
    summary: "A session was reset or deleted",
    description: "A `sessions.changed` frame with reason `reset` or `delete`.",
    data: z.looseObject({ agentId: id.optional(), sessionKey: id, sessionId: id.optional(), reason: z.enum(["reset", "delete"]) }),
  },
  "error.occurred": {
    source: "gateway",
    summary: "An agent run failed",
    description: "The run's terminal error (`agent` lifecycle `phase: error`), once per run; model retries are not errors yet.",
    data: z.looseObject({
      ...gatewayBase,
      runId: id,
      error: z.looseObject({ message: z.string(), provider: id.optional(), model: id.optional(), reason: id.optional(), kind: id.optional() }),
    }),
  },
  "cron.finished": {
    source: "gateway",
    summary: "A cron job ran",
    description:
      "The `cron` frame `action: finished` as the Gateway sent it: a superset of the body the Gateway itself POSTs for `delivery.mode: webhook`. An error run carries no summary or diagnostics.",
    data: z.looseObject({
      jobId: id,
      action: z.literal("finished"),
      status: id.optional(),
      runId: id.optional(),
      runAtMs: z.number().optional(),
      agentId: id.optional(),
      job: z.looseObject({ id: id.optional() }).optional(),
    }),
  },
  "task.updated": {
    source: "gateway",
    summary: "A task reached a new status",
    description: "A `task` frame `action: upserted`, once per status the task reaches; `task` is the Gateway's record as sent.",
    data: z.looseObject({ agentId: id.optional(), sessionKey: id.optional(), runId: id.optional(), status: id, task: z.looseObject({}) }),
  },
  "flow.created": { source: "flow", summary: "A TaskFlow was created", description: "Sent when the flow's notifyPolicy is `state_changes`.", data: flowData },
  "flow.waiting": { source: "flow", summary: "A TaskFlow is waiting", description: "Sent when the flow's notifyPolicy is `state_changes`.", data: flowData },
  "flow.resumed": { source: "flow", summary: "A TaskFlow resumed", description: "Sent when the flow's notifyPolicy is `state_changes`.", data: flowData },
  "flow.finished": { source: "flow", summary: "A TaskFlow finished", description: "Sent unless the flow's notifyPolicy is `silent`.", data: flowData },
  "flow.failed": { source: "flow", summary: "A TaskFlow failed", description: "Sent unless the flow's notifyPolicy is `silent`.", data: flowData },
  "flow.cancelled": { source: "flow", summary: "A TaskFlow was cancelled", description: "Sent unless the flow's notifyPolicy is `silent`.", data: flowData },
  "inbound.completed": {
    source: "inbound",
    summary: "An agent run an inbound endpoint started has ended",
    description: "Closes the loop of an `agent` inbound endpoint: the run's status and its last reply.",
    data: z.looseObject({
      endpoint: id,
      runId: id,
      status: z.enum(["ok", "error"]),
      agentId: id.optional(),
      sessionKey: id.optional(),
      reply: z.string().optional(),
      error: z.string().optional(),
    }),
  },
  "endpoint.disabled": {
    source: "system",
    summary: "An endpoint was disabled",
    description:
      "After a 410 or a failure run past the disable rule, or by an operator. Names the endpoint by name and origin only (a URL's path often is its credential).",
    data: z.looseObject({ endpoint: id, origin: z.string(), reason: z.string() }),
  },
  "webhook.test": {
    source: "system",
    summary: "A test delivery",
    description: "Sent to one endpoint by `POST /admin/api/endpoints/{name}/test` (the CLI's `endpoints test`).",
    data: z.looseObject({ endpoint: id, message: z.string() }),
  },
  "custom.triggered": {
    source: "agent",
    summary: "An agent fired a named event",
    description:
      "The bridge plugin's `webhooks_emit` tool with a bare name (`cancellation_intent`): the name is `event_name`; the agent's data and the Gateway's context fields follow. A dotted name (`lead.qualified`) is delivered as its own type with the same fields and no `event_name`.",
    data: z.looseObject({ event_name: id, ...agentContext }),
  },
} satisfies Record<string, Entry>;

export type CatalogueType = keyof typeof EVENT_CATALOGUE;
export const CATALOGUE_TYPES = Object.keys(EVENT_CATALOGUE) as CatalogueType[];

/** Events an agent fires with a dotted type, and events publishers send on `POST /v1/events`: their data is the sender's. */
export const OPEN_EVENTS = {
  "agent event": {
    summary: "An agent fired a dotted event type (lead.qualified, intent.detected, handoff.requested, …)",
    description: "Any type the plugin's allow-list lets an agent fire; `data` is the agent's, with the Gateway's context fields added.",
    data: z.looseObject(agentContext),
  },
  "published event": {
    summary: "An event a system published on POST /v1/events",
    description: "Any type outside the service's own families; `data` is what the publisher sent.",
    data: z.json(),
  },
} as const;

/** Seed 002's envelope: what every delivery's body is, unless the endpoint sets a `transform`. */
export function envelopeSchema(type: z.ZodType, data: z.ZodType) {
  return z.strictObject({
    id: id.describe("Stable for the event: the dedupe key (also `webhook-id`'s event, not delivery)."),
    type,
    timestamp: z.iso.datetime().describe("When the event was created (ISO 8601, UTC)."),
    instanceId: id.describe("The service's instance id (`webhooks.instanceId`)."),
    data,
  });
}

/** The schema a delivered event of `type` must meet: its catalogue entry, else an open one. */
export function schemaForType(type: string, source?: "agent" | "api"): z.ZodType {
  const entry = (EVENT_CATALOGUE as Record<string, Entry>)[type];
  if (entry) return envelopeSchema(z.literal(type), entry.data);
  return envelopeSchema(z.string(), source === "agent" ? OPEN_EVENTS["agent event"].data : OPEN_EVENTS["published event"].data);
}

/**
 * The headers of a delivery (src/egress/sign.ts, engine.ts). The signature headers depend on the
 * endpoint's `signing` schemes; by default (`openclaw` and `standard`) all of them are sent.
 */
export const DELIVERY_HEADERS = {
  "webhook-id": { description: "Standard Webhooks: the delivery id (one per event and endpoint; the same on every retry).", required: false },
  "webhook-timestamp": { description: "Standard Webhooks: unix seconds when this attempt was signed.", required: false },
  "webhook-signature": {
    description:
      'Standard Webhooks: `v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>`, one entry per active secret (space-separated during rotation).',
    required: false,
  },
  "x-openclaw-signature": {
    description: 'Seed 002: `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` (or over the body alone with the endpoint\'s `legacy-body` scheme).',
    required: false,
  },
  "x-openclaw-timestamp": { description: "Seed 002: unix seconds, the timestamp the `x-openclaw-signature` covers.", required: false },
  "x-openclaw-event": { description: "The event's type.", required: true },
} as const;
