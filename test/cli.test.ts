import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

const run = (...args: string[]) => spawnSync(process.execPath, ["bin/openclaw-webhooks.js", ...args], { encoding: "utf8" });

test("config check: exit 0 for a valid file, 1 naming the key for a bad one, 2 for usage errors", () => {
  const ok = run("config", "check", "config/default.json5");
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /route demo {2}\/plugins\/webhooks\/demo {2}secret: inline/);
  assert.ok(!ok.stdout.includes("demo-route-secret"), "never prints secret values");
  const dir = mkdtempSync(join(tmpdir(), "ocwh-cli-"));
  const bad = join(dir, "bad.json5");
  writeFileSync(bad, "{ plugins: { entries: { webhooks: { config: { routes: { x: { secret: 's' } } } } } } }");
  const no = run("config", "check", bad);
  assert.equal(no.status, 1);
  assert.match(no.stderr, /routes\.x\.sessionKey/);
  assert.equal(run("config", "check").status, 2);
  assert.equal(run("frobnicate").status, 2);
  const help = run("--help");
  assert.equal(help.status, 0);
  assert.match(help.stdout, /openclaw-webhooks serve/);
});
