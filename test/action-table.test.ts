import assert from "node:assert/strict";
import { test } from "node:test";
import { ACTION_NAMES, ACTIONS, actionRequestSchema } from "../src/taskflow/actions.js";

/**
 * The bridge plugin's own guard (gateway-plugin/index.js: FIELDS, REQUIRED, ONCE, each action's
 * scope) is plain JS the Gateway loads as it is, so it cannot import the action table
 * (src/taskflow/actions.ts). This holds the two together: the same actions, fields, scopes and
 * idempotent actions, and for every field the same verdict on the same values.
 */
type Guard = {
  FIELDS: Record<string, Record<string, (v: unknown) => boolean>>;
  REQUIRED: Set<string>;
  ONCE: Set<string>;
  ACTIONS: Record<string, { scope: string }>;
};
const PLUGIN: string = "../gateway-plugin/index.js"; // plain JS with no types: imported by name
const guard = (await import(PLUGIN)) as Guard;

/** Values of every kind a caller might send. */
const VALUES: unknown[] = [
  undefined,
  null,
  "",
  " ",
  "x",
  " padded ",
  "queued",
  "running",
  "waiting",
  "blocked",
  "succeeded",
  "subagent",
  "acp",
  "cli",
  "done_only",
  "state_changes",
  "silent",
  0,
  1,
  7,
  -1,
  1.5,
  Number.MAX_SAFE_INTEGER,
  true,
  false,
  {},
  { a: 1 },
  [],
  [1],
];

/** The one difference by design: the route's default controller fills create_flow's controllerId before the bridge call. */
const FILLED_BY_ROUTE = new Set(["create_flow.controllerId"]);

test("the plugin's guard has the same actions, scopes and idempotent actions as the action table", () => {
  assert.deepEqual(Object.keys(guard.FIELDS).sort(), [...ACTION_NAMES].sort());
  assert.deepEqual(Object.keys(guard.ACTIONS).sort(), [...ACTION_NAMES].sort());
  for (const a of ACTION_NAMES) assert.equal(guard.ACTIONS[a]!.scope, ACTIONS[a].scope, `${a}: scope`);
  assert.deepEqual([...guard.ONCE].sort(), ACTION_NAMES.filter((a) => "idempotent" in ACTIONS[a]).sort());
});

test("every field: the same names, the same required ones, and the same verdict as the table's schema on every kind of value", () => {
  let checked = 0;
  for (const a of ACTION_NAMES) {
    const shape = ACTIONS[a].input.shape as Record<string, { safeParse(v: unknown): { success: boolean } }>;
    const fields = Object.keys(shape).filter((k) => k !== "action");
    assert.deepEqual(Object.keys(guard.FIELDS[a]!).sort(), fields.sort(), `${a}: field names`);
    for (const f of fields) {
      const tableRequired = !shape[f]!.safeParse(undefined).success;
      const pluginRequired = guard.REQUIRED.has(f);
      if (FILLED_BY_ROUTE.has(`${a}.${f}`)) assert.equal(pluginRequired, true, `${a}.${f}: the bridge call always carries it`);
      else assert.equal(pluginRequired, tableRequired, `${a}.${f}: required`);
      for (const v of VALUES) {
        if (v === undefined) continue; // covered by "required" above
        const plug = guard.FIELDS[a]![f]!(v);
        const table = shape[f]!.safeParse(v).success;
        assert.equal(plug, table, `${a}.${f} = ${JSON.stringify(v)}: plugin says ${plug}, table says ${table}`);
        checked++;
      }
    }
  }
  assert.ok(checked > 1_000, `${checked} verdicts compared`);
});

test("the request union is the table: each action parses through it, and an unknown action does not", () => {
  assert.equal(actionRequestSchema.safeParse({ action: "list_flows" }).success, true);
  assert.equal(actionRequestSchema.safeParse({ action: "get_flow", flowId: "f" }).success, true);
  assert.equal(actionRequestSchema.safeParse({ action: "nope" }).success, false);
  assert.deepEqual(actionRequestSchema.options.map((o) => o.shape.action.value).sort(), [...ACTION_NAMES].sort());
});
