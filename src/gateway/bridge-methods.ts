import { ACTION_NAMES, ACTIONS, type ActionName } from "../taskflow/actions.js";

/**
 * The contract between this service and the bridge plugin inside the Gateway: one Gateway method
 * per TaskFlow action. Params are the action's fields (without `action`) plus `sessionKey`; the
 * result is the runtime outcome (src/taskflow/runtime.ts `ActionOutcomes`). Reads need
 * `operator.read`, mutations `operator.write`. The README's method table lists the same.
 */
export const BRIDGE_PREFIX = "webhooksBridge.";

export const BRIDGE_SCOPES = Object.fromEntries(ACTION_NAMES.map((a) => [a, ACTIONS[a].scope])) as Record<ActionName, "operator.read" | "operator.write">;

export const bridgeMethod = (action: ActionName): string => `${BRIDGE_PREFIX}${action}`;
