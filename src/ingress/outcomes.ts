import type { ActionOutcomes, MutationOutcome } from "../taskflow/runtime.js";
import { toFlowView, toFlowViewOrNull, toTaskView } from "../taskflow/views.js";

/** What the envelope is built from: an HTTP status, and for errors (and 202) a code and text. */
export type HttpOutcome = { status: number; code?: string; error?: string; result: unknown };

const ok = (result: unknown): HttpOutcome => ({ status: 200, result });

/** Mutation rejections (reference §1.6). Unknown codes fall back to `mutation_rejected`. */
const MUTATION_REJECTIONS: Record<string, { status: number; error: string }> = {
  not_found: { status: 404, error: "TaskFlow not found." },
  not_managed: { status: 409, error: "TaskFlow is not managed by this webhook surface." },
  revision_conflict: { status: 409, error: "TaskFlow changed since the caller's expected revision." },
  persist_failed: { status: 503, error: "TaskFlow persistence failed." },
};

export function mapMutation(o: MutationOutcome): HttpOutcome {
  if (o.applied) return ok({ applied: true, flow: toFlowView(o.flow) });
  const result = { applied: false, code: o.code, ...(o.current ? { current: toFlowView(o.current) } : {}) };
  const known = Object.hasOwn(MUTATION_REJECTIONS, o.code) ? MUTATION_REJECTIONS[o.code] : undefined;
  return known
    ? { status: known.status, code: o.code, error: known.error, result }
    : { status: 409, code: "mutation_rejected", error: "TaskFlow mutation was rejected.", result };
}

/** Runtime refusal reasons that have a named code; any other reason gets the action's fallback. */
const REASON_CODES = {
  run_task: {
    "Flow cancellation has already been requested.": "cancel_requested",
    "Flow does not accept managed child tasks.": "not_managed",
    "Task persistence failed.": "persist_failed",
  },
  cancel_flow: {
    "One or more child tasks are still active.": "cancel_pending",
    "Flow changed while cancellation was in progress.": "revision_conflict",
    "Flow persistence failed.": "persist_failed",
  },
} as const satisfies Record<string, Record<string, string>>;

const FALLBACK = {
  run_task: { code: "task_not_created", error: "TaskFlow task was not created." },
  cancel_flow: { code: "cancel_rejected", error: "TaskFlow cancellation was rejected." },
} as const;

function mapRefusal(action: "run_task" | "cancel_flow", found: boolean, reason: string | undefined, result: unknown): HttpOutcome {
  if (!found) return { status: 404, code: "not_found", error: "TaskFlow not found.", result };
  const codes: Record<string, string> = REASON_CODES[action];
  const code = reason?.startsWith("Flow is already ")
    ? "terminal"
    : reason !== undefined && Object.hasOwn(codes, reason)
      ? codes[reason]!
      : FALLBACK[action].code;
  if (code === "cancel_pending") return { status: 202, code, result };
  return { status: code === "persist_failed" ? 503 : 409, code, error: reason || FALLBACK[action].error, result };
}

/** One mapper per action: runtime outcome → HTTP outcome, with views projected again (defence in depth). */
export const outcomeMappers: { [A in keyof ActionOutcomes]: (o: ActionOutcomes[A]) => HttpOutcome } = {
  create_flow: (o) =>
    o.created
      ? ok({ created: true, flow: toFlowView(o.flow) })
      : o.code === "persist_failed"
        ? { status: 503, code: "persist_failed", error: "TaskFlow persistence failed.", result: { created: false, code: o.code } }
        : { status: 409, code: "create_rejected", error: "TaskFlow creation was rejected.", result: { created: false, code: o.code } },
  get_flow: (o) => ok({ flow: toFlowViewOrNull(o.flow) }),
  list_flows: (o) => ok({ flows: o.flows.map(toFlowView) }),
  find_latest_flow: (o) => ok({ flow: toFlowViewOrNull(o.flow) }),
  resolve_flow: (o) => ok({ flow: toFlowViewOrNull(o.flow) }),
  get_task_summary: (o) => ok({ summary: o.summary ?? null }),
  set_waiting: mapMutation,
  resume_flow: mapMutation,
  finish_flow: mapMutation,
  fail_flow: mapMutation,
  request_cancel: mapMutation,
  cancel_flow(o) {
    const result = {
      found: o.found,
      cancelled: o.cancelled,
      ...(o.reason ? { reason: o.reason } : {}),
      ...(o.flow ? { flow: toFlowView(o.flow) } : {}),
      ...(o.tasks ? { tasks: o.tasks.map(toTaskView) } : {}),
    };
    return o.cancelled ? ok(result) : mapRefusal("cancel_flow", o.found, o.reason, result);
  },
  run_task(o) {
    if (o.created) return ok({ created: true, flow: toFlowView(o.flow), task: toTaskView(o.task) });
    const result = { found: o.found, created: false, reason: o.reason, ...(o.flow ? { flow: toFlowView(o.flow) } : {}) };
    return mapRefusal("run_task", o.found, o.reason, result);
  },
};
