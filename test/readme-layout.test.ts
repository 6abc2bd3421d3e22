import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { basename, dirname } from "node:path";
import { test } from "node:test";

/** The README's Layout section names every source file, under its folder, and nothing that is gone. */
test("the README's layout matches the tree under src/", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const block = /## Layout\n\n```\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(block, "a Layout section with a code block");
  const files = execFileSync("git", ["ls-files", "src"], { encoding: "utf8", cwd: new URL("..", import.meta.url) })
    .split("\n")
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"));
  const missing = files.filter((f) => !new RegExp(`(^|[\\s/·(,+])${basename(f).replace(/\./g, "\\.")}`, "m").test(block));
  assert.deepEqual(missing, [], "source files the layout does not name");
  const dirs = new Set(files.map((f) => dirname(f)));
  const named = [...block.matchAll(/^(src\/[\w/-]+\/)/gm)].map((m) => m[1]!.replace(/\/$/, ""));
  assert.deepEqual(
    named.filter((d) => !dirs.has(d)),
    [],
    "folders the layout names that no longer exist",
  );
});
