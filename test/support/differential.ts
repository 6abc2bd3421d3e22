import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { isDeepStrictEqual } from "node:util";

/**
 * The differential sequences: the same TaskFlow requests sent, in order, to the bundled webhooks
 * plugin on the real Gateway and to the service (through the bridge, and on the embedded runtime).
 * `npm run test:openclaw` compares all three live; `npm test` compares the embedded runtime with
 * the plugin's answers recorded by `npm run record:differential` (test/fixtures/taskflow-differential.json).
 * One definition serves both, so they cannot drift; the recording keeps the requests it was made
 * with, and the npm test refuses a recording made from other requests.
 *
 * Each sequence runs on a route of its own (`diff-<name>`), bound to a session of its own, so list
 * and resolve see only that sequence's flows and no route nears the plugin's 120-a-minute limit.
 */

/** What a step may refer to: the session bound to the route, and the flows and tasks created so far (in order). */
export type Ctx = { session: string; flows: string[]; tasks: string[] };
type Step = (c: Ctx) => Record<string, unknown>;

const MISSING = "00000000-0000-4000-8000-000000000000";
/**
 * Fixed past times for startedAt/lastEventAt: they come back as `<T0>`… rather than `<ts>`, so the
 * answers show which time the Gateway kept where (createdAt lowered to the earliest, and so on).
 */
export const FIXED_TIMES = [1_750_000_000_000, 1_750_000_060_000, 1_750_000_120_000, 1_750_000_180_000] as const;
const [T0, T1, T2, T3] = FIXED_TIMES;

const main: Step[] = [
  () => ({ action: "create_flow", goal: "Differential", notifyPolicy: "state_changes", stateJson: { n: 1 } }),
  () => ({ action: "create_flow", goal: "Second", status: "running", currentStep: "s1" }),
  (c) => ({ action: "get_flow", flowId: c.flows[0] }),
  () => ({ action: "get_flow", flowId: MISSING }),
  () => ({ action: "list_flows" }),
  () => ({ action: "find_latest_flow" }),
  (c) => ({ action: "resolve_flow", token: c.flows[1] }),
  (c) => ({ action: "resolve_flow", token: c.session }),
  (c) => ({ action: "get_task_summary", flowId: c.flows[0] }),
  (c) => ({ action: "set_waiting", flowId: c.flows[0], expectedRevision: 0, currentStep: "wait", waitJson: { kind: "x" } }),
  (c) => ({ action: "set_waiting", flowId: c.flows[0], expectedRevision: 0 }),
  (c) => ({ action: "set_waiting", flowId: c.flows[0], expectedRevision: 1, blockedSummary: "human" }),
  (c) => ({ action: "resume_flow", flowId: c.flows[0], expectedRevision: 2, status: "running", stateJson: null }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "subagent", task: "work", runId: "r-1", label: "L" }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "subagent", task: "again", runId: "r-1" }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "t", childSessionKey: "agent:main:acp:w" }),
  (c) => ({ action: "get_task_summary", flowId: c.flows[0] }),
  (c) => ({ action: "request_cancel", flowId: c.flows[0], expectedRevision: 3 }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "t" }),
  (c) => ({ action: "cancel_flow", flowId: c.flows[0] }),
  (c) => ({ action: "finish_flow", flowId: c.flows[0], expectedRevision: 5, stateJson: { done: true } }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "t" }),
  (c) => ({ action: "cancel_flow", flowId: c.flows[0] }),
  (c) => ({ action: "resolve_flow", token: c.session }),
  (c) => ({ action: "cancel_flow", flowId: c.flows[1] }),
  (c) => ({ action: "fail_flow", flowId: c.flows[0], expectedRevision: 4, blockedSummary: "gave up" }),
  (c) => ({ action: "resume_flow", flowId: c.flows[0], expectedRevision: 5 }),
  () => ({ action: "finish_flow", flowId: MISSING, expectedRevision: 0 }),
  () => ({ action: "cancel_flow", flowId: MISSING }),
  () => ({ action: "run_task", flowId: MISSING, runtime: "acp", task: "t" }),
  () => ({ action: "get_task_summary", flowId: MISSING }),
  () => ({ action: "resolve_flow", token: "not-a-flow" }),
  // Schema failures: the plugin answers without routeId/result (a documented difference), so
  // only status, code and error text are compared for these.
  () => ({ action: "create_flow", goal: "" }),
  () => ({ action: "run_task", flowId: "f", runtime: "cli", task: "t" }),
  () => ({ action: "run_task", flowId: "f", runtime: "acp", task: "t", startedAt: 1 }),
  () => ({ action: "nope" }),
];

/** run_task: reuse by runId, label and text for each runtime, preferMetadata, and the fields the Gateway fills. */
const runTask: Step[] = [
  () => ({ action: "create_flow", goal: "Tasks" }),
  () => ({ action: "create_flow", goal: "Neighbour" }),
  // subagent: a runId is reused only with the same label and text (after trimming).
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "subagent", task: "work", runId: "r-1", label: "L" }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "subagent", task: "work", runId: "r-1", label: "L" }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "subagent", task: "  work ", runId: " r-1", label: "L  " }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "subagent", task: "other text", runId: "r-1", label: "L" }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "subagent", task: "work", runId: "r-1" }),
  (c) => ({ action: "run_task", flowId: c.flows[1], runtime: "subagent", task: "work", runId: "r-1", label: "L" }),
  // A reuse fills what the task lacks (sourceId, parentTaskId), never replaces what it has (agentId).
  (c) => ({
    action: "run_task",
    flowId: c.flows[0],
    runtime: "subagent",
    task: "work",
    runId: "r-1",
    label: "L",
    sourceId: "src-1",
    parentTaskId: "pt-1",
    agentId: "ops",
    preferMetadata: true,
  }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "subagent", task: "work", runId: "r-1", label: "L", sourceId: "src-2", parentTaskId: "pt-2" }),
  // acp: a runId is reused whatever the label and text; preferMetadata decides whether they change.
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "acp work", runId: "a-1" }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "acp text changed", runId: "a-1", label: "first label" }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "acp text 3", runId: "a-1", label: "second label" }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "acp text 4", runId: "a-1", label: "third label", preferMetadata: true }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "acp text 4", runId: "a-1", preferMetadata: true }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "acp text 5", runId: "a-1", preferMetadata: false, label: "fourth label" }),
  // The same runId on the other runtime is another run.
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "subagent", task: "acp text 4", runId: "a-1", label: "third label" }),
  // notifyPolicy on a reuse: a silent task takes the new (or default) policy, others keep theirs.
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "quiet", runId: "a-2", notifyPolicy: "silent" }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "quiet", runId: "a-2" }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "quiet", runId: "a-2", notifyPolicy: "state_changes" }),
  // A reuse does not restart or re-time the task.
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "timed", runId: "a-3", status: "running", startedAt: T1 }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "timed", runId: "a-3", status: "running", startedAt: T2, progressSummary: "later" }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "timed", runId: "a-3" }),
  // Without a runId, every call is a new task; the defaults the Gateway fills.
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "defaults" }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "defaults" }),
  (c) => ({
    action: "run_task",
    flowId: c.flows[0],
    runtime: "subagent",
    task: "explicit",
    agentId: " Ops ",
    sourceId: "s",
    parentTaskId: "p",
    label: "lbl",
    notifyPolicy: "silent",
  }),
  // Timestamps: createdAt is the earliest time given, startedAt and lastEventAt never before it.
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "subagent", task: "running now", status: "running" }),
  (c) => ({
    action: "run_task",
    flowId: c.flows[0],
    runtime: "subagent",
    task: "started earlier",
    status: "running",
    startedAt: T1,
    progressSummary: "  half \n  done  ",
  }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "event before start", status: "running", startedAt: T2, lastEventAt: T1 }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "event only", status: "running", lastEventAt: T3 }),
  (c) => ({
    action: "run_task",
    flowId: c.flows[0],
    runtime: "acp",
    task: "cleared summary",
    status: "running",
    startedAt: T0,
    lastEventAt: T3,
    progressSummary: null,
  }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "subagent", task: "queued explicitly", status: "queued" }),
  // Refusals.
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "subagent", task: "child", childSessionKey: "agent:main:subagent:x" }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "child", childSessionKey: "agent:main:acp:x", runId: "a-1" }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "t", status: "queued", lastEventAt: T0 }),
  (c) => ({ action: "get_task_summary", flowId: c.flows[0] }),
  (c) => ({ action: "get_task_summary", flowId: c.flows[1] }),
  // Every task of the flow, newest first (createdAt lowered by an early start sorts it later).
  (c) => ({ action: "cancel_flow", flowId: c.flows[0] }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "acp work", runId: "a-1" }),
];

/** cancel_flow: which tasks it lists, in which order, and what it does to the flow. */
const cancelFlow: Step[] = [
  () => ({ action: "create_flow", goal: "Empty" }),
  (c) => ({ action: "cancel_flow", flowId: c.flows[0] }),
  (c) => ({ action: "cancel_flow", flowId: c.flows[0] }),
  (c) => ({ action: "run_task", flowId: c.flows[0], runtime: "acp", task: "too late" }),
  () => ({ action: "create_flow", goal: "Busy", status: "running" }),
  (c) => ({ action: "run_task", flowId: c.flows[1], runtime: "acp", task: "first" }),
  (c) => ({ action: "run_task", flowId: c.flows[1], runtime: "subagent", task: "second", status: "running" }),
  (c) => ({ action: "run_task", flowId: c.flows[1], runtime: "acp", task: "third", status: "running", startedAt: T0 }),
  (c) => ({ action: "run_task", flowId: c.flows[1], runtime: "subagent", task: "fourth", runId: "r-4" }),
  (c) => ({ action: "run_task", flowId: c.flows[1], runtime: "acp", task: "fifth", status: "running", startedAt: T2 }),
  () => ({ action: "create_flow", goal: "Neighbour" }),
  (c) => ({ action: "run_task", flowId: c.flows[2], runtime: "acp", task: "not in Busy" }),
  (c) => ({ action: "cancel_flow", flowId: c.flows[1] }),
  (c) => ({ action: "cancel_flow", flowId: c.flows[1] }),
  (c) => ({ action: "get_flow", flowId: c.flows[1] }),
  (c) => ({ action: "run_task", flowId: c.flows[1], runtime: "subagent", task: "fourth", runId: "r-4" }),
  (c) => ({ action: "request_cancel", flowId: c.flows[1], expectedRevision: 1 }),
  (c) => ({ action: "get_task_summary", flowId: c.flows[1] }),
  (c) => ({ action: "finish_flow", flowId: c.flows[1], expectedRevision: 2 }),
  (c) => ({ action: "cancel_flow", flowId: c.flows[1] }),
  (c) => ({ action: "resume_flow", flowId: c.flows[1], expectedRevision: 3, status: "running" }),
  (c) => ({ action: "cancel_flow", flowId: c.flows[1] }),
  (c) => ({ action: "cancel_flow", flowId: c.flows[2] }),
  // A blocked, waiting flow with a standing request and no tasks: cancelled, blocked fields and waitJson cleared.
  () => ({ action: "create_flow", goal: "Blocked", stateJson: { keep: true } }),
  (c) => ({
    action: "set_waiting",
    flowId: c.flows[3],
    expectedRevision: 0,
    currentStep: "approval",
    waitJson: { on: "human" },
    blockedTaskId: "bt-1",
    blockedSummary: "needs a human",
  }),
  (c) => ({ action: "request_cancel", flowId: c.flows[3], expectedRevision: 1 }),
  (c) => ({ action: "cancel_flow", flowId: c.flows[3] }),
  (c) => ({ action: "resume_flow", flowId: c.flows[3], expectedRevision: 3 }),
  (c) => ({ action: "cancel_flow", flowId: c.flows[3] }),
  // Terminal flows without tasks.
  () => ({ action: "create_flow", goal: "Failed" }),
  (c) => ({ action: "fail_flow", flowId: c.flows[4], expectedRevision: 0 }),
  (c) => ({ action: "cancel_flow", flowId: c.flows[4] }),
  (c) => ({ action: "resolve_flow", token: c.session }),
  () => ({ action: "list_flows" }),
];

export const SEQUENCES = { main, "run-task": runTask, "cancel-flow": cancelFlow } satisfies Record<string, Step[]>;
export type SequenceName = keyof typeof SEQUENCES;
export const SEQUENCE_NAMES = Object.keys(SEQUENCES) as SequenceName[];

/** The route a sequence runs on (the same id on every side, so the default controllerId matches). */
export const routeOf = (name: SequenceName) => `diff-${name}`;
export const DIFF_SECRET = "secret-route-diff-0123456789";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Replaces ids and times by placeholders: UUIDs by `<idN>` in order of first appearance, the fixed
 * times by `<T0>`…, other epoch-ms numbers by `<ts>`, and the session key by `<session>`.
 */
export function normalise(value: unknown, ids: Map<string, string>, session: string): unknown {
  if (typeof value === "string") {
    if (value === session) return "<session>";
    if (UUID.test(value)) {
      if (!ids.has(value)) ids.set(value, `<id${ids.size}>`);
      return ids.get(value);
    }
    return value;
  }
  if (typeof value === "number") {
    const fixed = (FIXED_TIMES as readonly number[]).indexOf(value);
    if (fixed >= 0) return `<T${fixed}>`;
    return value > 1_000_000_000_000 ? "<ts>" : value;
  }
  if (Array.isArray(value)) return value.map((v) => normalise(v, ids, session));
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalise(v, ids, session)]));
  return value;
}

export type Answer = { status: number; body: unknown };
export type Recorded = { requests: unknown[]; answers: Answer[] };
type Send = (body: unknown) => Promise<{ status: number; json: any }>;

const CREATES = new Set(["create_flow", "run_task"]);

/**
 * Runs a sequence and returns its requests and answers, normalised. For a schema failure (400)
 * only the code and error text are kept: the plugin answers those without routeId and result (a
 * documented difference). After a create the runner waits for the clock to move, so no two flows
 * or tasks share a createdAt (the Gateway breaks a flow tie by flowId, which is random).
 */
export async function runSequence(name: SequenceName, session: string, send: Send): Promise<Recorded> {
  const ctx: Ctx = { session, flows: [], tasks: [] };
  const ids = new Map<string, string>();
  const requests: unknown[] = [];
  const answers: Answer[] = [];
  for (const step of SEQUENCES[name]) {
    const body = step(ctx);
    const r = await send(body);
    const result = r.json?.result;
    if (body.action === "create_flow" && result?.created === true) ctx.flows.push(result.flow.flowId);
    if (body.action === "run_task" && result?.created === true && !ctx.tasks.includes(result.task.taskId)) ctx.tasks.push(result.task.taskId);
    const answer =
      r.status === 400
        ? { status: r.status, body: { code: r.json?.code, error: r.json?.error } }
        : { status: r.status, body: { ...r.json, routeId: "<route>" } };
    // Requests are normalised with the same numbering, so ids in them read as in the answers.
    requests.push(normalise(body, ids, session));
    answers.push(normalise(answer, ids, session) as Answer);
    if (CREATES.has(String(body.action))) {
      const t = Date.now();
      while (Date.now() <= t + 1) await new Promise((res) => setTimeout(res, 1));
    }
  }
  return { requests, answers };
}

/** The recording of the bundled plugin's answers (`npm run record:differential`). */
export type DifferentialFixture = { gateway: string; plugin: string; note: string; sequences: Record<string, Recorded> };
export const FIXTURE_PATH = resolve(import.meta.dirname, "../fixtures/taskflow-differential.json");
export const loadDifferentialFixture = () => JSON.parse(readFileSync(FIXTURE_PATH, "utf8")) as DifferentialFixture;

/** A readable first difference between two answer lists, for assertion messages. */
export function firstDifference(expected: Answer[], actual: Answer[], requests: unknown[]): string {
  for (let i = 0; i < Math.max(expected.length, actual.length); i++) {
    if (!isDeepStrictEqual(expected[i], actual[i])) {
      return `step ${i}: ${JSON.stringify(requests[i])}\n  expected ${JSON.stringify(expected[i])}\n  actual   ${JSON.stringify(actual[i])}`;
    }
  }
  return "no difference";
}
