import type { TaskFlowRuntime } from "../taskflow/runtime.js";
import { bridgeMethod } from "./bridge-methods.js";
import type { GatewayClient } from "./client.js";

/** TaskFlow runtime that forwards each action to the bridge plugin's Gateway method. */
export function createGatewayTaskFlowRuntime(client: Pick<GatewayClient, "call">): TaskFlowRuntime {
  return {
    invoke: (action, params) => client.call(bridgeMethod(action), params),
  };
}
