import { z } from "zod";

/**
 * The 13 TaskFlow webhook actions, field for field as the 2026.9.6 plugin accepts them
 * (reference §1.7): every member strict, strings trimmed, revisions non-negative integers.
 */
const str = () => z.string().trim().min(1);
const nullableStr = () => z.string().trim().min(1).nullable().optional();
const json = () => z.json().nullable().optional();
const revision = () => z.number().int().nonnegative();
export const notifyPolicySchema = z.enum(["done_only", "state_changes", "silent"]);

export const actionSchemas = {
  create_flow: z.strictObject({
    action: z.literal("create_flow"),
    controllerId: str().optional(),
    goal: str(),
    status: z.enum(["queued", "running", "waiting", "blocked"]).optional(),
    notifyPolicy: notifyPolicySchema.optional(),
    currentStep: nullableStr(),
    stateJson: json(),
    waitJson: json(),
  }),
  get_flow: z.strictObject({ action: z.literal("get_flow"), flowId: str() }),
  list_flows: z.strictObject({ action: z.literal("list_flows") }),
  find_latest_flow: z.strictObject({ action: z.literal("find_latest_flow") }),
  resolve_flow: z.strictObject({ action: z.literal("resolve_flow"), token: str() }),
  get_task_summary: z.strictObject({ action: z.literal("get_task_summary"), flowId: str() }),
  set_waiting: z.strictObject({
    action: z.literal("set_waiting"),
    flowId: str(),
    expectedRevision: revision(),
    currentStep: nullableStr(),
    stateJson: json(),
    waitJson: json(),
    blockedTaskId: nullableStr(),
    blockedSummary: nullableStr(),
  }),
  resume_flow: z.strictObject({
    action: z.literal("resume_flow"),
    flowId: str(),
    expectedRevision: revision(),
    status: z.enum(["queued", "running"]).optional(),
    currentStep: nullableStr(),
    stateJson: json(),
  }),
  finish_flow: z.strictObject({
    action: z.literal("finish_flow"),
    flowId: str(),
    expectedRevision: revision(),
    stateJson: json(),
  }),
  fail_flow: z.strictObject({
    action: z.literal("fail_flow"),
    flowId: str(),
    expectedRevision: revision(),
    stateJson: json(),
    blockedTaskId: nullableStr(),
    blockedSummary: nullableStr(),
  }),
  request_cancel: z.strictObject({
    action: z.literal("request_cancel"),
    flowId: str(),
    expectedRevision: revision(),
  }),
  cancel_flow: z.strictObject({ action: z.literal("cancel_flow"), flowId: str() }),
  run_task: z
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
      if (
        v.status !== "running" &&
        (v.startedAt !== undefined || v.lastEventAt !== undefined || v.progressSummary !== undefined)
      ) {
        ctx.addIssue({
          code: "custom",
          path: ["status"],
          message: "status must be running when startedAt, lastEventAt, or progressSummary is provided",
        });
      }
    }),
} as const;

export type ActionName = keyof typeof actionSchemas;
export const ACTION_NAMES = Object.keys(actionSchemas) as ActionName[];

export const actionRequestSchema = z.discriminatedUnion("action", [
  actionSchemas.create_flow,
  actionSchemas.get_flow,
  actionSchemas.list_flows,
  actionSchemas.find_latest_flow,
  actionSchemas.resolve_flow,
  actionSchemas.get_task_summary,
  actionSchemas.set_waiting,
  actionSchemas.resume_flow,
  actionSchemas.finish_flow,
  actionSchemas.fail_flow,
  actionSchemas.request_cancel,
  actionSchemas.cancel_flow,
  actionSchemas.run_task,
]);
export type ActionRequest = z.infer<typeof actionRequestSchema>;
export type ActionRequestOf<A extends ActionName> = z.infer<(typeof actionSchemas)[A]>;

/** The plugin's error text: the first issue only, as `path: message`. */
export function formatFirstIssue(error: z.ZodError): string {
  const first = error.issues[0];
  if (!first) return "invalid request";
  return `${first.path.length > 0 ? `${first.path.join(".")}: ` : ""}${first.message}`;
}
