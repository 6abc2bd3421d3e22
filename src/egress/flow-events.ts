import { ACTIONS, type ActionName } from "../taskflow/actions.js";
import type { FlowView } from "../taskflow/types.js";
import type { MappedEvent } from "./gateway-events.js";

const DONE = new Set(["flow.finished", "flow.failed", "flow.cancelled"]);

/**
 * The webhook event for a TaskFlow route's answer, honouring the flow's `notifyPolicy`:
 * `silent` sends nothing, `done_only` (the default) only the end of the flow, `state_changes`
 * every transition. The id is the flow id and revision, so a retried publish or a second replica
 * seeing the same state cannot send it twice. Undefined for reads, refusals and `request_cancel`
 * (the flow's state has not changed yet).
 */
export function flowEvent(action: ActionName, routeId: string, status: number, result: unknown): MappedEvent | undefined {
  const type = (ACTIONS[action] as { event?: string }).event;
  if (!type || status !== 200) return undefined;
  const flow = (result as { flow?: FlowView } | undefined)?.flow;
  if (!flow || typeof flow.flowId !== "string") return undefined;
  if (action === "cancel_flow" && flow.status !== "cancelled") return undefined;
  const policy = flow.notifyPolicy ?? "done_only";
  if (policy === "silent" || (policy === "done_only" && !DONE.has(type))) return undefined;
  return { type, id: `flow_${flow.flowId}_r${flow.revision}`, data: { routeId, flow } };
}
