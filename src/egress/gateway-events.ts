import { createHash } from "node:crypto";

/** An event ready for `publish`: `id` is derived from the Gateway frame, so every replica that
 * receives the same broadcast publishes the same id and the dedupe keeps one. */
export type MappedEvent = { type: string; data: Record<string, unknown>; id: string; source?: EventSource };
/** Where an event came from (a metrics label). */
export type EventSource = "gateway" | "flow" | "api" | "inbound" | "system";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/** Drops undefined values so the delivered JSON has no holes. */
function compact(o: Obj): Obj {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** Stable short hash of a payload: the id of an event whose frame carries no natural id. */
function digest(...parts: unknown[]): string {
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex").slice(0, 24);
}

/** `agent:<agentId>:<rest>` is the Gateway's session key form; the agent id is its second part. */
export function agentIdOf(p: Obj): string | undefined {
  const direct = str(p.agentId);
  if (direct) return direct;
  const key = str(p.sessionKey) ?? str(p.key);
  const m = key ? /^agent:([^:]+):/.exec(key) : null;
  return m?.[1];
}

/** The text of a chat message: a string, or the `text` parts of a content array. */
function textOf(message: unknown): string | undefined {
  if (typeof message === "string") return message;
  if (!isObj(message)) return undefined;
  const c = message.content ?? message.text;
  if (typeof c === "string") return c;
  if (Array.isArray(c)) {
    return c
      .filter((part): part is Obj => isObj(part) && part.type === "text" && typeof part.text === "string")
      .map((part) => part.text as string)
      .join("");
  }
  return undefined;
}

/** Seed 002 names usage `{ inputTokens, outputTokens }`; the Gateway uses `input`/`output` or the provider's names. */
function usageOf(u: unknown): Obj | undefined {
  if (!isObj(u)) return undefined;
  const inputTokens = num(u.inputTokens) ?? num(u.input) ?? num(u.input_tokens) ?? num(u.promptTokens);
  const outputTokens = num(u.outputTokens) ?? num(u.output) ?? num(u.output_tokens) ?? num(u.completionTokens);
  return compact({ inputTokens, outputTokens });
}

function base(p: Obj): Obj {
  return compact({ agentId: agentIdOf(p), sessionKey: str(p.sessionKey) ?? str(p.key), sessionId: str(p.sessionId), runId: str(p.runId) });
}

function chat(p: Obj): MappedEvent[] {
  const runId = str(p.runId);
  if (p.state === "final") {
    const msg = isObj(p.message) ? p.message : {};
    return [
      {
        type: "message.sent",
        id: `gw_msg_${runId ?? digest(p)}`,
        data: compact({
          ...base(p),
          channel: str(msg.channel) ?? str(p.channel),
          message: compact({ role: str(msg.role) ?? "assistant", content: textOf(p.message) ?? "", messageId: str(msg.id) ?? str(msg.messageId) }),
          model: str(msg.model) ?? str(p.model),
          usage: usageOf(p.usage ?? msg.usage),
          stopReason: str(p.stopReason),
        }),
      },
    ];
  }
  if (p.state === "error") {
    const detail = isObj(p.errorDetail) ? p.errorDetail : undefined;
    return [
      {
        // Same id as the agent lifecycle error of the same run: one error.occurred per run.
        type: "error.occurred",
        id: `gw_err_${runId ?? digest(p)}`,
        data: compact({
          ...base(p),
          source: "chat",
          error: compact({ kind: str(p.errorKind), message: str(p.errorMessage) ?? "agent run failed", provider: str(detail?.provider), model: str(detail?.model), httpStatus: num(detail?.httpStatus) }),
        }),
      },
    ];
  }
  return []; // deltas and aborts are not seed 002 events
}

function agent(p: Obj): MappedEvent[] {
  const data = isObj(p.data) ? p.data : {};
  const runId = str(p.runId);
  if (p.stream === "tool") {
    const phase = str(data.phase);
    const toolCallId = str(data.toolCallId) ?? str(data.id);
    const common = compact({ ...base(p), toolName: str(data.name) ?? str(data.toolName), toolCallId });
    const key = `${runId ?? ""}_${toolCallId ?? p.seq}`;
    if (phase === "start") return [{ type: "tool.called", id: `gw_tool_${key}_start`, data: compact({ ...common, args: data.args }) }];
    if (phase === "result" || phase === "end") {
      return [
        {
          type: "tool.completed",
          id: `gw_tool_${key}_end`,
          data: compact({ ...common, isError: typeof data.isError === "boolean" ? data.isError : undefined, durationMs: num(data.durationMs) }),
        },
      ];
    }
    return [];
  }
  if (p.stream === "lifecycle" && data.phase === "error") {
    return [
      {
        type: "error.occurred",
        id: `gw_err_${runId ?? digest(p)}`,
        data: compact({ ...base(p), source: "agent", error: compact({ message: str(data.error) ?? str(data.message) ?? "agent run failed" }) }),
      },
    ];
  }
  return [];
}

function sessionMessage(p: Obj): MappedEvent[] {
  const msg = isObj(p.message) ? p.message : undefined;
  if (!msg || msg.role !== "user") return []; // assistant replies arrive as chat finals (message.sent)
  const messageId = str(msg.id) ?? str(msg.messageId);
  return [
    {
      type: "message.received",
      id: `gw_in_${messageId ?? digest(p.sessionKey ?? p.key, msg)}`,
      data: compact({
        ...base(p),
        channel: str(msg.channel) ?? str(p.channel),
        userId: str(msg.senderId) ?? str(p.userId),
        message: compact({ role: "user", content: textOf(msg) ?? "", messageId }),
      }),
    },
  ];
}

function sessionsChanged(p: Obj): MappedEvent[] {
  const action = str(p.action) ?? str(p.reason) ?? str(p.kind);
  const key = str(p.sessionKey) ?? str(p.key);
  if (!key) return [];
  const type = action === "created" ? "session.created" : action === "deleted" || action === "ended" || action === "expired" ? "session.ended" : undefined;
  if (!type) return [];
  return [{ type, id: `gw_${type}_${digest(key, str(p.sessionId), num(p.ts) ?? num(p.updatedAt))}`, data: compact({ ...base(p), reason: action }) }];
}

/**
 * Seed 004's finished-run payload, as the Gateway posts it for `delivery.mode: "webhook"`
 * (reference §4.2): the CronEvent; on an error run, summary and diagnostics are removed.
 * Deduped on (jobId, runId), or the run's start time when the event has no runId.
 */
function cron(p: Obj): MappedEvent[] {
  if (p.action !== "finished") return [];
  const jobId = str(p.jobId);
  if (!jobId) return [];
  const data: Obj = { ...p };
  if (p.status === "error") {
    delete data.summary;
    delete data.diagnostics;
    if (isObj(data.job) && isObj(data.job.state)) {
      const { lastDiagnostics: _d, lastDiagnosticSummary: _s, ...state } = data.job.state;
      data.job = { ...data.job, state };
    }
  }
  const agentId = isObj(p.job) ? str(p.job.agentId) : undefined;
  if (agentId && data.agentId === undefined) data.agentId = agentId;
  const run = str(p.runId) ?? String(num(p.runAtMs) ?? digest(p));
  return [{ type: "cron.finished", id: `cron_${jobId}_${run}`, data }];
}

function task(p: Obj): MappedEvent[] {
  if (p.action !== "upserted" || !isObj(p.task)) return [];
  const t = p.task;
  const taskId = str(t.taskId) ?? str(t.id);
  if (!taskId) return [];
  return [
    {
      type: "task.updated",
      id: `task_${taskId}_${str(t.status) ?? ""}_${num(t.updatedAt) ?? digest(t)}`,
      data: compact({ agentId: str(t.agentId) ?? agentIdOf(t), sessionKey: str(t.sessionKey), task: t }),
    },
  ];
}

const MAPPERS: Record<string, (p: Obj) => MappedEvent[]> = {
  chat,
  agent,
  "session.message": sessionMessage,
  "sessions.changed": sessionsChanged,
  cron,
  task,
};

/** The Gateway event families this service turns into webhooks (the README's mapping table). */
export const MAPPED_GATEWAY_EVENTS = Object.keys(MAPPERS);

/** Maps one Gateway event frame to zero or more webhook events. Never throws on odd payloads. */
export function mapGatewayEvent(event: string, payload: unknown): MappedEvent[] {
  const mapper = MAPPERS[event];
  if (!mapper || !isObj(payload)) return [];
  return mapper(payload);
}
