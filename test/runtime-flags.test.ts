import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { SERVICE_ENV, SERVICE_NODE_FLAGS } from "./support/process.js";

// The flags that keep the service's memory bounded (test/support/process.ts) are the ones it runs
// with: in the image, under `npm start`, and in every test that starts it as a process.
test("the image and npm start run the service with the V8 flags and environment the tests run it with", () => {
  const flags = SERVICE_NODE_FLAGS.join(" ");
  const dockerfile = readFileSync(new URL("../Dockerfile", import.meta.url), "utf8");
  const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)?.[1];
  assert.deepEqual(JSON.parse(cmd ?? "[]"), ["node", ...SERVICE_NODE_FLAGS, "dist/main.js"]);
  const env = Object.entries(SERVICE_ENV).map(([k, v]) => `${k}=${v}`);
  for (const e of env) assert.match(dockerfile, new RegExp(`^ENV ${e}$`, "m"));
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { scripts: Record<string, string> };
  assert.equal(pkg.scripts.start, `${env.join(" ")} node ${flags} --import tsx src/main.ts`);
});
