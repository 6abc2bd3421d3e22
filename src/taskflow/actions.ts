import { z } from "zod";
import { mapMutation, mapRefusal, ok, refusal, type HttpOutcome } from "./outcomes.js";
import { json, notifyPolicySchema, nullableStr, revision, str } from "./schemas.js";
import type { FlowView, MutationOutcome, TaskSummary, TaskView } from "./types.js";
import { toFlowView, toFlowViewOrNull, toTaskView } from "./views.js";

/**
 * The 13 TaskFlow webhook actions: one row each, and everything about an action is in its row:
 * - `input`: the request body, field for field as the 2026.9.6 plugin accepts it (every member
 *   strict, strings trimmed, revisions non-negative integers);
 * - `scope`: the Gateway scope its bridge method needs (src/gateway/bridge-methods.ts);
 * - `idempotent`: it creates something, so an `Idempotency-Key` makes its retries safe;
 * - `event`: the flow lifecycle event a success sends (src/egress/flow-events.ts);
 * - `toHttp`: the runtime's outcome (its parameter type is the outcome's type) → status, code and
 *   result, with views projected again (defence in depth).
 * The request union, the runtime's outcome types, the bridge scopes, the idempotent set and the
 * flow events are all derived from this table; an action's handler lives in the embedded runtime
 * (embedded.ts) and, on the Gateway, in the bridge plugin, whose own guard
 * test/action-table.test.ts holds to this table.
 */
type Scope = "operator.read" | "operator.write";
type FlowEvent = "flow.created" | "flow.waiting" | "flow.resumed" | "flow.finished" | "flow.failed" | "flow.cancelled";
type Row<I extends z.ZodObject, O> = { input: I; scope: Scope; idempotent?: true; event?: FlowEvent; toHttp: (o: O) => HttpOutcome };
const row =
  <O>() =>
  <I extends z.ZodObject>(r: Row<I, O>) =>
    r;

type CreateOutcome = { created: true; flow: FlowView } | { created: false; code: string };
type CancelOutcome = { found: boolean; cancelled: boolean; reason?: string; flow?: FlowView; tasks?: TaskView[] };
type RunTaskOutcome = { created: true; flow: FlowView; task: TaskView } | { found: boolean; created: false; reason?: string; flow?: FlowView };
const readFlow = (o: { flow: FlowView | null }) => ok({ flow: toFlowViewOrNull(o.flow) });

export const ACTIONS = {
  create_flow: row<CreateOutcome>()({
    input: z.strictObject({
      action: z.literal("create_flow"),
      controllerId: str().optional(),
      goal: str(),
      status: z.enum(["queued", "running", "waiting", "blocked"]).optional(),
      notifyPolicy: notifyPolicySchema.optional(),
      currentStep: nullableStr(),
      stateJson: json(),
      waitJson: json(),
    }),
    scope: "operator.write",
    idempotent: true,
    event: "flow.created",
    toHttp: (o) =>
      o.created
        ? ok({ created: true, flow: toFlowView(o.flow) })
        : o.code === "persist_failed"
          ? refusal("persist_failed", "TaskFlow persistence failed.", { created: false, code: o.code })
          : refusal("create_rejected", "TaskFlow creation was rejected.", { created: false, code: o.code }),
  }),
  get_flow: row<{ flow: FlowView | null }>()({
    input: z.strictObject({ action: z.literal("get_flow"), flowId: str() }),
    scope: "operator.read",
    toHttp: readFlow,
  }),
  list_flows: row<{ flows: FlowView[] }>()({
    input: z.strictObject({ action: z.literal("list_flows") }),
    scope: "operator.read",
    toHttp: (o) => ok({ flows: o.flows.map(toFlowView) }),
  }),
  find_latest_flow: row<{ flow: FlowView | null }>()({
    input: z.strictObject({ action: z.literal("find_latest_flow") }),
    scope: "operator.read",
    toHttp: readFlow,
  }),
  resolve_flow: row<{ flow: FlowView | null }>()({
    input: z.strictObject({ action: z.literal("resolve_flow"), token: str() }),
    scope: "operator.read",
    toHttp: readFlow,
  }),
  get_task_summary: row<{ summary: TaskSummary | null }>()({
    input: z.strictObject({ action: z.literal("get_task_summary"), flowId: str() }),
    scope: "operator.read",
    toHttp: (o) => ok({ summary: o.summary ?? null }),
  }),
  set_waiting: row<MutationOutcome>()({
    input: z.strictObject({
      action: z.literal("set_waiting"),
      flowId: str(),
      expectedRevision: revision(),
      currentStep: nullableStr(),
      stateJson: json(),
      waitJson: json(),
      blockedTaskId: nullableStr(),
      blockedSummary: nullableStr(),
    }),
    scope: "operator.write",
    event: "flow.waiting",
    toHttp: mapMutation,
  }),
  resume_flow: row<MutationOutcome>()({
    input: z.strictObject({
      action: z.literal("resume_flow"),
      flowId: str(),
      expectedRevision: revision(),
      status: z.enum(["queued", "running"]).optional(),
      currentStep: nullableStr(),
      stateJson: json(),
    }),
    scope: "operator.write",
    event: "flow.resumed",
    toHttp: mapMutation,
  }),
  finish_flow: row<MutationOutcome>()({
    input: z.strictObject({ action: z.literal("finish_flow"), flowId: str(), expectedRevision: revision(), stateJson: json() }),
    scope: "operator.write",
    event: "flow.finished",
    toHttp: mapMutation,
  }),
  fail_flow: row<MutationOutcome>()({
    input: z.strictObject({
      action: z.literal("fail_flow"),
      flowId: str(),
      expectedRevision: revision(),
      stateJson: json(),
      blockedTaskId: nullableStr(),
      blockedSummary: nullableStr(),
    }),
    scope: "operator.write",
    event: "flow.failed",
    toHttp: mapMutation,
  }),
  // No event: the flow's state has not changed yet (cancel_flow says when it has).
  request_cancel: row<MutationOutcome>()({
    input: z.strictObject({ action: z.literal("request_cancel"), flowId: str(), expectedRevision: revision() }),
    scope: "operator.write",
    toHttp: mapMutation,
  }),
  cancel_flow: row<CancelOutcome>()({
    input: z.strictObject({ action: z.literal("cancel_flow"), flowId: str() }),
    scope: "operator.write",
    event: "flow.cancelled",
    toHttp(o) {
      const result = {
        found: o.found,
        cancelled: o.cancelled,
        ...(o.reason ? { reason: o.reason } : {}),
        ...(o.flow ? { flow: toFlowView(o.flow) } : {}),
        ...(o.tasks ? { tasks: o.tasks.map(toTaskView) } : {}),
      };
      return o.cancelled ? ok(result) : mapRefusal("cancel_flow", o.found, o.reason, result);
    },
  }),
  run_task: row<RunTaskOutcome>()({
    input: z
      .strictObject({
        action: z.literal("run_task"),
        flowId: str(),
        runtime: z.enum(["subagent", "acp"]),
        sourceId: str().optional(),
        childSessionKey: str().optional(),
        parentTaskId: str().optional(),
        agentId: str().optional(),
        runId: str().optional(),
        label: str().optional(),
        task: str(),
        preferMetadata: z.boolean().optional(),
        notifyPolicy: notifyPolicySchema.optional(),
        status: z.enum(["queued", "running"]).optional(),
        startedAt: z.number().int().nonnegative().optional(),
        lastEventAt: z.number().int().nonnegative().optional(),
        progressSummary: nullableStr(),
      })
      .superRefine((v, ctx) => {
        if (v.status !== "running" && (v.startedAt !== undefined || v.lastEventAt !== undefined || v.progressSummary !== undefined)) {
          ctx.addIssue({ code: "custom", path: ["status"], message: "status must be running when startedAt, lastEventAt, or progressSummary is provided" });
        }
      }),
    scope: "operator.write",
    idempotent: true,
    toHttp(o) {
      if (o.created) return ok({ created: true, flow: toFlowView(o.flow), task: toTaskView(o.task) });
      const result = { found: o.found, created: false, reason: o.reason, ...(o.flow ? { flow: toFlowView(o.flow) } : {}) };
      return mapRefusal("run_task", o.found, o.reason, result);
    },
  }),
};

export type ActionName = keyof typeof ACTIONS;
export const ACTION_NAMES = Object.keys(ACTIONS) as ActionName[];

type Inputs = { [A in ActionName]: (typeof ACTIONS)[A]["input"] };
/** The request body: one of the actions, told apart by `action`. */
export const actionRequestSchema = z.discriminatedUnion(
  "action",
  ACTION_NAMES.map((a) => ACTIONS[a].input) as unknown as [Inputs[ActionName], ...Inputs[ActionName][]],
);
export type ActionRequest = z.infer<typeof actionRequestSchema>;
export type ActionRequestOf<A extends ActionName> = z.infer<Inputs[A]>;

/** The runtime's answer for each action: what the bridge plugin's methods return and the embedded runtime produces. */
export type ActionOutcomes = { [A in ActionName]: Parameters<(typeof ACTIONS)[A]["toHttp"]>[0] };

/** An action's outcome as HTTP. */
export const toHttp = <A extends ActionName>(action: A, outcome: ActionOutcomes[A]): HttpOutcome =>
  (ACTIONS[action].toHttp as (o: ActionOutcomes[A]) => HttpOutcome)(outcome);
