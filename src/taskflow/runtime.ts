import type { ActionName, ActionOutcomes, ActionRequestOf } from "./actions.js";

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
  invoke<A extends ActionName>(action: A, params: ActionParams<A>): Promise<ActionOutcomes[A]>;
}
