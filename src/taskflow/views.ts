import type { FlowView, TaskView } from "./types.js";

/**
 * Allow-list projections of flow and task records (docs/openclaw-contract.md §1.5). Whatever a runtime returns,
 * only these fields leave the service, so owner and requester metadata (`ownerKey`,
 * `requesterOrigin`, `requesterSessionKey`, `requesterAgentId`, `executionOwner`, …) never do.
 * Optional strings appear only when non-empty; other optional fields whenever they are defined
 * (JSON null is kept, as the plugin keeps `waitJson: null`).
 */
const FLOW_STRINGS = ["controllerId", "currentStep", "blockedTaskId", "blockedSummary"] as const;
const FLOW_OPTIONAL = ["stateJson", "waitJson", "cancelRequestedAt"] as const;
const TASK_STRINGS = [
  "sourceId",
  "childSessionKey",
  "parentFlowId",
  "parentTaskId",
  "agentId",
  "runId",
  "label",
  "error",
  "progressSummary",
  "terminalSummary",
  "terminalOutcome",
] as const;
const TASK_OPTIONAL = ["startedAt", "endedAt", "lastEventAt", "cleanupAfter"] as const;

type Rec = Record<string, unknown>;

function copyStrings(src: Rec, dst: Rec, keys: readonly string[]): void {
  for (const k of keys) if (typeof src[k] === "string" && src[k] !== "") dst[k] = src[k];
}
function copyDefined(src: Rec, dst: Rec, keys: readonly string[]): void {
  for (const k of keys) if (src[k] !== undefined) dst[k] = src[k];
}

export function toFlowView(flow: object): FlowView {
  const f = flow as Rec;
  const v: Rec = { flowId: f.flowId, syncMode: f.syncMode };
  copyStrings(f, v, FLOW_STRINGS);
  v.revision = f.revision;
  v.status = f.status;
  v.notifyPolicy = f.notifyPolicy;
  v.goal = f.goal;
  copyDefined(f, v, FLOW_OPTIONAL);
  v.createdAt = f.createdAt;
  v.updatedAt = f.updatedAt;
  copyDefined(f, v, ["endedAt"]);
  return v as FlowView;
}

export function toTaskView(task: object): TaskView {
  const t = task as Rec;
  const v: Rec = { taskId: t.taskId, runtime: t.runtime };
  copyStrings(t, v, TASK_STRINGS);
  v.scopeKind = t.scopeKind;
  v.task = t.task;
  v.status = t.status;
  v.deliveryStatus = t.deliveryStatus;
  v.notifyPolicy = t.notifyPolicy;
  v.createdAt = t.createdAt;
  copyDefined(t, v, TASK_OPTIONAL);
  return v as TaskView;
}

export const toFlowViewOrNull = (flow: object | null | undefined): FlowView | null => (flow ? toFlowView(flow) : null);
