import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { MutationOutcome } from "./types.js";
import { toFlowView } from "./views.js";

/** What the envelope is built from: an HTTP status, and for errors (and 202) a code and text. */
export type HttpOutcome = { status: number; code?: string; error?: string; result: unknown };

/**
 * The TaskFlow runtime's refusal codes and their HTTP status, as the bundled plugin answers them:
 * the only place that pairs one with the other (errors.ts `ERROR_STATUS` is the same for the
 * service's own codes). The codes are the wire contract (the envelope's `code`).
 */
export const OUTCOME_STATUS = {
  not_found: 404,
  not_managed: 409,
  revision_conflict: 409,
  mutation_rejected: 409,
  create_rejected: 409,
  task_not_created: 409,
  cancel_requested: 409,
  cancel_rejected: 409,
  terminal: 409,
  cancel_pending: 202,
  persist_failed: 503,
} as const satisfies Record<string, ContentfulStatusCode>;

export type OutcomeCode = keyof typeof OUTCOME_STATUS;

export const ok = (result: unknown): HttpOutcome => ({ status: 200, result });

/** A refusal: its status from the table. */
export const refusal = (code: OutcomeCode, error: string | undefined, result: unknown): HttpOutcome => ({
  status: OUTCOME_STATUS[code],
  code,
  ...(error !== undefined ? { error } : {}),
  result,
});

/** Mutation rejections and the plugin's texts. Unknown codes fall back to `mutation_rejected`. */
const MUTATION_TEXT: Partial<Record<OutcomeCode, string>> = {
  not_found: "TaskFlow not found.",
  not_managed: "TaskFlow is not managed by this webhook surface.",
  revision_conflict: "TaskFlow changed since the caller's expected revision.",
  persist_failed: "TaskFlow persistence failed.",
};

export function mapMutation(o: MutationOutcome): HttpOutcome {
  if (o.applied) return ok({ applied: true, flow: toFlowView(o.flow) });
  const result = { applied: false, code: o.code, ...(o.current ? { current: toFlowView(o.current) } : {}) };
  const text = Object.hasOwn(MUTATION_TEXT, o.code) ? MUTATION_TEXT[o.code as OutcomeCode] : undefined;
  return text ? refusal(o.code as OutcomeCode, text, result) : refusal("mutation_rejected", "TaskFlow mutation was rejected.", result);
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
} as const satisfies Record<string, Record<string, OutcomeCode>>;

const FALLBACK = {
  run_task: { code: "task_not_created", error: "TaskFlow task was not created." },
  cancel_flow: { code: "cancel_rejected", error: "TaskFlow cancellation was rejected." },
} as const;

/** run_task's and cancel_flow's refusals: by the runtime's reason text, as the plugin maps them. */
export function mapRefusal(action: "run_task" | "cancel_flow", found: boolean, reason: string | undefined, result: unknown): HttpOutcome {
  if (!found) return refusal("not_found", "TaskFlow not found.", result);
  const codes: Record<string, OutcomeCode> = REASON_CODES[action];
  const code: OutcomeCode = reason?.startsWith("Flow is already ")
    ? "terminal"
    : reason !== undefined && Object.hasOwn(codes, reason)
      ? codes[reason]!
      : FALLBACK[action].code;
  if (code === "cancel_pending") return refusal(code, undefined, result);
  return refusal(code, reason || FALLBACK[action].error, result);
}
