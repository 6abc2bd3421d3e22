import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createSecretResolver } from "../src/secrets/resolve.js";
import { post, startService, type TestService } from "./support/service.js";

const dir = mkdtempSync(join(tmpdir(), "ocwh-secrets-"));
const list = { action: "list_flows" };

describe("route secrets are re-resolved on every request", () => {
  let svc: TestService;
  const secretFile = join(dir, "route.secret");
  const jsonFile = join(dir, "secrets.json");
  const execScript = join(dir, "provider.mjs");
  const execValue = join(dir, "exec-value");
  before(async () => {
    process.env.OCWH_TEST_ROUTE_SECRET = "env-secret-0123456789-1";
    delete process.env.OCWH_TEST_MISSING;
    writeFileSync(secretFile, "file-secret-0123456789-1\n");
    writeFileSync(jsonFile, JSON.stringify({ routes: { j: "json-secret-0123456789-1" } }));
    writeFileSync(execValue, "exec-secret-0123456789-1");
    // An exec provider speaking the OpenClaw protocol: ids on stdin, values on stdout.
    writeFileSync(
      execScript,
      `#!${process.execPath}\nimport { readFileSync } from "node:fs";\nconst req = JSON.parse(readFileSync(0, "utf8"));\nconst v = readFileSync(${JSON.stringify(execValue)}, "utf8");\nprocess.stdout.write(JSON.stringify({ protocolVersion: 1, values: Object.fromEntries(req.ids.map((id) => [id, v])) }));\n`,
    );
    chmodSync(execScript, 0o700);
    svc = await startService({
      secrets: {
        providers: {
          vault: { source: "file", path: jsonFile, mode: "json" },
          runner: { source: "exec", command: execScript },
        },
      },
      routes: {
        env: { path: "/env", sessionKey: "s:env", secret: { source: "env", provider: "default", id: "OCWH_TEST_ROUTE_SECRET" } },
        short: { path: "/short", sessionKey: "s:short", secret: "${OCWH_TEST_ROUTE_SECRET}" },
        file: { path: "/file", sessionKey: "s:file", secret: { source: "file", provider: "default", id: secretFile } },
        json: { path: "/json", sessionKey: "s:json", secret: { source: "file", provider: "vault", id: "/routes/j" } },
        exec: { path: "/exec", sessionKey: "s:exec", secret: { source: "exec", provider: "runner", id: "route/exec" } },
        missing: { path: "/missing", sessionKey: "s:missing", secret: { source: "env", provider: "default", id: "OCWH_TEST_MISSING" } },
        store: { path: "/store", sessionKey: "s:store", secret: { source: "store", provider: "default", id: "ANY" } },
      },
    });
  });
  after(() => svc.close());

  const call = (path: string, secret: string) => post(`${svc.url}${path}`, list, { secret }).then((r) => r.status);

  test("env ref and ${VAR} shorthand: rotation takes effect on the next request", async () => {
    assert.equal(await call("/env", "env-secret-0123456789-1"), 200);
    assert.equal(await call("/short", "env-secret-0123456789-1"), 200);
    process.env.OCWH_TEST_ROUTE_SECRET = "env-secret-0123456789-2";
    assert.equal(await call("/env", "env-secret-0123456789-1"), 401);
    assert.equal(await call("/env", "env-secret-0123456789-2"), 200);
    assert.equal(await call("/short", "env-secret-0123456789-2"), 200);
  });

  test("file refs (one-secret file and JSON pointer): rotation without restart", async () => {
    assert.equal(await call("/file", "file-secret-0123456789-1"), 200);
    assert.equal(await call("/json", "json-secret-0123456789-1"), 200);
    writeFileSync(secretFile, "file-secret-0123456789-2");
    writeFileSync(jsonFile, JSON.stringify({ routes: { j: "json-secret-0123456789-2" } }));
    assert.equal(await call("/file", "file-secret-0123456789-1"), 401);
    assert.equal(await call("/file", "file-secret-0123456789-2"), 200);
    assert.equal(await call("/json", "json-secret-0123456789-2"), 200);
  });

  test("exec ref: the provider's answer is used, and a rotation shows within a second", async () => {
    assert.equal(await call("/exec", "exec-secret-0123456789-1"), 200);
    writeFileSync(execValue, "exec-secret-0123456789-2");
    await new Promise((r) => setTimeout(r, 1_100));
    assert.equal(await call("/exec", "exec-secret-0123456789-2"), 200);
    assert.equal(await call("/exec", "exec-secret-0123456789-1"), 401);
  });

  test("an unresolved secret keeps the route registered and answering 401, for any secret", async () => {
    for (const s of ["", "anything", "undefined", "[object Object]"]) assert.equal(await call("/missing", s), 401);
    assert.equal(await call("/store", "ANY"), 401);
    process.env.OCWH_TEST_MISSING = "now-it-exists-0123456789";
    assert.equal(await call("/missing", "now-it-exists-0123456789"), 200, "resolves once the variable appears");
  });

  test("a blank secret file never matches (401, not 500)", async () => {
    writeFileSync(secretFile, "   ");
    assert.equal(await call("/file", ""), 401);
    assert.equal(await call("/file", "   "), 401);
  });
});

describe("secret resolver", () => {
  test("exec answers are cached for at most a second and shared by concurrent callers", async () => {
    const counter = join(dir, "count");
    writeFileSync(counter, "");
    const script = join(dir, "count.mjs");
    writeFileSync(
      script,
      `#!${process.execPath}\nimport { appendFileSync, readFileSync } from "node:fs";\nappendFileSync(${JSON.stringify(counter)}, "x");\nconst req = JSON.parse(readFileSync(0, "utf8"));\nprocess.stdout.write(JSON.stringify({ protocolVersion: 1, values: { [req.ids[0]]: "v-0123456789abcdef" } }));\n`,
    );
    chmodSync(script, 0o700);
    let t = 0;
    const r = createSecretResolver({ providers: { p: { source: "exec", command: script, args: [], timeoutMs: 5_000 } }, now: () => t });
    const ref = { source: "exec", provider: "p", id: "a" } as const;
    const got = await Promise.all([r.resolve(ref), r.resolve(ref), r.resolve(ref)]);
    assert.deepEqual(got, ["v-0123456789abcdef", "v-0123456789abcdef", "v-0123456789abcdef"]);
    t = 999;
    await r.resolve(ref);
    const { readFileSync } = await import("node:fs");
    assert.equal(readFileSync(counter, "utf8").length, 1, "one run within the second");
    t = 1_000;
    await r.resolve(ref);
    assert.equal(readFileSync(counter, "utf8").length, 2, "re-run after a second");
  });

  test("a literal secret that looks like an unknown shorthand is compared literally", async () => {
    const r = createSecretResolver({ providers: {}, env: {} });
    assert.equal(await r.resolve("${lowercase}"), "${lowercase}");
    assert.equal(await r.resolve("${NOT_SET}"), undefined);
    assert.equal(await r.resolve({ source: "env", provider: "other", id: "X" }), undefined, "unknown provider");
  });
});
