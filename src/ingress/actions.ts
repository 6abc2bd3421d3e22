import { AppError } from "../errors.js";
import type { Route } from "../config/schema.js";
import type { TaskFlowRuntime } from "../taskflow/runtime.js";
import { toHttp, type ActionRequest } from "../taskflow/actions.js";
import type { HttpOutcome } from "../taskflow/outcomes.js";

/**
 * Runs one validated action for a route: the route's bound session (and, for `create_flow`, its
 * default controller) is added here and nowhere else, so a request can never choose its session.
 */
export async function runAction(req: ActionRequest, route: Route, runtime: TaskFlowRuntime, idempotencyKey?: string): Promise<HttpOutcome> {
  const { action, ...fields } = req;
  const params: Record<string, unknown> = { ...fields, sessionKey: route.sessionKey, ...(idempotencyKey ? { idempotencyKey } : {}) };
  if (action === "create_flow") params.controllerId = req.controllerId ?? route.controllerId;
  // The one assertion the correlated union needs: `action` and `params` come from the same request.
  const outcome = await runtime.invoke(action, params as never);
  try {
    return toHttp(action, outcome as never);
  } catch (cause) {
    // Only a Gateway (or its plugin) can hand back a shape the mappers do not know.
    throw new AppError("gateway_error", "The Gateway answered with an unexpected shape.", { cause });
  }
}
