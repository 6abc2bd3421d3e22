import { randomUUID } from "node:crypto";
import { LRUCache } from "lru-cache";
import type { ActionName, ActionOutcomes } from "./actions.js";
import { isCancellationPending, mergeIntoReused, newestFirst, newTask, selectReusable, type TaskRecord } from "./embedded-tasks.js";
import { RUNTIME_IDEMPOTENCY, type ActionParams, type TaskFlowRuntime } from "./runtime.js";
import type { FlowStatus, FlowView, MutationOutcome, TaskStatus, TaskSummary } from "./types.js";
import { toFlowView, toFlowViewOrNull, toTaskView } from "./views.js";

/** Internal records keep owner metadata, exactly like the Gateway's; views strip it. */
type FlowRecord = Omit<FlowView, "syncMode" | "controllerId"> & { syncMode: "managed"; ownerKey: string; controllerId: string };

export type EmbeddedEvent = { event: "task"; payload: { action: "upserted"; task: Record<string, unknown> } };

const TERMINAL_FLOW = new Set<FlowStatus>(["succeeded", "failed", "cancelled", "lost"]);
const ACTIVE_TASK = new Set<TaskStatus>(["queued", "running"]);
const FAILED_TASK = new Set<TaskStatus>(["failed", "timed_out", "lost"]);

/** docs/openclaw-contract.md §2.2: terminal means succeeded/failed/cancelled/lost, or blocked with endedAt. */
const isTerminal = (f: FlowRecord) => TERMINAL_FLOW.has(f.status) || (f.status === "blocked" && f.endedAt !== undefined);
const nonBlank = (s: string | null | undefined) => typeof s === "string" && s.trim() !== "";

/** `undefined` keeps, `null` clears (strings) or stores JSON null (stateJson/waitJson). */
function patch(record: FlowRecord, fields: Record<string, unknown>): void {
  const f = record as Record<string, unknown>;
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    if (v === null && k !== "stateJson" && k !== "waitJson") delete f[k];
    else f[k] = v;
  }
}

/**
 * In-process TaskFlow runtime with the Gateway's semantics (docs/openclaw-contract.md §2): ownership by session,
 * revisions checked only on managed mutations, no status state machine, `run_task` refusals, and
 * `cancel_flow` that stays pending while unbacked child tasks are active. Flows live in memory.
 */
export function createEmbeddedRuntime(opts: { now?: () => number; onEvent?: (e: EmbeddedEvent) => void; maxFlows?: number } = {}) {
  const now = opts.now ?? Date.now;
  // Memory is bounded: past maxFlows the oldest flow and its tasks are dropped (the Gateway prunes
  // by age instead; an embedded runtime is for trying the service, not for keeping records).
  const maxFlows = opts.maxFlows ?? 10_000;
  const flows = new Map<string, FlowRecord>();
  const tasks = new Map<string, TaskRecord>();

  const owned = (sessionKey: string, flowId: string) => {
    const f = flows.get(flowId);
    return f && f.ownerKey === sessionKey ? f : undefined;
  };
  const ownedFlows = (sessionKey: string) =>
    [...flows.values()]
      .filter((f) => f.ownerKey === sessionKey)
      .sort((a, b) => b.createdAt - a.createdAt || (a.flowId < b.flowId ? -1 : a.flowId > b.flowId ? 1 : 0));
  const childTasks = (flowId: string) => [...tasks.values()].filter((t) => t.parentFlowId === flowId);

  // Evicts in batches: deleting one entry from the front of a Map per insert leaves holes that
  // every later `keys().next()` walks over, which made each create slower as the runtime aged.
  function evictOldest(count: number) {
    const gone = new Set<string>();
    for (const id of flows.keys()) {
      if (gone.size >= count) break;
      gone.add(id);
    }
    for (const id of gone) flows.delete(id);
    for (const [taskId, t] of tasks) if (gone.has(t.parentFlowId)) tasks.delete(taskId);
  }

  function mutate(sessionKey: string, flowId: string, expectedRevision: number, fields: Record<string, unknown>): MutationOutcome {
    const flow = owned(sessionKey, flowId);
    if (!flow) return { applied: false, code: "not_found" };
    if (flow.revision !== expectedRevision) return { applied: false, code: "revision_conflict", current: toFlowView(flow) };
    patch(flow, fields);
    flow.revision += 1;
    flow.updatedAt = now();
    return { applied: true, flow: toFlowView(flow) };
  }

  function summary(flowId: string): TaskSummary {
    const s: TaskSummary = {
      total: 0,
      active: 0,
      terminal: 0,
      failures: 0,
      byStatus: { queued: 0, running: 0, succeeded: 0, failed: 0, timed_out: 0, cancelled: 0, lost: 0 },
      byRuntime: { subagent: 0, acp: 0, cli: 0, cron: 0 },
    };
    for (const t of childTasks(flowId)) {
      s.total++;
      s.byStatus[t.status]++;
      s.byRuntime[t.runtime]++;
      if (ACTIVE_TASK.has(t.status)) s.active++;
      else s.terminal++;
      if (FAILED_TASK.has(t.status)) s.failures++;
    }
    return s;
  }

  const handlers: { [A in ActionName]: (p: ActionParams<A>) => ActionOutcomes[A] } = {
    create_flow(p) {
      const t = now();
      const flow: FlowRecord = {
        flowId: randomUUID(),
        syncMode: "managed",
        ownerKey: p.sessionKey,
        controllerId: p.controllerId ?? "webhooks/embedded",
        revision: 0,
        status: p.status ?? "queued",
        notifyPolicy: p.notifyPolicy ?? "done_only",
        goal: p.goal,
        createdAt: t,
        updatedAt: t,
      };
      patch(flow, { currentStep: p.currentStep ?? undefined, stateJson: p.stateJson, waitJson: p.waitJson });
      flows.set(flow.flowId, flow);
      if (flows.size > maxFlows) evictOldest(Math.max(1, Math.floor(maxFlows / 10)));
      return { created: true, flow: toFlowView(flow) };
    },
    get_flow: (p) => ({ flow: toFlowViewOrNull(owned(p.sessionKey, p.flowId)) }),
    list_flows: (p) => ({ flows: ownedFlows(p.sessionKey).map(toFlowView) }),
    find_latest_flow: (p) => ({ flow: toFlowViewOrNull(ownedFlows(p.sessionKey)[0]) }),
    resolve_flow(p) {
      if (p.token === p.sessionKey) {
        const all = ownedFlows(p.sessionKey);
        return { flow: toFlowViewOrNull(all.find((f) => !isTerminal(f)) ?? all[0]) };
      }
      return { flow: toFlowViewOrNull(owned(p.sessionKey, p.token)) };
    },
    get_task_summary: (p) => ({ summary: owned(p.sessionKey, p.flowId) ? summary(p.flowId) : null }),
    set_waiting: (p) =>
      mutate(p.sessionKey, p.flowId, p.expectedRevision, {
        status: nonBlank(p.blockedTaskId) || nonBlank(p.blockedSummary) ? "blocked" : "waiting",
        currentStep: p.currentStep,
        stateJson: p.stateJson,
        waitJson: p.waitJson,
        blockedTaskId: p.blockedTaskId,
        blockedSummary: p.blockedSummary,
        endedAt: null,
      }),
    resume_flow: (p) =>
      mutate(p.sessionKey, p.flowId, p.expectedRevision, {
        status: p.status ?? "queued",
        currentStep: p.currentStep,
        stateJson: p.stateJson,
        waitJson: null,
        blockedTaskId: null,
        blockedSummary: null,
        endedAt: null,
      }),
    finish_flow: (p) =>
      mutate(p.sessionKey, p.flowId, p.expectedRevision, {
        status: "succeeded",
        stateJson: p.stateJson,
        waitJson: null,
        blockedTaskId: null,
        blockedSummary: null,
        endedAt: now(),
      }),
    fail_flow: (p) =>
      mutate(p.sessionKey, p.flowId, p.expectedRevision, {
        status: "failed",
        stateJson: p.stateJson,
        waitJson: null,
        blockedTaskId: p.blockedTaskId,
        blockedSummary: p.blockedSummary,
        endedAt: now(),
      }),
    request_cancel: (p) => mutate(p.sessionKey, p.flowId, p.expectedRevision, { cancelRequestedAt: now() }),
    cancel_flow(p) {
      const flow = owned(p.sessionKey, p.flowId);
      if (!flow) return { found: false, cancelled: false, reason: "Flow not found." };
      const tasksOf = () => newestFirst(childTasks(flow.flowId)).map(toTaskView);
      if (isTerminal(flow)) {
        return { found: true, cancelled: false, reason: `Flow is already ${flow.status}.`, flow: toFlowView(flow), tasks: tasksOf() };
      }
      const t = now();
      if (flow.cancelRequestedAt === undefined) {
        flow.cancelRequestedAt = t;
        flow.revision += 1;
        flow.updatedAt = t;
      }
      // Embedded tasks are never backed by a live run, so nothing can cancel an active child: the
      // cancel intent is recorded and the flow stays pending, as the Gateway does for unbacked tasks.
      if (childTasks(flow.flowId).some(isCancellationPending)) {
        return { found: true, cancelled: false, reason: "One or more child tasks are still active.", flow: toFlowView(flow), tasks: tasksOf() };
      }
      patch(flow, { status: "cancelled", blockedTaskId: null, blockedSummary: null, waitJson: null, endedAt: t });
      flow.revision += 1;
      flow.updatedAt = t;
      return { found: true, cancelled: true, flow: toFlowView(flow), tasks: tasksOf() };
    },
    run_task(p) {
      const flow = owned(p.sessionKey, p.flowId);
      if (!flow) return { found: false, created: false, reason: "Flow not found." };
      const refuse = (reason: string) => ({ found: true, created: false as const, reason, flow: toFlowView(flow) });
      if (flow.cancelRequestedAt !== undefined) return refuse("Flow cancellation has already been requested.");
      if (isTerminal(flow)) return refuse(`Flow is already ${flow.status}.`);
      // A childSessionKey must name a live backing run; the embedded runtime has none.
      if (p.childSessionKey?.trim()) return refuse("Task backing ownership could not be verified.");
      const upserted = (task: TaskRecord) =>
        opts.onEvent?.({ event: "task", payload: { action: "upserted", task: { ...toTaskView(task), flowId: flow.flowId } } });
      // A reuse answers as a creation (created: true), with the task as it now is.
      const reused = selectReusable(childTasks(flow.flowId), p);
      if (reused) {
        if (mergeIntoReused(reused, p, flow.ownerKey)) upserted(reused);
        return { created: true, flow: toFlowView(flow), task: toTaskView(reused) };
      }
      const task = newTask(p, flow, now());
      tasks.set(task.taskId, task);
      upserted(task);
      return { created: true, flow: toFlowView(flow), task: toTaskView(task) };
    },
  };

  // create_flow and run_task answer a repeated idempotency key with their first answer, as the
  // bridge plugin does on the Gateway (gateway-plugin/index.js): for RUNTIME_IDEMPOTENCY.ttlMs, at
  // most RUNTIME_IDEMPOTENCY.max keys (a Map keeps insertion order: the oldest goes first).
  const answered = new LRUCache<string, { at: number; outcome: unknown }>({ max: RUNTIME_IDEMPOTENCY.max });
  const runtime: TaskFlowRuntime = {
    async invoke(action, params) {
      if (typeof params.sessionKey !== "string" || params.sessionKey.trim() === "") {
        throw new Error("TaskFlow runtime requires a bound sessionKey.");
      }
      const { idempotencyKey, ...fields } = params;
      const rest = fields as typeof params;
      const handler = handlers[action] as (p: typeof params) => ActionOutcomes[typeof action];
      if (!idempotencyKey || (action !== "create_flow" && action !== "run_task")) return handler(rest);
      const key = `${action}\u0000${params.sessionKey}\u0000${idempotencyKey}`;
      const seen = answered.get(key);
      if (seen && now() - seen.at < RUNTIME_IDEMPOTENCY.ttlMs) return seen.outcome as ActionOutcomes[typeof action];
      const outcome = handler(rest);
      if ((outcome as { created?: boolean }).created === true) {
        answered.set(key, { at: now(), outcome });
      }
      return outcome;
    },
  };
  return runtime;
}
