/**
 * Gateway frames → webhook events. Every shape here was read off frames the real Gateway 2026.9.6
 * sent (test/fixtures/gateway/*.json, recorded by `npm run record:gateway` on one operator
 * connection after `sessions.subscribe {}`), and test/gateway-fixtures.test.ts replays them
 * through this mapping. Fields the frames do not carry are omitted, never invented.
 */

import { createHash } from "node:crypto";
import { agentOfSessionKey, messageText } from "../gateway/messages.js";
import { LRUCache } from "lru-cache";

/** An event ready for `publish`: `id` is derived from the Gateway frame, so every replica that
 * receives the same broadcast publishes the same id and the dedupe keeps one. */
export type MappedEvent = { type: string; data: Record<string, unknown>; id: string; source?: EventSource };
/** Where an event came from (a metrics label). */
export type EventSource = "gateway" | "flow" | "api" | "inbound" | "system";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/** A short stable hash of a frame: the id part of an event whose frame carries no natural one. */
const digest = (v: unknown) => createHash("sha256").update(JSON.stringify(v)).digest("hex").slice(0, 24);

/** Drops undefined values so the delivered JSON has no holes. */
function compact(o: Obj): Obj {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** `agent:<agentId>:<rest>` is the Gateway's session key form; the agent id is its second part. */
export function agentIdOf(p: Obj): string | undefined {
  const direct = str(p.agentId);
  if (direct) return direct;
  return agentOfSessionKey(str(p.sessionKey) ?? str(p.key));
}

/** The text of a transcript row ("" when it has none). */
const textOf = (message: Obj): string => messageText(message) ?? "";

/** The transcript's usage `{ input, output, totalTokens, … }` in the event's names (inputTokens, outputTokens, totalTokens). */
function usageOf(u: unknown): Obj | undefined {
  if (!isObj(u)) return undefined;
  const out = compact({ inputTokens: num(u.input), outputTokens: num(u.output), totalTokens: num(u.totalTokens) });
  return Object.keys(out).length ? out : undefined;
}

/** What every Gateway-derived event carries, so `filter.agentIds` works on all of them. */
function base(p: Obj): Obj {
  return compact({ agentId: agentIdOf(p), sessionKey: str(p.sessionKey), sessionId: str(p.sessionId), runId: str(p.runId) });
}

/**
 * `session.message`: one transcript row (user or assistant), with `messageId` and the session.
 * - user → `message.received`;
 * - assistant with text → `message.sent`, with the model, provider and usage the row carries. A
 *   row that only calls tools (no text) is left to `tool.called`; the Gateway's own error row
 *   (`stopReason: "error"`) to `error.occurred`.
 */
function sessionMessage(p: Obj): MappedEvent[] {
  const msg = isObj(p.message) ? p.message : undefined;
  const messageId = str(p.messageId);
  if (!msg || !messageId) return [];
  const meta = isObj(msg.__openclaw) ? msg.__openclaw : {};
  const common = { ...base(p), runId: str(p.runId) ?? str(meta.runId), channel: str(msg.channel) };
  const message = (role: string, content: string) => compact({ role, content, messageId, timestamp: num(msg.timestamp) });
  if (msg.role === "user") {
    return [
      {
        type: "message.received",
        id: `gw_in_${messageId}`,
        data: compact({ ...common, userId: str(msg.senderId), message: message("user", textOf(msg)) }),
      },
    ];
  }
  if (msg.role !== "assistant" || msg.stopReason === "error") return [];
  const content = textOf(msg);
  if (!content) return [];
  return [
    {
      type: "message.sent",
      id: `gw_msg_${messageId}`,
      data: compact({
        ...common,
        message: message("assistant", content),
        model: str(msg.model),
        provider: str(msg.provider),
        usage: usageOf(msg.usage),
        stopReason: str(msg.stopReason),
      }),
    },
  ];
}

/**
 * A run's terminal error: the `agent` lifecycle `phase: "error"` (`data.error`,
 * `data.errorObservation`), one per run. The `chat` `state: "error"` that follows it says the same
 * with fewer fields (no sessionId), so it is not mapped. While the Gateway retries the model it
 * sends `run_status` (`phase: "retrying"`) and lifecycle `finishing` frames with an error: not
 * errors yet.
 */
function runError(p: Obj, message: string | undefined, detail: Obj | undefined): MappedEvent[] {
  const runId = str(p.runId);
  if (!runId) return [];
  return [
    {
      type: "error.occurred",
      id: `gw_err_${runId}`,
      data: compact({
        ...base(p),
        error: compact({
          message: message ?? "agent run failed",
          provider: str(detail?.provider),
          model: str(detail?.model),
          reason: str(detail?.failoverReason),
          kind: str(detail?.providerRuntimeFailureKind),
        }),
      }),
    },
  ];
}

function agent(p: Obj): MappedEvent[] {
  const data = isObj(p.data) ? p.data : {};
  if (p.stream === "lifecycle" && data.phase === "error") {
    return runError(p, str(data.error), isObj(data.errorObservation) ? data.errorObservation : undefined);
  }
  return [];
}

/**
 * `session.tool` (reaches a `sessions.subscribe` connection; the `agent` stream `tool` reaches only
 * the run's caller): `data.phase` `start` with `args`, `result` with `isError` and `result`. The
 * duration is the time between the two frames, when this mapper saw both.
 */
function sessionTool(p: Obj, starts: LRUCache<string, number>): MappedEvent[] {
  const data = isObj(p.data) ? p.data : {};
  const runId = str(p.runId) ?? "";
  const toolCallId = str(data.toolCallId);
  if (!toolCallId) return [];
  const common = compact({ ...base(p), toolName: str(data.name), toolCallId });
  const key = `${runId}\u0000${toolCallId}`;
  if (data.phase === "start") {
    const ts = num(p.ts);
    if (ts !== undefined) {
      starts.set(key, ts);
    }
    return [{ type: "tool.called", id: `gw_tool_${runId}_${toolCallId}_${seqOf(p)}_start`, data: compact({ ...common, args: data.args }) }];
  }
  if (data.phase !== "result") return [];
  const started = starts.get(key);
  starts.delete(key);
  const ended = num(p.ts);
  const result = isObj(data.result) ? textOf(data.result) : undefined;
  return [
    {
      type: "tool.completed",
      id: `gw_tool_${runId}_${toolCallId}_${seqOf(p)}_end`,
      data: compact({
        ...common,
        isError: typeof data.isError === "boolean" ? data.isError : undefined,
        durationMs: started !== undefined && ended !== undefined ? ended - started : undefined,
        result: result === undefined ? undefined : result.length > MAX_RESULT_CHARS ? `${result.slice(0, MAX_RESULT_CHARS)}…` : result,
      }),
    },
  ];
}

/**
 * The frame's place in its run (`seq`, the same on every connection): some models number their
 * tool calls `call_1`, `call_2`, … afresh in each model turn, so the call id alone may repeat
 * within a run. Else its time, else a hash of the frame.
 */
const seqOf = (p: Obj) => String(num(p.seq) ?? num(p.ts) ?? digest(p));

/** Tool calls whose result has not come yet, remembered for their duration (oldest forgotten first). */
const MAX_OPEN_TOOL_CALLS = 10_000;
/** A tool's result text is cut here: a `read` of a large file would otherwise fill every delivery. */
const MAX_RESULT_CHARS = 4_096;

/**
 * `sessions.changed` (only after `sessions.subscribe`):
 * - `session.created`: `reason: "create"` (the `agent` method, `sessions.create`). A session that
 *   `chat.send` makes for a new key gets no such frame (recorded), so the first change of a session
 *   within a minute of its `createdAt` counts too; the id (key, session id) keeps it one event.
 * - `session.ended`: `reason: "reset"` or `"delete"`, with that reason. A delete also sends a bare
 *   `{ reason: "delete", ts }` with no key: nothing to say, so it is skipped.
 * Other reasons (`send`, `participants`, `agent.run.started`, run phases) are activity.
 */
function sessionsChanged(p: Obj): MappedEvent[] {
  const reason = str(p.reason);
  const key = str(p.sessionKey);
  if (!key) return [];
  const session = isObj(p.session) ? p.session : {};
  const sessionId = str(p.sessionId) ?? str(session.sessionId) ?? "";
  if (reason === "reset" || reason === "delete") {
    // A reset keeps the session id (recorded): the frame's time tells two resets apart.
    return [
      {
        type: "session.ended",
        id: `gw_session_ended_${key}_${sessionId}_${reason}_${num(p.ts) ?? digest(p)}`,
        data: compact({ ...base(p), runId: undefined, sessionId: sessionId || undefined, reason }),
      },
    ];
  }
  const createdAt = num(session.createdAt);
  const ts = num(p.ts);
  const fresh = createdAt !== undefined && ts !== undefined && ts - createdAt <= NEW_SESSION_MS;
  if (reason !== "create" && !fresh) return [];
  return [
    {
      type: "session.created",
      id: `gw_session_created_${key}_${sessionId}`,
      data: compact({
        agentId: agentIdOf(p),
        sessionKey: key,
        sessionId: sessionId || undefined,
        createdVia: str(session.createdVia),
        kind: str(session.kind),
        createdAt,
      }),
    },
  ];
}

/** How long after its creation a session's first change still announces it (see sessionsChanged). */
const NEW_SESSION_MS = 60_000;

/**
 * `cron` `action: "finished"` → `cron.finished`: the frame as the Gateway sent it, a superset of
 * the body the Gateway itself POSTs for `delivery.mode: "webhook"` (docs/openclaw-contract.md §3.3; the fixture test
 * checks the two agree) plus `completionStatus`, `nextRunAtMs` and, for a manual run, `runId`. On
 * an error run the summary and diagnostics are removed, as the Gateway's own POST does. Scheduled
 * runs carry no runId: their id is the run's start time.
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

/**
 * `task` `action: "upserted"` → `task.updated`, once per status the task reaches (queued,
 * running, completed, failed, …). A run upserts its task five to ten times with the same status
 * (activity, progress text); a subscriber wants the transitions, and the id `(taskId, status)`
 * makes each one a single event across replicas without any state.
 */
function task(p: Obj): MappedEvent[] {
  if (p.action !== "upserted" || !isObj(p.task)) return [];
  const t = p.task;
  const taskId = str(t.taskId) ?? str(t.id);
  const status = str(t.status);
  if (!taskId || !status) return [];
  return [
    {
      type: "task.updated",
      id: `task_${taskId}_${status}`,
      data: compact({ agentId: str(t.agentId) ?? agentIdOf(t), sessionKey: str(t.sessionKey), runId: str(t.runId), status, task: t }),
    },
  ];
}

/**
 * A mapper for one Gateway connection: maps one frame to zero or more webhook events and never
 * throws on odd payloads. It remembers open tool calls (bounded) for their durations.
 */
export function createGatewayMapper() {
  const toolStarts = new LRUCache<string, number>({ max: MAX_OPEN_TOOL_CALLS });
  return (event: string, payload: unknown): MappedEvent[] => {
    if (!isObj(payload)) return [];
    switch (event) {
      // `chat` finals and errors repeat what session.message and the agent lifecycle carry.
      case "session.message":
        return sessionMessage(payload);
      case "session.tool":
        return sessionTool(payload, toolStarts);
      case "sessions.changed":
        return sessionsChanged(payload);
      case "agent":
        return agent(payload);
      case "cron":
        return cron(payload);
      case "task":
        return task(payload);
      default:
        return [];
    }
  };
}

/** Maps one frame with a mapper of its own (no tool durations across calls). */
export function mapGatewayEvent(event: string, payload: unknown): MappedEvent[] {
  return createGatewayMapper()(event, payload);
}
