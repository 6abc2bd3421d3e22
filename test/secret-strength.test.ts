import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { buildConfig, ConfigError } from "../src/config/load.js";
import { createSecretResolver } from "../src/secrets/resolve.js";
import { post, startService } from "./support/service.js";

const dir = mkdtempSync(join(tmpdir(), "ocwh-strength-"));
const GOOD_WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const GOOD = "a-long-enough-secret-0123";
const REDIS = { url: "redis://127.0.0.1:1" };
const route = (secret: unknown) => ({ plugins: { entries: { webhooks: { config: { routes: { zap: { sessionKey: "s", secret } } } } } } });
const endpoint = (secret: unknown) => ({ redis: REDIS, webhooks: { endpoints: [{ name: "crm", url: "https://example.test/h", secret, events: ["*"] }] } });
const inbound = (auth: Record<string, unknown>) => ({ webhooks: { inbound: { endpoints: { alert: { template: "t", auth } } } } });
const fails = (raw: unknown, message: RegExp) =>
  assert.throws(
    () => buildConfig(raw, {}),
    (err) => err instanceof ConfigError && message.test(err.message),
    `expected ${message}`,
  );

describe("signing keys and tokens that are empty or too short are refused at startup, naming the key", () => {
  test("whsec_ with nothing, or with what is not base64, after it", () => {
    fails(endpoint("whsec_"), /^config: webhooks\.endpoints\.0\.secret: whsec_ with no key after it/);
    fails(endpoint("whsec_!!!"), /^config: webhooks\.endpoints\.0\.secret: the part after whsec_ is not base64/);
    fails(endpoint([GOOD_WHSEC, "whsec_"]), /webhooks\.endpoints\.0\.secret\.1: whsec_ with no key/);
    fails(inbound({ scheme: "standard-webhooks", secret: "whsec_" }), /webhooks\.inbound\.endpoints\.alert\.auth\.secret: whsec_ with no key/);
    fails(
      inbound({ scheme: "standard-webhooks", secrets: [GOOD_WHSEC, "whsec_!!!"] }),
      /webhooks\.inbound\.endpoints\.alert\.auth\.secrets\.1: the part after whsec_ is not base64/,
    );
    // 3 bytes of key (whsec_YWJj is "abc"): below the 16-byte floor.
    fails(endpoint("whsec_YWJj"), /webhooks\.endpoints\.0\.secret: the key after whsec_ is 3 bytes; at least 16/);
  });

  test("plain secrets and tokens shorter than 16 characters", () => {
    fails(route("short"), /^config: plugins\.entries\.webhooks\.config\.routes\.zap\.secret: too short to be a secret \(5 characters; at least 16\)/);
    fails(endpoint("plain-secret"), /webhooks\.endpoints\.0\.secret: too short/);
    fails(inbound({ scheme: "token", secret: "tok" }), /webhooks\.inbound\.endpoints\.alert\.auth\.secret: too short/);
    fails(inbound({ scheme: "hmac", header: "x-sig", secret: "s" }), /auth\.secret: too short/);
    fails({ webhooks: { publishToken: "pub" } }, /webhooks\.publishToken: too short/);
    fails({ admin: { token: "admin" } }, /admin\.token: too short/);
  });

  test("good secrets, SecretRefs and ${VAR} shorthands load (refs are checked when they resolve)", () => {
    buildConfig({ ...endpoint([GOOD_WHSEC, GOOD]), admin: { token: GOOD }, ...route(GOOD) }, {});
    buildConfig(route({ source: "env", provider: "default", id: "ROUTE_SECRET" }), {});
    buildConfig(route("${ROUTE_SECRET}"), {});
    // Stripe's whsec_ secret is used whole, as UTF-8: only its length counts.
    buildConfig(inbound({ scheme: "stripe", secret: "whsec_stripe_test_secret_0123456789" }), {});
    fails(inbound({ scheme: "stripe", secret: "whsec_" }), /auth\.secret: too short to be a secret \(6 characters/);
    // The Gateway's token is the Gateway's to choose: the service presents it, it does not verify it.
    buildConfig({ gateway: { url: "ws://127.0.0.1:1", token: "gw" } }, {});
  });

  test("config check exits 1 naming the key for whsec_, whsec_!!! and a short secret", () => {
    for (const [secret, message] of [
      ["whsec_", /webhooks\.endpoints\.0\.secret: whsec_ with no key/],
      ["whsec_!!!", /webhooks\.endpoints\.0\.secret: the part after whsec_ is not base64/],
      ["tiny", /webhooks\.endpoints\.0\.secret: too short/],
    ] as const) {
      const file = join(dir, `check-${secret.length}.json5`);
      writeFileSync(file, JSON.stringify(endpoint(secret)));
      const r = spawnSync(process.execPath, ["bin/openclaw-webhooks.js", "config", "check", file], { encoding: "utf8" });
      assert.equal(r.status, 1, r.stdout);
      assert.match(r.stderr, message);
    }
  });
});

describe("SecretRefs are checked when they resolve", () => {
  test("an env or file ref resolving to whsec_, whsec_!!! or a short value is no secret: a clear report, never an empty key", async () => {
    const file = join(dir, "weak.secret");
    writeFileSync(file, "whsec_!!!");
    const refused: string[] = [];
    const env = { WEAK: "whsec_", SHORT: "abc", GOOD: GOOD };
    const r = createSecretResolver({ providers: {}, env, onRefused: (ref, problem) => refused.push(`${ref}: ${problem}`) });
    assert.equal(await r.resolve({ source: "env", provider: "default", id: "WEAK" }, { standardKey: true }), undefined);
    assert.equal(await r.resolve("${SHORT}"), undefined);
    assert.equal(await r.resolve({ source: "file", provider: "default", id: file }, { standardKey: true }), undefined);
    // As a plain token (a route's, the publish token), whsec_ is only six characters.
    assert.equal(await r.resolve({ source: "env", provider: "default", id: "WEAK" }), undefined);
    assert.equal(await r.resolve({ source: "env", provider: "default", id: "GOOD" }), GOOD);
    assert.deepEqual(refused, [
      "env:default:WEAK: whsec_ with no key after it",
      "env:default:SHORT: too short to be a secret (3 characters; at least 16)",
      `file:default:${file}: the part after whsec_ is not base64 (standard alphabet, padded to a multiple of 4 characters)`,
      "env:default:WEAK: too short to be a secret (6 characters; at least 16)",
    ]);
  });

  test("a route whose env ref holds whsec_ answers 401 to a caller presenting whsec_ (no empty-key match)", async () => {
    process.env.OCWH_TEST_WEAK_ROUTE = "whsec_";
    const svc = await startService({ routes: { w: { path: "/weak", sessionKey: "s:w", secret: "${OCWH_TEST_WEAK_ROUTE}" } } });
    try {
      assert.equal((await post(`${svc.url}/weak`, { action: "list_flows" }, { secret: "whsec_" })).status, 401);
      process.env.OCWH_TEST_WEAK_ROUTE = GOOD;
      assert.equal((await post(`${svc.url}/weak`, { action: "list_flows" }, { secret: GOOD })).status, 200);
    } finally {
      delete process.env.OCWH_TEST_WEAK_ROUTE;
      await svc.close();
    }
  });

  test("startup exits 1 naming the key when an env ref resolves to a weak secret", async () => {
    const file = join(dir, "startup.json5");
    const ref = (id: string) => ({ source: "env", provider: "default", id });
    writeFileSync(
      file,
      JSON.stringify({
        ...endpoint(ref("OCWH_WEAK_SIGNING")),
        webhooks: { ...endpoint(ref("OCWH_WEAK_SIGNING")).webhooks, publishToken: ref("OCWH_SHORT_PUBLISH") },
        log: { level: "silent" },
        server: { port: 0 },
      }),
    );
    const run = async (env: Record<string, string>) => {
      const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "--config", file], {
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      child.stderr.on("data", (d) => (stderr += d));
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      const code = await new Promise((r) => child.once("exit", r));
      clearTimeout(timer);
      return { code, stderr };
    };
    for (const [signing, message] of [
      ["whsec_", /webhooks\.endpoints\.0\.secret \(env:default:OCWH_WEAK_SIGNING\): whsec_ with no key after it/],
      ["whsec_!!!", /webhooks\.endpoints\.0\.secret \(env:default:OCWH_WEAK_SIGNING\): the part after whsec_ is not base64/],
    ] as const) {
      const r = await run({ OCWH_WEAK_SIGNING: signing, OCWH_SHORT_PUBLISH: GOOD });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, message);
    }
    const short = await run({ OCWH_WEAK_SIGNING: GOOD_WHSEC, OCWH_SHORT_PUBLISH: "pub" });
    assert.equal(short.code, 1, short.stderr);
    assert.match(short.stderr, /webhooks\.publishToken \(env:default:OCWH_SHORT_PUBLISH\): too short to be a secret \(3 characters; at least 16\)/);
  });
});
