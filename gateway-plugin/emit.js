// The `webhooks_emit` agent tool (docs/bridge-plugin.md): an agent
// fires a named event, delivered by the openclaw-webhooks service like every other event.
//
// How it reaches the service: a POST to the service's `/v1/events` with the plugin's own publish
// token, with an id derived from the run and the tool call. Not a Gateway broadcast: tools are
// built from the plugin's "discovery" module copy, whose emitAgentEvent is disabled (reference
// §7.4), and a broadcast could not tell the agent that an event was refused or not stored. The
// call gives the agent the service's answer (stored, refused with a reason, or the service is
// away); the id makes a retried call a duplicate, not a second event, on whichever replica it lands.
import { createHash } from "node:crypto";

export const TOOL = "webhooks_emit";

// Types the service itself emits: an agent may never forge them, whatever the allow-list says.
export const RESERVED = ["message.", "session.", "tool.", "error.", "cron.", "task.", "flow.", "endpoint.", "inbound.", "webhook."];
export const DEFAULTS = {
  allow: ["custom.triggered", "lead.*", "intent.*", "handoff.*"],
  maxDataBytes: 16_384,
  perSession: { max: 20, windowMs: 60_000 },
  timeoutMs: 5_000,
};
const DOTTED = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$/;
const BARE = /^[A-Za-z0-9_-]{1,100}$/;

export class EmitRefused extends Error {}

/** The plugin config's `emit` and `service` blocks with defaults; throws on a bad value. */
export function readEmitConfig(raw = {}) {
  const emit = raw.emit ?? {};
  const service = raw.service;
  const cfg = {
    allow: emit.allow ?? DEFAULTS.allow,
    maxDataBytes: emit.maxDataBytes ?? DEFAULTS.maxDataBytes,
    perSession: { ...DEFAULTS.perSession, ...(emit.perSession ?? {}) },
    service: service ? { url: String(service.url).replace(/\/+$/, ""), token: service.token, timeoutMs: service.timeoutMs ?? DEFAULTS.timeoutMs } : undefined,
  };
  if (!Array.isArray(cfg.allow) || !cfg.allow.every((p) => typeof p === "string" && p !== ""))
    throw new Error("emit.allow: a list of event types or prefixes (lead.*)");
  return cfg;
}

const allowed = (allow, type) => allow.some((p) => (p.endsWith(".*") ? type.startsWith(p.slice(0, -1)) : p === "*" || p === type));

/**
 * The event an agent's call asks for, or EmitRefused with the reason the agent is told: a dotted
 * type as it is, a bare name as `custom.triggered` with `event_name`; the allow-list, the reserved
 * families and the size of `data` checked.
 */
export function eventFor(params, cfg) {
  if (!params || typeof params !== "object" || Array.isArray(params)) throw new EmitRefused("webhooks_emit takes { type, data? }");
  const raw = typeof params.type === "string" ? params.type.trim() : "";
  const data = params.data ?? {};
  if (typeof data !== "object" || data === null || Array.isArray(data)) throw new EmitRefused("data must be an object");
  let type;
  let eventName;
  if (DOTTED.test(raw) && raw.length <= 200) type = raw;
  else if (BARE.test(raw)) {
    type = "custom.triggered";
    eventName = raw;
  } else
    throw new EmitRefused(
      `type must be an event type such as lead.qualified or a bare name such as cancellation_intent (got ${JSON.stringify(raw).slice(0, 80)})`,
    );
  if (RESERVED.some((r) => type.startsWith(r))) throw new EmitRefused(`${type} is an event the webhook service sends itself; an agent cannot fire it`);
  if (!allowed(cfg.allow, type)) throw new EmitRefused(`${type} is not an event this agent may fire (allowed: ${cfg.allow.join(", ")})`);
  const size = Buffer.byteLength(JSON.stringify(data));
  if (size > cfg.maxDataBytes) throw new EmitRefused(`data is ${size} bytes; at most ${cfg.maxDataBytes} are allowed`);
  return { type, eventName, data };
}

/**
 * State shared by the plugin's two module copies (the Gateway imports the plugin twice: hooks run
 * in the "full" copy, tools in the "discovery" copy), on a global symbol. Bounded maps.
 */
export function shared() {
  const key = Symbol.for("openclaw-webhooks.bridge.emit");
  return (globalThis[key] ??= { calls: new Map(), runs: new Map(), rate: new Map() });
}
function remember(map, k, v, max = 5_000) {
  map.delete(k);
  map.set(k, v);
  if (map.size > max) map.delete(map.keys().next().value);
}

/** A sliding window of calls per session: true when one more is allowed now (and counts it). */
export function takeRate(state, sessionKey, perSession, now = Date.now()) {
  const times = (state.rate.get(sessionKey) ?? []).filter((t) => now - t < perSession.windowMs);
  if (times.length >= perSession.max) {
    remember(state.rate, sessionKey, times);
    return false;
  }
  times.push(now);
  remember(state.rate, sessionKey, times);
  return true;
}

/** The conversation's channel, where the Gateway has one (a hook context's `channel` or `channelId`). */
const channelOf = (ctx) =>
  typeof ctx?.channel === "string" && ctx.channel ? ctx.channel : typeof ctx?.channelId === "string" && ctx.channelId ? ctx.channelId : undefined;

/** The Gateway's run prompt starts with a `[timestamp]` the user did not write. */
const userText = (prompt) =>
  typeof prompt === "string"
    ? prompt
        .replace(/^\[[^\]]*\]\s*/, "")
        .split("\n")[0]
        .trim()
    : undefined;

/**
 * Hooks that learn what a tool context does not carry: the run id and channel (`before_tool_call`,
 * for every plugin) and the run's prompt, the event's `trigger_message` (`llm_input`, a
 * conversation hook: it runs only when the operator grants the plugin
 * `plugins.entries.webhooks-bridge.hooks.allowConversationAccess: true`).
 */
export function registerEmitHooks(api) {
  const state = shared();
  api.on("llm_input", (event, ctx) => {
    if (ctx?.sessionKey && event?.runId) remember(state.runs, ctx.sessionKey, { runId: event.runId, trigger: userText(event.prompt), channel: channelOf(ctx) });
  });
  api.on("before_tool_call", (event, ctx) => {
    const toolCallId = ctx?.toolCallId ?? event?.toolCallId;
    const runId = ctx?.runId ?? event?.runId;
    if (toolCallId && runId) remember(state.calls, toolCallId, { runId, channel: channelOf(ctx) });
    if (ctx?.sessionKey && runId) {
      const run = state.runs.get(ctx.sessionKey);
      if (!run || run.runId !== runId) remember(state.runs, ctx.sessionKey, { runId, channel: channelOf(ctx) });
    }
  });
}

const text = (o) => ({ content: [{ type: "text", text: JSON.stringify(o) }], details: o });

/**
 * The tool, for one agent context (`{ agentId, sessionKey, sessionId }`). `resolveToken` turns the
 * configured token (a string or a SecretRef) into its value.
 */
export function createEmitTool(toolContext, cfg, resolveToken, log) {
  const state = shared();
  return {
    name: TOOL,
    label: "Fire a webhook event",
    description:
      "Fire a named event to the systems subscribed to it (CRM, ticketing, alerts) through the webhook service. " +
      "Use a dotted type such as lead.qualified, intent.detected or handoff.requested, or a bare name such as cancellation_intent " +
      "(delivered as custom.triggered with event_name). Put what the receiver needs in data.",
    parameters: {
      type: "object",
      additionalProperties: false,
      required: ["type"],
      properties: {
        type: { type: "string", description: "lead.qualified, or a bare name such as cancellation_intent" },
        data: { type: "object", description: "What the receiver needs (an object)" },
      },
    },
    async execute(toolCallId, params) {
      const sessionKey = toolContext?.sessionKey;
      const { type, eventName, data } = eventFor(params, cfg);
      if (!cfg.service) throw new EmitRefused("the webhooks-bridge plugin has no service configured (plugins.entries.webhooks-bridge.config.service)");
      if (!takeRate(state, sessionKey ?? "", cfg.perSession)) {
        throw new EmitRefused(`rate limit: at most ${cfg.perSession.max} events per ${cfg.perSession.windowMs / 1000} s in this session; try again later`);
      }
      const call = state.calls.get(toolCallId);
      const run = sessionKey ? state.runs.get(sessionKey) : undefined;
      const runId = call?.runId ?? run?.runId;
      const channel = call?.channel ?? run?.channel;
      const context = Object.fromEntries(
        Object.entries({
          event_name: eventName,
          agentId: toolContext?.agentId,
          sessionKey,
          sessionId: toolContext?.sessionId,
          runId,
          channel,
          trigger_message: run && run.runId === runId ? run.trigger : undefined,
        }).filter(([, v]) => v !== undefined && v !== ""),
      );
      // The context is the Gateway's word, so it wins over fields of the same name in data.
      const body = {
        type,
        data: { ...data, ...context },
        id: `agent_${createHash("sha256")
          .update(JSON.stringify([runId ?? sessionKey ?? "", toolCallId]))
          .digest("hex")
          .slice(0, 32)}`,
      };
      const token = await resolveToken(cfg.service.token);
      if (!token) throw new EmitRefused("the service token does not resolve (plugins.entries.webhooks-bridge.config.service.token)");
      let last = "";
      for (let attempt = 0; attempt < 3; attempt++) {
        if (attempt) await new Promise((r) => setTimeout(r, 250 * attempt));
        let res;
        try {
          res = await fetch(`${cfg.service.url}/v1/events`, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
            body: JSON.stringify(body),
            signal: AbortSignal.timeout(cfg.service.timeoutMs),
          });
        } catch (err) {
          last = `the webhook service cannot be reached (${err?.cause?.code ?? err?.name ?? "error"})`;
          continue;
        }
        const answer = await res.json().catch(() => ({}));
        if (res.status === 202) {
          log?.info?.(`[webhooks-bridge] ${type} fired by ${sessionKey} (${body.id}, ${answer.deliveries ?? 0} deliveries)`);
          return text({ ok: true, id: answer.id ?? body.id, type, duplicate: Boolean(answer.duplicate), deliveries: answer.deliveries ?? 0 });
        }
        if (res.status === 401 || res.status === 404)
          throw new EmitRefused(`the webhook service refused the plugin's token (${res.status}); check plugins.entries.webhooks-bridge.config.service`);
        if (res.status < 500 && res.status !== 429) throw new EmitRefused(`the webhook service refused the event: ${answer.error ?? res.status}`);
        last = `the webhook service answered ${res.status}${answer.error ? `: ${answer.error}` : ""}`;
      }
      throw new EmitRefused(`${last}; the event was not sent`);
    },
  };
}
