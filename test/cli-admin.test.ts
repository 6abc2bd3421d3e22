import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { startReceiver } from "./support/receiver.js";
import { startRedis, type TestRedis } from "./support/redis.js";
import { startService, twoRoutes, type TestService } from "./support/service.js";
import { until } from "./support/until.js";

const ADMIN = "admin-token-0123456789";
const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
let redis: TestRedis;
let svc: TestService;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let failedId: string;
let deliveredId: string;

/** The real binary (bin/openclaw-webhooks.js), as a user runs it. */
function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ["bin/openclaw-webhooks.js", ...args], {
      env: { ...process.env, OPENCLAW_WEBHOOKS_URL: svc.url, OPENCLAW_WEBHOOKS_ADMIN_TOKEN: ADMIN, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("close", (code) => resolve({ code: code ?? -1, out, err }));
  });
}

before(async () => {
  redis = await startRedis();
  rx = await startReceiver({ secret: WHSEC });
  svc = await startService({
    redis: { url: redis.url, prefix: redis.prefix() },
    admin: { token: ADMIN },
    routes: twoRoutes(),
    webhooks: {
      allowPrivateCidrs: ["127.0.0.0/8"],
      circuitBreaker: { failureThreshold: 100 },
      endpoints: [
        { name: "crm", url: rx.url, secret: WHSEC, events: ["lead.*"], retry: { maxAttempts: 1, backoffMs: 10 } },
        { name: "ops", url: `${rx.url}/ops`, secret: WHSEC, events: ["ops.*"] },
      ],
      inbound: { endpoints: { deploy: { agentId: "devops", template: "{{body.repo}}", auth: { scheme: "token", secret: "ci-token-0123456789" } } } },
    },
  });
  await svc.deps.egress!.startWorker();
  const e = svc.deps.egress!;
  rx.next({ status: 500, body: "nope" });
  failedId = (await e.publish({ type: "lead.lost", data: {} })).deliveries[0]!;
  await until(async () => (await e.log.get(failedId))?.status === "failed");
  deliveredId = (await e.publish({ type: "lead.qualified", data: {} })).deliveries[0]!;
  await until(async () => (await e.log.get(deliveredId))?.status === "delivered");
});
after(async () => {
  await svc.close();
  await rx.close();
  await redis.dispose();
});

describe("the CLI over the admin API (real binary, running service)", () => {
  test("deliveries list: table, filters, --json", async () => {
    const all = await cli(["deliveries", "list", "--recent", "10"]);
    assert.equal(all.code, 0, all.err);
    assert.match(all.out, /^ID\s+EVENT\s+ENDPOINT\s+STATUS/);
    assert.ok(all.out.includes(failedId) && all.out.includes(deliveredId));
    const failed = await cli(["deliveries", "list", "--status", "failed", "--json"]);
    assert.equal(failed.code, 0);
    const rows = JSON.parse(failed.out);
    assert.deepEqual(
      rows.map((d: any) => d.id),
      [failedId],
    );
    assert.equal(rows[0].lastStatus, 500);
    const byEndpoint = JSON.parse((await cli(["deliveries", "list", "--endpoint", "ops", "--json"])).out);
    assert.deepEqual(byEndpoint, []);
    const byType = JSON.parse((await cli(["deliveries", "list", "--event-type", "lead.qualified", "--since", "1h", "--json"])).out);
    assert.deepEqual(
      byType.map((d: any) => d.id),
      [deliveredId],
    );
  });

  test("deliveries show and replay; replay of a failed batch", async () => {
    const show = await cli(["deliveries", "show", failedId]);
    assert.equal(show.code, 0);
    assert.match(show.out, /status {4}failed after 1 attempt/);
    assert.match(show.out, /1\s+scheduled\s+\S+ \S+\s+500\s+http_status/);
    const json = JSON.parse((await cli(["deliveries", "show", failedId, "--json"])).out);
    assert.equal(json.attemptLog[0].responseBody, "nope");
    const replay = await cli(["deliveries", "replay", deliveredId]);
    assert.equal(replay.code, 0, replay.err);
    assert.match(replay.out, /replay of .* started/);
    await until(async () => (await svc.deps.egress!.log.get(deliveredId))!.attempts === 2);
    const batch = await cli(["deliveries", "replay", "--status", "failed", "--since", "1h", "--endpoint", "crm"]);
    assert.equal(batch.code, 0, batch.err);
    assert.match(batch.out, /crm: 1 replay\(s\) started/);
    await until(async () => (await svc.deps.egress!.log.get(failedId))?.status === "delivered");
  });

  test("endpoints list, disable, enable, test; routes list without secrets", async () => {
    const list = await cli(["endpoints", "list"]);
    assert.equal(list.code, 0);
    assert.match(list.out, /crm\s+enabled\s+closed/);
    assert.equal((await cli(["endpoints", "disable", "ops"])).code, 0);
    assert.match((await cli(["endpoints", "list"])).out, /ops\s+disabled: disabled by an operator/);
    assert.equal((await cli(["endpoints", "enable", "ops"])).code, 0);
    const before = rx.received.length;
    const t = await cli(["endpoints", "test", "ops", "--json"]);
    assert.equal(t.code, 0, t.err);
    assert.ok(JSON.parse(t.out).deliveryId);
    await until(() => rx.received.length === before + 1);
    assert.equal(JSON.parse(rx.received.at(-1)!.body).type, "webhook.test");
    const routes = await cli(["routes", "list"]);
    assert.equal(routes.code, 0);
    assert.match(routes.out, /taskflow\s+a\s+\/hooks\/a/);
    assert.match(routes.out, /inbound\s+deploy\s+\/webhooks\/inbound\/deploy\s+agent → devops, auth token/);
    assert.ok(!routes.out.includes("secret-route-a") && !routes.out.includes("ci-token"), "no secret values");
  });

  test("exit codes: 1 refused, 2 usage, 3 unreachable, 4 bad token; --help everywhere", async () => {
    assert.equal((await cli(["deliveries", "show", "dlv_nope"])).code, 1);
    assert.equal((await cli(["endpoints", "enable", "nope"])).code, 1);
    assert.equal((await cli(["deliveries", "list", "--status", "lost"])).code, 2);
    assert.equal((await cli(["deliveries", "list", "--bogus"])).code, 2);
    assert.equal((await cli(["deliveries", "replay"])).code, 2);
    assert.equal((await cli(["deliveries", "list"], { OPENCLAW_WEBHOOKS_URL: "http://127.0.0.1:9" })).code, 3);
    const bad = await cli(["deliveries", "list", "--token", "wrong"]);
    assert.equal(bad.code, 4);
    assert.match(bad.err, /token was refused/);
    const help = await cli(["deliveries", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.out, /deliveries list \[--recent N\]/);
    assert.match((await cli(["--help"])).out, /endpoints enable\|disable\|test NAME/);
  });
});
