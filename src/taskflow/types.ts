/** The TaskFlow records as they leave a runtime (views.ts projects them). */

export type FlowStatus = "queued" | "running" | "waiting" | "blocked" | "succeeded" | "failed" | "cancelled" | "lost";
export type TaskStatus = "queued" | "running" | "succeeded" | "failed" | "timed_out" | "cancelled" | "lost";
export type NotifyPolicy = "done_only" | "state_changes" | "silent";

/** What the HTTP surface returns for a flow (docs/openclaw-contract.md §1.5). No owner or requester metadata. */
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
