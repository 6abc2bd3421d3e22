import type { ActionName } from "../taskflow/schemas.js";

/**
 * The contract between this service and the bridge plugin inside the Gateway: one Gateway method
 * per TaskFlow action. Params are the action's fields (without `action`) plus `sessionKey`; the
 * result is the runtime outcome (src/taskflow/runtime.ts `ActionOutcomes`). Reads need
 * `operator.read`, mutations `operator.write`. The README's method table lists the same.
 */
export const BRIDGE_PREFIX = "webhooksBridge.";

export const BRIDGE_SCOPES: Record<ActionName, "operator.read" | "operator.write"> = {
  create_flow: "operator.write",
  get_flow: "operator.read",
  list_flows: "operator.read",
  find_latest_flow: "operator.read",
  resolve_flow: "operator.read",
  get_task_summary: "operator.read",
  set_waiting: "operator.write",
  resume_flow: "operator.write",
  finish_flow: "operator.write",
  fail_flow: "operator.write",
  request_cancel: "operator.write",
  cancel_flow: "operator.write",
  run_task: "operator.write",
};

export const bridgeMethod = (action: ActionName): string => `${BRIDGE_PREFIX}${action}`;
