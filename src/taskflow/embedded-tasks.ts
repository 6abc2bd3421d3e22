import { randomUUID } from "node:crypto";
import { agentOfSessionKey } from "../gateway/messages.js";
import type { ActionParams } from "./runtime.js";
import type { NotifyPolicy, TaskStatus } from "./types.js";

/**
 * The embedded runtime's child tasks, built as the 2026.9.6 Gateway builds them for a managed
 * flow's `runTask` (src/tasks/task-registry.store.kernel.ts `buildTaskRecordForCreate`,
 * task-registry-create-rules.ts `selectExistingTaskForCreate` / `buildTaskCreateMergePatch`), and
 * checked against the bundled plugin's recorded answers (test/fixtures/taskflow-differential.json).
 */
export type TaskRecord = {
  taskId: string;
  runtime: "subagent" | "acp";
  ownerKey: string;
  requesterSessionKey: string;
  scopeKind: "session";
  parentFlowId: string;
  sourceId?: string;
  childSessionKey?: string;
  parentTaskId?: string;
  agentId?: string;
  runId?: string;
  label?: string;
  task: string;
  progressSummary?: string;
  error?: string;
  status: TaskStatus;
  deliveryStatus: string;
  notifyPolicy: NotifyPolicy;
  createdAt: number;
  startedAt?: number;
  lastEventAt?: number;
};

type RunTaskParams = ActionParams<"run_task">;

const trimmed = (s: string | null | undefined) => (typeof s === "string" && s.trim() !== "" ? s.trim() : undefined);

/** Tasks still holding a flow's cancellation open: active, or a subagent whose kill is only provisional. */
export const isCancellationPending = (t: TaskRecord) =>
  t.status === "queued" || t.status === "running" || (t.runtime === "subagent" && t.status === "cancelled" && t.error === "Subagent run killed.");

/**
 * A flow's tasks as the Gateway lists them (cancel_flow's `tasks`): newest first by createdAt,
 * the later-created first on a tie. A task started before it was recorded has its createdAt
 * lowered to that start, so it sorts after tasks recorded since.
 */
export function newestFirst(tasks: TaskRecord[]): TaskRecord[] {
  return tasks
    .map((t, i) => ({ t, i }))
    .sort((a, b) => b.t.createdAt - a.t.createdAt || b.i - a.i)
    .map(({ t }) => t);
}

/**
 * The task a run_task with a runId reuses, from the flow's tasks (oldest first): the same runtime
 * and runId (no child session: those are refused before), and for a subagent also the same label
 * and text; an acp run falls back to its oldest task whatever the label and text.
 */
export function selectReusable(flowTasks: TaskRecord[], p: RunTaskParams): TaskRecord | undefined {
  const runId = trimmed(p.runId);
  if (!runId) return undefined;
  const sameRun = flowTasks.filter((t) => t.runId === runId && t.runtime === p.runtime && !t.childSessionKey);
  const exact = sameRun.find((t) => (t.label ?? "") === (trimmed(p.label) ?? "") && t.task.trim() === p.task.trim());
  if (exact || p.runtime !== "acp") return exact;
  return [...sameRun].sort((a, b) => a.createdAt - b.createdAt)[0];
}

/**
 * What a reuse changes: it fills the fields the task lacks (sourceId, parentTaskId, agentId, a
 * label), replaces label and text only with preferMetadata, and takes the new notify policy (or
 * the default) only when the task was silent. It never restarts or re-times the task. Returns
 * whether anything changed: the Gateway publishes a `task` event for a reuse only then.
 */
export function mergeIntoReused(t: TaskRecord, p: RunTaskParams, ownerKey: string): boolean {
  const before = JSON.stringify(t);
  t.sourceId ??= trimmed(p.sourceId);
  t.parentTaskId ??= trimmed(p.parentTaskId);
  t.agentId ??= trimmed(p.agentId) ?? agentOfSessionKey(ownerKey);
  const label = trimmed(p.label);
  if (p.preferMetadata) {
    if (label) t.label = label;
    if (p.task.trim()) t.task = p.task.trim();
  } else if (label && !t.label) t.label = label;
  if (t.deliveryStatus !== "delivered") t.deliveryStatus = "pending";
  const policy = p.notifyPolicy ?? "done_only";
  if (t.notifyPolicy === "silent") t.notifyPolicy = policy;
  return JSON.stringify(t) !== before;
}

/**
 * A new task: queued, or running with the times given. lastEventAt defaults to the start, else
 * to now (a queued task has one too); startedAt is never invented. Then the Gateway's timestamp
 * normalisation: createdAt is the earliest time known, startedAt and lastEventAt are not before it,
 * and lastEventAt is not before startedAt. A progress summary has its whitespace collapsed.
 */
export function newTask(p: RunTaskParams, flow: { flowId: string; ownerKey: string }, now: number): TaskRecord {
  const running = p.status === "running";
  const startedAt = running ? p.startedAt : undefined;
  const lastEventAt = (running ? p.lastEventAt : undefined) ?? startedAt ?? now;
  const createdAt = Math.min(now, startedAt ?? now, lastEventAt);
  const started = startedAt === undefined ? undefined : Math.max(startedAt, createdAt);
  const task: TaskRecord = {
    taskId: randomUUID(),
    runtime: p.runtime,
    ownerKey: flow.ownerKey,
    requesterSessionKey: flow.ownerKey,
    scopeKind: "session",
    parentFlowId: flow.flowId,
    task: p.task,
    status: running ? "running" : "queued",
    deliveryStatus: "pending",
    notifyPolicy: p.notifyPolicy ?? "done_only",
    createdAt,
    lastEventAt: Math.max(lastEventAt, started ?? createdAt),
  };
  const optional: Partial<TaskRecord> = {
    sourceId: trimmed(p.sourceId),
    parentTaskId: trimmed(p.parentTaskId),
    agentId: trimmed(p.agentId) ?? agentOfSessionKey(flow.ownerKey),
    runId: trimmed(p.runId),
    label: trimmed(p.label),
    startedAt: started,
    progressSummary: running ? (p.progressSummary ?? "").replace(/\s+/g, " ").trim() || undefined : undefined,
  };
  for (const [k, v] of Object.entries(optional)) if (v !== undefined) (task as Record<string, unknown>)[k] = v;
  return task;
}
