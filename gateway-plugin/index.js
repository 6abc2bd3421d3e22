// openclaw-webhooks bridge: one Gateway method per TaskFlow action, for the sidecar's Gateway client.
// Plain ESM with no dependencies, so the Gateway loads it from its folder without a build or an
// install. The method table (names, scopes, params, results) is the contract in the sidecar's
// README and src/gateway/bridge-methods.ts.
//
// Every handler: validates params (a non-empty sessionKey is required), binds that session with
// api.runtime.tasks.managedFlows.bindSession, calls the runtime, and answers the runtime outcome
// with owner and requester metadata stripped from every flow and task view.

import { readFileSync } from "node:fs";
import { COMMAND, registerDeliveriesCli } from "./cli.js";
import { registerDeliveriesUi } from "./deliveries-ui.js";
import { createEmitTool, readEmitConfig, registerEmitHooks, TOOL } from "./emit.js";

const PREFIX = "webhooksBridge.";

/** The service token: a plain string, or a SecretRef read from the environment or a file. */
async function resolveToken(ref) {
  if (typeof ref === "string") return ref.trim() || undefined;
  if (ref?.source === "env") return process.env[ref.id]?.trim() || undefined;
  if (ref?.source === "file") {
    try {
      return readFileSync(ref.id, "utf8").trim() || undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

// ---- views: allow-lists (docs/openclaw-contract.md §1.5); anything else, ownerKey and requester* included, is dropped
const FLOW_STRINGS = ["controllerId", "currentStep", "blockedTaskId", "blockedSummary"];
const TASK_STRINGS = [
  "sourceId",
  "childSessionKey",
  "parentFlowId",
  "parentTaskId",
  "agentId",
  "runId",
  "label",
  "error",
  "progressSummary",
  "terminalSummary",
  "terminalOutcome",
];
function pick(src, dst, keys, strings) {
  for (const k of keys) {
    const v = src[k];
    if (strings ? typeof v === "string" && v !== "" : v !== undefined) dst[k] = v;
  }
  return dst;
}
export function flowView(f) {
  if (!f) return null;
  const v = pick(f, { flowId: f.flowId, syncMode: f.syncMode }, FLOW_STRINGS, true);
  Object.assign(v, { revision: f.revision, status: f.status, notifyPolicy: f.notifyPolicy, goal: f.goal });
  pick(f, v, ["stateJson", "waitJson", "cancelRequestedAt"], false);
  Object.assign(v, { createdAt: f.createdAt, updatedAt: f.updatedAt });
  return pick(f, v, ["endedAt"], false);
}
export function taskView(t) {
  const v = pick(t, { taskId: t.taskId, runtime: t.runtime }, TASK_STRINGS, true);
  Object.assign(v, {
    scopeKind: t.scopeKind,
    task: t.task,
    status: t.status,
    deliveryStatus: t.deliveryStatus,
    notifyPolicy: t.notifyPolicy,
    createdAt: t.createdAt,
  });
  return pick(t, v, ["startedAt", "endedAt", "lastEventAt", "cleanupAfter"], false);
}

// ---- params: a small field table per action (the sidecar validates with zod first; this is the
// Gateway's own guard, since any operator client can call these methods)
const str = (v) => typeof v === "string" && v.trim() !== "";
const optStr = (v) => v === undefined || str(v);
const nullStr = (v) => v === undefined || v === null || str(v);
const rev = (v) => Number.isInteger(v) && v >= 0;
const optInt = (v) => v === undefined || (Number.isInteger(v) && v >= 0);
const any = () => true;
const oneOf =
  (...xs) =>
  (v) =>
    v === undefined || xs.includes(v);
const NOTIFY = oneOf("done_only", "state_changes", "silent");
export const FIELDS = {
  create_flow: {
    controllerId: str,
    goal: str,
    status: oneOf("queued", "running", "waiting", "blocked"),
    notifyPolicy: NOTIFY,
    currentStep: nullStr,
    stateJson: any,
    waitJson: any,
  },
  get_flow: { flowId: str },
  list_flows: {},
  find_latest_flow: {},
  resolve_flow: { token: str },
  get_task_summary: { flowId: str },
  set_waiting: { flowId: str, expectedRevision: rev, currentStep: nullStr, stateJson: any, waitJson: any, blockedTaskId: nullStr, blockedSummary: nullStr },
  resume_flow: { flowId: str, expectedRevision: rev, status: oneOf("queued", "running"), currentStep: nullStr, stateJson: any },
  finish_flow: { flowId: str, expectedRevision: rev, stateJson: any },
  fail_flow: { flowId: str, expectedRevision: rev, stateJson: any, blockedTaskId: nullStr, blockedSummary: nullStr },
  request_cancel: { flowId: str, expectedRevision: rev },
  cancel_flow: { flowId: str },
  run_task: {
    flowId: str,
    runtime: (v) => v === "subagent" || v === "acp",
    task: str,
    sourceId: optStr,
    childSessionKey: optStr,
    parentTaskId: optStr,
    agentId: optStr,
    runId: optStr,
    label: optStr,
    preferMetadata: (v) => v === undefined || typeof v === "boolean",
    notifyPolicy: NOTIFY,
    status: oneOf("queued", "running"),
    startedAt: optInt,
    lastEventAt: optInt,
    progressSummary: nullStr,
  },
};
// Fields that must be present (the rest are optional).
export const REQUIRED = new Set(["goal", "controllerId", "flowId", "token", "expectedRevision", "runtime", "task"]);

class ParamsError extends Error {}
function readParams(action, params) {
  if (!params || typeof params !== "object" || Array.isArray(params)) throw new ParamsError("params must be an object");
  const { sessionKey, idempotencyKey, ...rest } = params;
  if (!str(sessionKey)) throw new ParamsError("sessionKey: a non-empty string is required");
  if (idempotencyKey !== undefined && (!str(idempotencyKey) || idempotencyKey.length > 1024))
    throw new ParamsError("idempotencyKey: a non-empty string of at most 1024 characters");
  if (idempotencyKey !== undefined && !ONCE.has(action)) throw new ParamsError(`unknown field: idempotencyKey`);
  const fields = FIELDS[action];
  for (const key of Object.keys(rest)) if (!Object.hasOwn(fields, key)) throw new ParamsError(`unknown field: ${key}`);
  for (const [key, ok] of Object.entries(fields)) {
    if (rest[key] === undefined && !REQUIRED.has(key)) continue;
    if (!ok(rest[key])) throw new ParamsError(`${key}: invalid value`);
  }
  if (
    action === "run_task" &&
    rest.status !== "running" &&
    (rest.startedAt !== undefined || rest.lastEventAt !== undefined || rest.progressSummary !== undefined)
  ) {
    throw new ParamsError("status: status must be running when startedAt, lastEventAt, or progressSummary is provided");
  }
  return { sessionKey: sessionKey.trim(), idempotencyKey, input: rest };
}

// create_flow and run_task with an idempotencyKey: a repeat for the same session gets the first
// answer and creates nothing, so a sidecar that crashed after the Gateway created a flow (and
// before it stored its answer) cannot create a second one when the sender retries. Kept as the
// Gateway keeps its own agent idempotency keys: in memory, for 10 minutes, at most 1,000; on
// globalThis, since the Gateway evaluates this module more than once. A failure is not kept.
export const ONCE = new Set(["create_flow", "run_task"]);
const ONCE_TTL_MS = 10 * 60_000;
const ONCE_MAX = 1_000;
const onceAnswers = (globalThis.__webhooksBridgeOnce ??= new Map());
async function once(action, sessionKey, idempotencyKey, run) {
  if (!idempotencyKey || !ONCE.has(action)) return run();
  const key = `${action}\u0000${sessionKey}\u0000${idempotencyKey}`;
  const seen = onceAnswers.get(key);
  if (seen && (seen.pending || Date.now() - seen.at < ONCE_TTL_MS)) return seen.answer;
  const answer = run();
  const entry = { at: Date.now(), pending: true, answer };
  onceAnswers.delete(key);
  onceAnswers.set(key, entry);
  if (onceAnswers.size > ONCE_MAX) onceAnswers.delete(onceAnswers.keys().next().value);
  try {
    const result = await answer;
    if (result?.created === true) Object.assign(entry, { at: Date.now(), pending: false });
    else onceAnswers.delete(key);
    return result;
  } catch (err) {
    onceAnswers.delete(key);
    throw err;
  }
}

const mutation = (r) =>
  r.applied ? { applied: true, flow: flowView(r.flow) } : { applied: false, code: r.code, ...(r.current ? { current: flowView(r.current) } : {}) };

// ---- the actions: bound async runtime for everything but cancel (sync runtime), as the bundled plugin does
export const ACTIONS = {
  create_flow: {
    scope: "operator.write",
    run: async (b, i) => {
      const flow = await b.async.tryCreateManaged({ ...i, currentStep: i.currentStep ?? undefined });
      return flow ? { created: true, flow: flowView(flow) } : { created: false, code: "persist_failed" };
    },
  },
  get_flow: { scope: "operator.read", run: async (b, i) => ({ flow: flowView(await b.async.get(i.flowId)) }) },
  list_flows: { scope: "operator.read", run: async (b) => ({ flows: (await b.async.list()).map(flowView) }) },
  find_latest_flow: { scope: "operator.read", run: async (b) => ({ flow: flowView(await b.async.findLatest()) }) },
  resolve_flow: { scope: "operator.read", run: async (b, i) => ({ flow: flowView(await b.async.resolve(i.token)) }) },
  get_task_summary: { scope: "operator.read", run: async (b, i) => ({ summary: (await b.async.getTaskSummary(i.flowId)) ?? null }) },
  set_waiting: { scope: "operator.write", run: async (b, i) => mutation(await b.async.setWaiting(i)) },
  resume_flow: { scope: "operator.write", run: async (b, i) => mutation(await b.async.resume(i)) },
  finish_flow: { scope: "operator.write", run: async (b, i) => mutation(await b.async.finish(i)) },
  fail_flow: { scope: "operator.write", run: async (b, i) => mutation(await b.async.fail(i)) },
  request_cancel: { scope: "operator.write", run: async (b, i) => mutation(await b.async.requestCancel(i)) },
  cancel_flow: {
    scope: "operator.write",
    run: async (b, i, cfg) => {
      const r = await b.sync.cancel({ flowId: i.flowId, cfg });
      return {
        found: r.found,
        cancelled: r.cancelled,
        ...(r.reason ? { reason: r.reason } : {}),
        ...(r.flow ? { flow: flowView(r.flow) } : {}),
        ...(r.tasks ? { tasks: r.tasks.map(taskView) } : {}),
      };
    },
  },
  run_task: {
    scope: "operator.write",
    run: async (b, i) => {
      const r = await b.async.runTask(i);
      return r.created
        ? { created: true, flow: flowView(r.flow), task: taskView(r.task) }
        : { found: r.found, created: false, reason: r.reason, ...(r.flow ? { flow: flowView(r.flow) } : {}) };
    },
  },
};

export default {
  id: "webhooks-bridge",
  name: "Webhooks bridge",
  description:
    "TaskFlow Gateway methods, the webhooks_emit agent tool, `openclaw deliveries` and a Control UI Webhooks page for the openclaw-webhooks sidecar.",
  register(api) {
    // `openclaw deliveries …` (cli.js). The CLI evaluates the plugin in "cli-metadata" mode first,
    // where any api.runtime access throws and would reject the whole registration: nothing below
    // runs there.
    api.registerCli(({ program }) => void registerDeliveriesCli(program, api.pluginConfig?.service, resolveToken), {
      descriptors: [{ name: COMMAND, description: "Webhook deliveries of the openclaw-webhooks service (list, show, replay)", hasSubcommands: true }],
    });
    if (api.registrationMode === "cli-metadata") return;
    const tasks = api.runtime.tasks;
    // Bound lazily: only cancel_flow needs the sync runtime (the bundled plugin's split).
    const bind = (sessionKey) => ({
      get async() {
        return tasks.async.managedFlows.bindSession({ sessionKey });
      },
      get sync() {
        return tasks.managedFlows.bindSession({ sessionKey });
      },
    });
    for (const [action, { scope, run }] of Object.entries(ACTIONS)) {
      api.registerGatewayMethod(
        PREFIX + action,
        async ({ params, respond }) => {
          let parsed;
          try {
            parsed = readParams(action, params);
          } catch (err) {
            return respond(false, undefined, { code: "INVALID_REQUEST", message: `invalid ${PREFIX}${action} params: ${err.message}` });
          }
          try {
            respond(true, await once(action, parsed.sessionKey, parsed.idempotencyKey, () => run(bind(parsed.sessionKey), parsed.input, api.config)));
          } catch (err) {
            api.logger.warn?.(`[webhooks-bridge] ${action} failed: ${err?.message ?? err}`);
            respond(false, undefined, { code: "UNAVAILABLE", message: `${PREFIX}${action} failed` });
          }
        },
        { scope },
      );
    }
    api.logger.info?.(`[webhooks-bridge] registered ${Object.keys(ACTIONS).length} methods (${PREFIX}*)`);
    // The agent tool: the config is read in each module copy (the Gateway loads the plugin twice).
    const emitConfig = readEmitConfig(api.pluginConfig ?? {});
    registerEmitHooks(api);
    api.registerTool((toolContext) => createEmitTool(toolContext, emitConfig, resolveToken, api.logger), { name: TOOL });
    // The Control UI's Webhooks page: Gateway methods that ask the service, and a tab without the lab setting.
    registerDeliveriesUi(api, api.pluginConfig?.service, resolveToken);
  },
};
