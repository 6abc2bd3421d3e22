import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, test } from "node:test";
import { Webhook } from "standardwebhooks";
import { buildConfig, ConfigError } from "../src/config/load.js";
import { startFakeGateway } from "./support/fake-gateway.js";
import { startReceiver } from "./support/receiver.js";
import { useRedisAndGateway } from "./support/shared.js";
import { post, SECRET_A, startService, twoRoutes } from "./support/service.js";
import { until } from "./support/until.js";

const GW_TOKEN = "gw-token-0123456789";
const CI_TOKEN = "ci-token-0123456789";
const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const shared = useRedisAndGateway(GW_TOKEN);

/** Seed 002's two examples, with authentication added (ours always has it). */
const seedEndpoints = {
  alert: {
    agentId: "alert-handler",
    template: "Alert received: {{body.title}} - Severity: {{body.severity}}",
    auth: { scheme: "standard-webhooks", secret: WHSEC },
  },
  deploy: {
    agentId: "devops-agent",
    template: "{{body.repo}}'s {{body.branch}} branch deployment {{body.status}}",
    auth: { scheme: "token", secret: CI_TOKEN },
  },
  ping: { action: "wake", textTemplate: "Ping from {{headers.x-source}}: {{body.note}}", auth: { scheme: "token", secret: CI_TOKEN } },
} as const;
const deployBody = { repo: "my-app", branch: "main", status: "succeeded", commit: "abc123" };
const agentCalls = () => shared.gw.frames.filter((f) => f.method === "agent");

function signed(body: unknown, id: string) {
  const text = JSON.stringify(body);
  const at = new Date();
  return {
    text,
    headers: {
      "webhook-id": id,
      "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
      "webhook-signature": new Webhook(WHSEC).sign(id, at, text),
    },
  };
}

describe("inbound endpoints (seed 002's incoming webhooks)", () => {
  test("the seed's deploy example starts an agent run with the rendered message; the run's end reaches a subscribed receiver, signed", async () => {
    const rx = await startReceiver({ secret: WHSEC });
    const svc = await startService({
      redis: { url: shared.redis.url, prefix: shared.redis.prefix() },
      gateway: { url: shared.gw.url, token: GW_TOKEN },
      webhooks: {
        allowPrivateCidrs: ["127.0.0.0/8"],
        inbound: { endpoints: seedEndpoints },
        endpoints: [{ name: "callbacks", url: rx.url, secret: WHSEC, events: ["inbound.completed"] }],
      },
    });
    await svc.deps.egress!.startWorker();
    try {
      const before = agentCalls().length;
      const r = await post(`${svc.url}/webhooks/inbound/deploy`, deployBody, { secret: CI_TOKEN });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.json.ok, true);
      const runId = r.json.runId as string;
      assert.ok(runId);
      const call = agentCalls().slice(before)[0]!;
      assert.equal(call.params.message, "my-app's main branch deployment succeeded");
      assert.equal(call.params.agentId, "devops-agent");
      assert.equal(call.params.idempotencyKey, runId);
      await until(() => rx.received.length === 1);
      const ev = JSON.parse(rx.received[0]!.body);
      assert.equal(rx.received[0]!.verified, true);
      assert.equal(ev.type, "inbound.completed");
      assert.deepEqual(ev.data, { endpoint: "deploy", runId, status: "ok", agentId: "devops-agent", reply: "Echo: my-app's main branch deployment succeeded" });
      assert.equal(ev.id, `inbound_completed_${runId}`);
    } finally {
      await svc.close();
      await rx.close();
    }
  });

  test("authentication: a wrong token is 401 before the body is read; a bad signature is 401; nothing reaches the Gateway", async () => {
    const svc = await startService({ gateway: { url: shared.gw.url, token: GW_TOKEN }, webhooks: { inbound: { endpoints: seedEndpoints } } });
    try {
      const before = agentCalls().length;
      const wrong = await post(`${svc.url}/webhooks/inbound/deploy`, deployBody, { secret: "nope" });
      assert.deepEqual([wrong.status, wrong.json.code, wrong.headers.get("connection")], [401, "unauthorized", "close"]);
      const s = signed({ title: "Disk full", severity: "high" }, "msg_bad");
      const tampered = await post(`${svc.url}/webhooks/inbound/alert`, s.text.replace("high", "low"), { headers: s.headers });
      assert.equal(tampered.status, 401);
      const reserialised = await post(`${svc.url}/webhooks/inbound/alert`, JSON.stringify(JSON.parse(s.text), null, 1), { headers: s.headers });
      assert.equal(reserialised.status, 401, "the signature covers the exact bytes");
      assert.equal(agentCalls().length, before);
      const good = await post(`${svc.url}/webhooks/inbound/alert`, s.text, { headers: s.headers });
      assert.equal(good.status, 202, good.text);
      assert.equal(agentCalls().at(-1)!.params.message, "Alert received: Disk full - Severity: high");
      const media = await post(`${svc.url}/webhooks/inbound/deploy`, "x=1", {
        secret: CI_TOKEN,
        headers: { "content-type": "application/x-www-form-urlencoded" },
      });
      assert.equal(media.status, 415);
      const badJson = await post(`${svc.url}/webhooks/inbound/deploy`, "{nope", { secret: CI_TOKEN });
      assert.equal(badJson.status, 400);
      assert.equal((await post(`${svc.url}/webhooks/inbound/nope`, deployBody, { secret: CI_TOKEN })).status, 404);
    } finally {
      await svc.close();
    }
  });

  test("fifty concurrent copies of one delivery (same webhook-id) start one run; the rest get its answer, marked as a replay", async () => {
    const svc = await startService({
      redis: { url: shared.redis.url, prefix: shared.redis.prefix() },
      gateway: { url: shared.gw.url, token: GW_TOKEN },
      limits: { rateLimit: { windowMs: 60_000, maxRequests: 1_000 }, maxInFlight: 100 },
      webhooks: { inbound: { endpoints: seedEndpoints } },
    });
    try {
      const before = agentCalls().length;
      const s = signed({ title: "Disk full", severity: "high" }, "msg_dup_1");
      const answers = await Promise.all(Array.from({ length: 50 }, () => post(`${svc.url}/webhooks/inbound/alert`, s.text, { headers: s.headers })));
      assert.equal(agentCalls().length - before, 1, "one Gateway call");
      assert.ok(
        answers.every((a) => a.status === 202),
        answers.map((a) => a.status).join(","),
      );
      const started = answers.filter((a) => a.headers.get("idempotent-replayed") === null);
      const dups = answers.filter((a) => a.headers.get("idempotent-replayed") === "true" && a.json.duplicate === true);
      assert.equal(started.length, 1);
      assert.equal(dups.length, 49);
      assert.equal(new Set(answers.map((a) => a.json.runId)).size, 1, "every copy hears of the one run");
      // A late retry gets the first run's answer again.
      const late = await post(`${svc.url}/webhooks/inbound/alert`, s.text, { headers: s.headers });
      assert.deepEqual(
        [late.status, late.json.duplicate, late.json.runId, late.headers.get("idempotent-replayed")],
        [202, true, started[0]!.json.runId, "true"],
      );
    } finally {
      await svc.close();
    }
  });

  test("Gateway down: 503 gateway_unavailable, and the delivery id is given back so a retry runs", async () => {
    const own = await startFakeGateway({ token: GW_TOKEN });
    const svc = await startService({
      redis: { url: shared.redis.url, prefix: shared.redis.prefix() },
      gateway: { url: own.url, token: GW_TOKEN, reconnectBaseMs: 50, reconnectMaxMs: 200 },
      webhooks: { inbound: { endpoints: seedEndpoints } },
    });
    try {
      await own.stop();
      await until(() => !svc.deps.gateway!.connected);
      const s = signed({ title: "t", severity: "s" }, "msg_down_1");
      const down = await post(`${svc.url}/webhooks/inbound/alert`, s.text, { headers: s.headers });
      assert.deepEqual([down.status, down.json.code], [503, "gateway_unavailable"]);
      await own.restart();
      await until(() => svc.deps.gateway!.connected);
      const again = await post(`${svc.url}/webhooks/inbound/alert`, s.text, { headers: s.headers });
      assert.equal(again.status, 202, again.text);
    } finally {
      await svc.close();
      await own.stop();
    }
  });

  test("embedded runtime (no Gateway): agent and wake work on a fresh machine; wake answers queued, then coalesced", async () => {
    const svc = await startService({ webhooks: { inbound: { endpoints: seedEndpoints } } });
    try {
      const r = await post(`${svc.url}/webhooks/inbound/deploy`, deployBody, { secret: CI_TOKEN });
      assert.equal(r.status, 202);
      const w1 = await post(`${svc.url}/webhooks/inbound/ping?x=1`, { note: "hello" }, { secret: CI_TOKEN, headers: { "x-source": "ci" } });
      const w2 = await post(`${svc.url}/webhooks/inbound/ping`, { note: "hello" }, { secret: CI_TOKEN, headers: { "x-source": "ci" } });
      assert.deepEqual([w1.status, w1.json.eventOutcome, w2.json.eventOutcome], [200, "queued", "coalesced"]);
      assert.equal(w1.json.ok, true);
    } finally {
      await svc.close();
    }
  });

  test("GitHub-signed deliveries dedupe on X-GitHub-Delivery", async () => {
    const secret = "gh-secret-0123456789";
    const svc = await startService({
      redis: { url: shared.redis.url, prefix: shared.redis.prefix() },
      gateway: { url: shared.gw.url, token: GW_TOKEN },
      webhooks: { inbound: { endpoints: { push: { template: "Push to {{body.repository.full_name}}", auth: { scheme: "github", secret } } } } },
    });
    try {
      const text = JSON.stringify({ repository: { full_name: "acme/api" } });
      const headers = { "x-hub-signature-256": `sha256=${createHmac("sha256", secret).update(text).digest("hex")}`, "x-github-delivery": "d-1" };
      const first = await post(`${svc.url}/webhooks/inbound/push`, text, { headers });
      const second = await post(`${svc.url}/webhooks/inbound/push`, text, { headers });
      assert.deepEqual([first.status, second.status, second.json.duplicate, second.json.runId], [202, 202, true, first.json.runId]);
      assert.equal(second.headers.get("idempotent-replayed"), "true");
      assert.equal(agentCalls().at(-1)!.params.message, "Push to acme/api");
    } finally {
      await svc.close();
    }
  });

  test("config: an endpoint without auth, or whose path is a TaskFlow route's, fails startup naming the key", () => {
    assert.throws(
      () => buildConfig({ webhooks: { inbound: { endpoints: { alert: { agentId: "a", template: "t" } } } } }),
      (e: Error) => e instanceof ConfigError && /webhooks\.inbound\.endpoints\.alert\.auth/.test(e.message),
    );
    assert.throws(
      () => buildConfig({ webhooks: { inbound: { endpoints: { x: { template: "t", auth: { scheme: "hmac", secret: "s" } } } } } }),
      (e: Error) => /webhooks\.inbound\.endpoints\.x\.auth\.header/.test(e.message),
    );
    assert.throws(
      () =>
        buildConfig({
          plugins: { entries: { webhooks: { enabled: true, config: { routes: { r: { path: "/webhooks/inbound/a", sessionKey: "s", secret: "x" } } } } } },
          webhooks: { inbound: { endpoints: { a: { template: "t", auth: { scheme: "token", secret: "x" } } } } },
        }),
      /webhooks\.inbound\.endpoints\.a: its path/,
    );
  });
});

describe("Idempotency-Key on the TaskFlow routes", () => {
  test("fifty concurrent create_flow with one key make one Gateway call and get the same flow; another body is 409", async () => {
    const svc = await startService({
      redis: { url: shared.redis.url, prefix: shared.redis.prefix() },
      gateway: { url: shared.gw.url, token: GW_TOKEN },
      routes: twoRoutes({ rateLimit: { windowMs: 60_000, maxRequests: 1_000 }, maxInFlight: 100 }),
    });
    try {
      const creates = () => shared.gw.frames.filter((f) => f.method.endsWith("create_flow")).length;
      const before = creates();
      const body = { action: "create_flow", goal: "once only" };
      const answers = await Promise.all(
        Array.from({ length: 50 }, () => post(`${svc.url}/hooks/a`, body, { secret: SECRET_A, headers: { "idempotency-key": "order-42" } })),
      );
      assert.equal(creates() - before, 1, "one Gateway call");
      assert.ok(
        answers.every((a) => a.status === 200),
        answers.map((a) => a.status).join(","),
      );
      assert.equal(new Set(answers.map((a) => a.json.result.flow.flowId)).size, 1);
      assert.equal(answers.filter((a) => a.headers.get("idempotent-replayed") === "true").length, 49);
      const other = await post(
        `${svc.url}/hooks/a`,
        { action: "create_flow", goal: "something else" },
        { secret: SECRET_A, headers: { "idempotency-key": "order-42" } },
      );
      assert.deepEqual([other.status, other.json.code], [409, "idempotency_conflict"]);
      // Keys are per route; without a key every request runs.
      const b = await post(`${svc.url}/hooks/b`, body, { secret: "secret-route-b-0123456789", headers: { "idempotency-key": "order-42" } });
      assert.equal(b.status, 200);
      assert.notEqual(b.json.result.flow.flowId, answers[0]!.json.result.flow.flowId);
      assert.equal(creates() - before, 2);
    } finally {
      await svc.close();
    }
  });
});
