import type { ActionName, ActionRequestOf } from "./schemas.js";

export type FlowStatus = "queued" | "running" | "waiting" | "blocked" | "succeeded" | "failed" | "cancelled" | "lost";
export type TaskStatus = "queued" | "running" | "succeeded" | "failed" | "timed_out" | "cancelled" | "lost";
export type NotifyPolicy = "done_only" | "state_changes" | "silent";

/** What the HTTP surface returns for a flow (reference §1.8). No owner or requester metadata. */
export type FlowView = {
  flowId: string;
  syncMode: "managed" | "task_mirrored";
  controllerId?: string;
  currentStep?: string;
  blockedTaskId?: string;
  blockedSummary?: string;
  revision: number;
  status: FlowStatus;
  notifyPolicy: NotifyPolicy;
  goal: string;
  stateJson?: unknown;
  waitJson?: unknown;
  cancelRequestedAt?: number;
  createdAt: number;
  updatedAt: number;
  endedAt?: number;
};

export type TaskView = {
  taskId: string;
  runtime: string;
  sourceId?: string;
  childSessionKey?: string;
  parentFlowId?: string;
  parentTaskId?: string;
  agentId?: string;
  runId?: string;
  label?: string;
  error?: string;
  progressSummary?: string;
  terminalSummary?: string;
  terminalOutcome?: string;
  scopeKind: string;
  task: string;
  status: TaskStatus;
  deliveryStatus: string;
  notifyPolicy: NotifyPolicy;
  createdAt: number;
  startedAt?: number;
  endedAt?: number;
  lastEventAt?: number;
  cleanupAfter?: number;
};

export type TaskSummary = {
  total: number;
  active: number;
  terminal: number;
  failures: number;
  byStatus: Record<TaskStatus, number>;
  byRuntime: Record<"subagent" | "acp" | "cli" | "cron", number>;
};

export type MutationOutcome =
  | { applied: true; flow: FlowView }
  | { applied: false; code: "not_found" | "not_managed" | "revision_conflict" | "persist_failed" | string; current?: FlowView };

/**
 * The runtime's answer for each action: the shapes the bridge plugin's Gateway methods return and
 * the embedded runtime produces. The ingress maps them to HTTP (src/ingress/outcomes.ts).
 */
export type ActionOutcomes = {
  create_flow: { created: true; flow: FlowView } | { created: false; code: string };
  get_flow: { flow: FlowView | null };
  list_flows: { flows: FlowView[] };
  find_latest_flow: { flow: FlowView | null };
  resolve_flow: { flow: FlowView | null };
  get_task_summary: { summary: TaskSummary | null };
  set_waiting: MutationOutcome;
  resume_flow: MutationOutcome;
  finish_flow: MutationOutcome;
  fail_flow: MutationOutcome;
  request_cancel: MutationOutcome;
  cancel_flow: { found: boolean; cancelled: boolean; reason?: string; flow?: FlowView; tasks?: TaskView[] };
  run_task:
    | { created: true; flow: FlowView; task: TaskView }
    | { found: boolean; created: false; reason?: string; flow?: FlowView };
};

/**
 * Parameters of a runtime call: the action's fields (without `action`) plus the route's bound
 * session, and for create_flow and run_task the request's idempotency key when it had one: a
 * runtime that already answered that key for the session answers the same again and creates
 * nothing (so a service that crashed after the Gateway created a flow cannot create a second).
 */
export type ActionParams<A extends ActionName> = Omit<ActionRequestOf<A>, "action"> & { sessionKey: string; idempotencyKey?: string };

/** How long a runtime remembers an idempotency key's answer, and how many it keeps (the bridge plugin's numbers too). */
export const RUNTIME_IDEMPOTENCY = { ttlMs: 10 * 60_000, max: 1_000 } as const;

/** TaskFlow operations for a bound session. Two implementations: the Gateway client and the embedded runtime. */
export interface TaskFlowRuntime {
  readonly kind: "gateway" | "embedded";
  invoke<A extends ActionName>(action: A, params: ActionParams<A>): Promise<ActionOutcomes[A]>;
}
