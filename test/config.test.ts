import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { buildConfig, ConfigError, loadConfig, normalizeWebhookPath } from "../src/config/load.js";

const dir = mkdtempSync(join(tmpdir(), "ocwh-config-"));
const routesOf = (routes: Record<string, unknown>) => ({ plugins: { entries: { webhooks: { enabled: true, config: { routes } } } } });
const fails = (raw: unknown, message: RegExp, env: NodeJS.ProcessEnv = {}) =>
  assert.throws(
    () => buildConfig(raw, env),
    (err) => err instanceof ConfigError && message.test(err.message),
  );

describe("config", () => {
  test("an OpenClaw plugin block loads verbatim, with the seed's defaults", () => {
    const c = buildConfig(
      routesOf({
        zapier: {
          sessionKey: "agent:main:main",
          secret: { source: "env", provider: "default", id: "OPENCLAW_WEBHOOK_SECRET" },
          description: "Zapier TaskFlow bridge",
        },
      }),
    );
    assert.equal(c.routes.length, 1);
    const r = c.routes[0]!;
    assert.equal(r.path, "/plugins/webhooks/zapier");
    assert.equal(r.controllerId, "webhooks/zapier");
    assert.deepEqual(r.rateLimit, { windowMs: 60_000, maxRequests: 120 });
    assert.equal(r.maxInFlight, 8);
    assert.equal(r.maxBodyBytes, 262_144);
    assert.equal(c.limits.bodyTimeoutMs, 15_000);
    assert.equal(c.gateway.mode, "embedded");
    assert.equal(c.redis.url, undefined);
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.routes[0]), "frozen");
  });

  test("disabled routes and a disabled plugin register nothing", () => {
    assert.equal(buildConfig(routesOf({ a: { enabled: false, sessionKey: "s", secret: "x" } })).routes.length, 0);
    assert.equal(
      buildConfig({ plugins: { entries: { webhooks: { enabled: false, config: { routes: { a: { sessionKey: "s", secret: "x" } } } } } } }).routes.length,
      0,
    );
  });

  test("paths are normalised; duplicates after normalisation are refused, naming both routes", () => {
    assert.equal(normalizeWebhookPath(" custom/hooks/x/ "), "/custom/hooks/x");
    assert.equal(normalizeWebhookPath("/"), "/");
    fails(
      routesOf({ first: { path: "/shared", sessionKey: "s", secret: "x" }, second: { path: "/shared/", sessionKey: "s", secret: "y" } }),
      /plugins\.entries\.webhooks\.config\.routes\.second\.path conflicts with routes\.first\.path \(\/shared\)/,
    );
  });

  test("bad keys stop startup with the key named", () => {
    fails(routesOf({ a: { secret: "x" } }), /plugins\.entries\.webhooks\.config\.routes\.a\.sessionKey:/);
    fails(routesOf({ a: { sessionKey: "s", secret: "x", bogus: 1 } }), /routes\.a\.bogus: unknown key/);
    fails(routesOf({ a: { sessionKey: "s", secret: "" } }), /routes\.a\.secret/);
    fails(routesOf({ a: { sessionKey: "s", secret: { source: "vault", provider: "default", id: "X" } } }), /routes\.a\.secret/);
    fails(routesOf({ a: { sessionKey: "s", secret: "x", rateLimit: { windowMs: 0, maxRequests: 1 } } }), /routes\.a\.rateLimit\.windowMs/);
    fails({ server: { port: "eighty" } }, /server\.port:/);
    fails({ gateway: { url: "http://x" } }, /gateway\.url:/);
    fails({ gateway: {} }, /gateway\.url:/);
    fails({ nope: true }, /nope: unknown key/);
    fails({ server: { trustedProxies: ["10.0.0.0/8", "proxy.local"] } }, /server\.trustedProxies\.1: not an IP address or CIDR/);
    fails({}, /PORT \(env\)/, { PORT: "abc" });
  });

  test("outgoing endpoints load with their defaults, and need Redis", () => {
    const endpoints = [{ name: "main", url: "https://example.test/h", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", events: ["message.*"] }];
    fails({ webhooks: { endpoints } }, /webhooks\.endpoints: outgoing webhooks need redis\.url/);
    const c = buildConfig({ redis: { url: "redis://127.0.0.1:1" }, webhooks: { endpoints } });
    assert.equal(c.webhooks.endpoints[0]!.timeoutMs, 5_000);
    fails({ redis: { url: "redis://127.0.0.1:1" }, webhooks: { endpoints: [{ ...endpoints[0], headers: { Host: "x" } }] } }, /webhooks\.endpoints\.0\.headers/);
  });

  test("env overrides: PORT, REDIS_URL, OPENCLAW_GATEWAY_URL and OPENCLAW_GATEWAY_TOKEN", () => {
    const c = buildConfig(
      { gateway: { mode: "embedded" } },
      { PORT: "9999", REDIS_URL: "redis://127.0.0.1:1", OPENCLAW_GATEWAY_URL: "ws://127.0.0.1:18789", OPENCLAW_GATEWAY_TOKEN: "tok" },
    );
    assert.equal(c.server.port, 9999);
    assert.equal(c.redis.url, "redis://127.0.0.1:1");
    assert.equal(c.gateway.mode, "remote");
    assert.ok(c.gateway.mode === "remote" && c.gateway.url === "ws://127.0.0.1:18789" && c.gateway.token === "tok");
  });

  test("JSON5 and YAML files load; a parse error names the file", () => {
    const j = join(dir, "c.json5");
    writeFileSync(j, "{ // comment\n server: { port: 1234, }, }");
    assert.equal(loadConfig(j, {}).server.port, 1234);
    const y = join(dir, "c.yaml");
    writeFileSync(
      y,
      "server:\n  port: 4321\nplugins:\n  entries:\n    webhooks:\n      config:\n        routes:\n          y: { sessionKey: s, secret: route-secret-0123456789 }\n",
    );
    const c = loadConfig(y, {});
    assert.equal(c.server.port, 4321);
    assert.equal(c.routes[0]?.path, "/plugins/webhooks/y");
    const bad = join(dir, "bad.json5");
    writeFileSync(bad, "{ server: ");
    assert.throws(
      () => loadConfig(bad, {}),
      (err) => err instanceof ConfigError && err.message.startsWith(`${bad}: cannot parse`),
    );
    assert.throws(() => loadConfig(join(dir, "missing.json5"), {}), /cannot read: ENOENT/);
  });

  test("the embedded default file is valid: one demo route, embedded Gateway, memory limits", () => {
    const c = loadConfig("config/default.json5", {});
    assert.deepEqual(
      c.routes.map((r) => r.path),
      ["/plugins/webhooks/demo"],
    );
    assert.equal(c.gateway.mode, "embedded");
    assert.equal(c.redis.url, undefined);
  });

  test("the service exits 1 with the key named when the config is bad", async () => {
    const bad = join(dir, "startup.json5");
    writeFileSync(bad, JSON.stringify(routesOf({ a: { sessionKey: "s", secret: "x", maxInFlight: -1 } })));
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "--config", bad], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const code = await new Promise((r) => child.once("exit", r));
    assert.equal(code, 1);
    assert.match(stderr, /routes\.a\.maxInFlight: Too small/);
  });

  test("serve takes --config=PATH as well as --config PATH, and an unknown option is a usage error (exit 2), never ignored", async () => {
    const bad = join(dir, "startup-eq.json5");
    writeFileSync(bad, JSON.stringify(routesOf({ a: { sessionKey: "s", secret: "x", maxInFlight: -1 } })));
    const run = async (args: string[]) => {
      const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", ...args], { stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d) => (stderr += d));
      const code = await new Promise((r) => child.once("exit", r));
      return { code, stderr };
    };
    const eq = await run([`--config=${bad}`]);
    assert.equal(eq.code, 1, "the file was read (and refused)");
    assert.match(eq.stderr, /routes\.a\.maxInFlight: Too small/);
    const unknown = await run(["--confg", bad]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /Unknown option '--confg'/);
  });
});
