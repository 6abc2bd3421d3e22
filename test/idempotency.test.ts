import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { Webhook } from "standardwebhooks";
import { idempotencyKey } from "../src/idempotency/keys.js";
import { startFakeGateway } from "./support/fake-gateway.js";
import { startServiceProcess } from "./support/process.js";
import { startRedis } from "./support/redis.js";
import { useRedisAndGateway } from "./support/shared.js";
import { post, SECRET_A, startService } from "./support/service.js";
import { until } from "./support/until.js";

/**
 * Issue #16, items 1-3: a sender is never told "done" for a delivery whose run then does not start,
 * a claim never outlives its lease, and one route's key never meets another's.
 */
const GW_TOKEN = "gw-token-0123456789";
const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const CI = "ci-token-0123456789";
const shared = useRedisAndGateway(GW_TOKEN);
const UNAVAILABLE = { code: "UNAVAILABLE", message: "model provider unavailable" };

const endpoints = {
  alert: { agentId: "ops", template: "Alert: {{body.title}}", auth: { scheme: "standard-webhooks", secret: WHSEC } },
} as const;

function signed(body: unknown, id: string) {
  const text = JSON.stringify(body);
  const at = new Date();
  return {
    text,
    headers: { "webhook-id": id, "webhook-timestamp": String(Math.floor(at.getTime() / 1000)), "webhook-signature": new Webhook(WHSEC).sign(id, at, text) },
  };
}

const agentCalls = (gw: { frames: { method: string; params?: any }[] }, key: string) =>
  gw.frames.filter((f) => f.method === "agent" && f.params?.idempotencyKey === key).length;

describe("inbound delivery ids while the first attempt is unfinished", () => {
  test("a slow first attempt that then fails: a retry meanwhile gets 409 with Retry-After, never success; the next retry starts the run", async () => {
    const svc = await startService({
      redis: { url: shared.redis.url, prefix: shared.redis.prefix() },
      gateway: { url: shared.gw.url, token: GW_TOKEN },
      idempotency: { leaseMs: 5_000, waitMs: 200 },
      webhooks: { inbound: { endpoints } },
    });
    try {
      const s = signed({ title: "disk full" }, "msg_slow_fail");
      const key = "inbound:alert:msg_slow_fail";
      const started = shared.gw.runsStarted();
      shared.gw.script("agent", { delayMs: 1_500, error: UNAVAILABLE });
      const first = post(`${svc.url}/webhooks/inbound/alert`, s.text, { headers: s.headers });
      await until(() => agentCalls(shared.gw, key) === 1);
      const meanwhile = await post(`${svc.url}/webhooks/inbound/alert`, s.text, { headers: s.headers });
      assert.equal(meanwhile.status, 409, meanwhile.text);
      assert.equal(meanwhile.json.code, "idempotency_in_progress");
      assert.ok(Number(meanwhile.headers.get("retry-after")) >= 1, "Retry-After tells the sender when to come back");
      const failed = await first;
      assert.equal(failed.status, 502, failed.text);
      assert.equal(shared.gw.runsStarted(), started, "nothing ran yet");
      const retry = await post(`${svc.url}/webhooks/inbound/alert`, s.text, { headers: s.headers });
      assert.equal(retry.status, 202, retry.text);
      assert.equal(retry.json.runId, key);
      assert.equal(retry.headers.get("idempotent-replayed"), null, "this retry ran; it did not replay");
      assert.equal(shared.gw.runsStarted(), started + 1, "the run started");
      assert.ok(shared.gw.startedRuns.has(key));
      const later = await post(`${svc.url}/webhooks/inbound/alert`, s.text, { headers: s.headers });
      assert.deepEqual([later.status, later.json.runId, later.json.duplicate, later.headers.get("idempotent-replayed")], [202, key, true, "true"]);
      assert.equal(shared.gw.runsStarted(), started + 1, "and only once");
    } finally {
      await svc.close();
    }
  });

  test("a first attempt that outlives its lease keeps it (renewed while it runs): a retry meanwhile is 409, and no second run starts", async () => {
    const svc = await startService({
      redis: { url: shared.redis.url, prefix: shared.redis.prefix() },
      gateway: { url: shared.gw.url, token: GW_TOKEN },
      idempotency: { leaseMs: 600, waitMs: 0 },
      webhooks: { inbound: { endpoints } },
    });
    try {
      const s = signed({ title: "slow model" }, "msg_long");
      const key = "inbound:alert:msg_long";
      const started = shared.gw.runsStarted();
      shared.gw.script("agent", { delayMs: 2_000 });
      const first = post(`${svc.url}/webhooks/inbound/alert`, s.text, { headers: s.headers });
      await until(() => agentCalls(shared.gw, key) === 1);
      await new Promise((r) => setTimeout(r, 1_500)); // well past the 600 ms lease
      const meanwhile = await post(`${svc.url}/webhooks/inbound/alert`, s.text, { headers: s.headers });
      assert.deepEqual([meanwhile.status, meanwhile.json.code], [409, "idempotency_in_progress"], meanwhile.text);
      assert.equal(agentCalls(shared.gw, key), 1, "the retry did not start the run a second time");
      const done = await first;
      assert.deepEqual([done.status, done.json.runId], [202, key]);
      assert.equal(shared.gw.runsStarted(), started + 1);
    } finally {
      await svc.close();
    }
  });

  test("Redis away between the claim and the answer (the release is lost): a retry runs once the lease ends, not a day later", async () => {
    // AOF, so the claim survives the restart as it would on a production Redis.
    const redis = await startRedis({ aof: true });
    const leaseMs = 4_000;
    const svc = await startService({
      redis: { url: redis.url, prefix: redis.prefix() },
      gateway: { url: shared.gw.url, token: GW_TOKEN },
      idempotency: { leaseMs, waitMs: 0 },
      webhooks: { inbound: { endpoints } },
    });
    try {
      const s = signed({ title: "cpu hot" }, "msg_redis_away");
      const key = "inbound:alert:msg_redis_away";
      shared.gw.script("agent", { delayMs: 800, error: UNAVAILABLE });
      const first = post(`${svc.url}/webhooks/inbound/alert`, s.text, { headers: s.headers });
      await until(() => agentCalls(shared.gw, key) === 1);
      const claimedAt = Date.now();
      await redis.stop();
      const failed = await first;
      assert.ok(failed.status >= 500, failed.text);
      await redis.start();
      await until(() =>
        svc.deps.redis!.ping().then(
          () => true,
          () => false,
        ),
      );
      const blocked = await post(`${svc.url}/webhooks/inbound/alert`, s.text, { headers: s.headers });
      assert.equal(blocked.status, 409, `the orphaned claim is still there (AOF) and still in progress: ${blocked.text}`);
      assert.notEqual(blocked.json.duplicate, true);
      const started = shared.gw.runsStarted();
      let retry = blocked;
      await until(async () => {
        retry = await post(`${svc.url}/webhooks/inbound/alert`, s.text, { headers: s.headers });
        return retry.status !== 409;
      }, leaseMs + 5_000);
      assert.equal(retry.status, 202, retry.text);
      assert.equal(retry.json.runId, key);
      assert.ok(Date.now() - claimedAt < leaseMs + 5_000, "within the lease (plus Redis's restart), not the 24 h window");
      assert.equal(shared.gw.runsStarted(), started + 1, "the run started");
    } finally {
      await svc.close();
      await redis.dispose();
    }
  });

  test("the service SIGKILLed after the Gateway admitted the run, before the answer was stored: the retry gets that run, no second one", async () => {
    const gw = await startFakeGateway({ token: GW_TOKEN });
    const leaseMs = 1_500;
    const config = {
      redis: { url: shared.redis.url, prefix: shared.redis.prefix() },
      gateway: { url: gw.url, token: GW_TOKEN },
      idempotency: { leaseMs, waitMs: 0 },
      webhooks: { inbound: { endpoints } },
    };
    let svc = await startServiceProcess(config);
    try {
      const s = signed({ title: "db down" }, "msg_sigkill");
      const key = "inbound:alert:msg_sigkill";
      // The Gateway admits the run at once and answers 10 s later: the crash falls in between.
      gw.script("agent", { answerDelayMs: 10_000 });
      const first = post(`${svc.url}/webhooks/inbound/alert`, s.text, { headers: s.headers }).catch((err: Error) => err);
      await until(() => gw.runsStarted() === 1);
      await svc.stop("SIGKILL");
      assert.ok((await first) instanceof Error, "the sender never got an answer");
      svc = await startServiceProcess(config);
      let retry: Awaited<ReturnType<typeof post>>;
      // The dead process's lease ends within leaseMs; until then, 409.
      await until(async () => {
        retry = await post(`${svc.url}/webhooks/inbound/alert`, s.text, { headers: s.headers });
        if (retry.status === 409) assert.equal(retry.json.code, "idempotency_in_progress");
        return retry.status !== 409;
      }, leaseMs + 10_000);
      assert.equal(retry!.status, 202, retry!.text);
      assert.equal(retry!.json.runId, key, "the run the Gateway admitted before the crash");
      assert.equal(agentCalls(gw, key), 2, "the retry did ask the Gateway, with the same idempotencyKey");
      assert.equal(gw.runsStarted(), 1, "no second run");
    } finally {
      await svc.stop("SIGKILL");
      await gw.stop();
    }
  });
});

describe("TaskFlow Idempotency-Key: the same key reaches the Gateway", () => {
  test("the service SIGKILLed after the Gateway created the flow, before the answer was stored: the retry gets that flow, no second one", async () => {
    const gw = await startFakeGateway({ token: GW_TOKEN });
    const leaseMs = 1_500;
    const config = {
      redis: { url: shared.redis.url, prefix: shared.redis.prefix() },
      gateway: { url: gw.url, token: GW_TOKEN },
      idempotency: { leaseMs, waitMs: 0 },
      plugins: {
        entries: {
          webhooks: { enabled: true, config: { routes: { orders: { path: "/hooks/orders", sessionKey: "agent:main:hook:orders", secret: SECRET_A } } } },
        },
      },
    };
    let svc = await startServiceProcess(config);
    const create = () =>
      post(`${svc.url}/hooks/orders`, { action: "create_flow", goal: "ship order 42" }, { secret: SECRET_A, headers: { "idempotency-key": "order-42" } });
    const flowsOf = async () => ((await gw.runtime.invoke("list_flows", { sessionKey: "agent:main:hook:orders" })) as { flows: { flowId: string }[] }).flows;
    const creates = () => gw.frames.filter((f) => f.method === "webhooksBridge.create_flow");
    try {
      // The Gateway creates the flow at once and answers 10 s later: the crash falls in between.
      gw.script("create_flow", { answerDelayMs: 10_000 });
      const first = create().catch((err: Error) => err);
      await until(async () => (await flowsOf()).length === 1);
      await svc.stop("SIGKILL");
      assert.ok((await first) instanceof Error, "the sender never got an answer");
      svc = await startServiceProcess(config);
      let retry: Awaited<ReturnType<typeof post>>;
      await until(async () => {
        retry = await create();
        if (retry.status === 409) assert.equal(retry.json.code, "idempotency_in_progress");
        return retry.status !== 409;
      }, leaseMs + 10_000);
      assert.equal(retry!.status, 200, retry!.text);
      const flows = await flowsOf();
      assert.equal(flows.length, 1, "no second flow");
      assert.equal(retry!.json.result.flow.flowId, flows[0]!.flowId, "the flow the Gateway created before the crash");
      assert.equal(creates().length, 2, "the retry did ask the Gateway");
      assert.equal(creates()[0]!.params.idempotencyKey, creates()[1]!.params.idempotencyKey, "with the same idempotencyKey");
      // Another key is another flow.
      const other = await post(
        `${svc.url}/hooks/orders`,
        { action: "create_flow", goal: "ship order 43" },
        { secret: SECRET_A, headers: { "idempotency-key": "order-43" } },
      );
      assert.equal(other.status, 200, other.text);
      assert.equal((await flowsOf()).length, 2);
    } finally {
      await svc.stop("SIGKILL");
      await gw.stop();
    }
  });
});

describe("keys that must not collide", () => {
  test("TaskFlow: route a with Idempotency-Key b:K and route a:b with K are two keys; neither gets the other's answer", async () => {
    const svc = await startService({
      redis: { url: shared.redis.url, prefix: shared.redis.prefix() },
      gateway: { url: shared.gw.url, token: GW_TOKEN },
      routes: {
        a: { path: "/hooks/a", sessionKey: "agent:main:hook:a", secret: SECRET_A },
        "a:b": { path: "/hooks/ab", sessionKey: "agent:main:hook:ab", secret: SECRET_A },
      },
    });
    try {
      const body = { action: "create_flow", goal: "same goal" };
      const onA = await post(`${svc.url}/hooks/a`, body, { secret: SECRET_A, headers: { "idempotency-key": "b:K" } });
      const onAB = await post(`${svc.url}/hooks/ab`, body, { secret: SECRET_A, headers: { "idempotency-key": "K" } });
      assert.deepEqual([onA.status, onA.json.routeId], [200, "a"]);
      assert.deepEqual([onAB.status, onAB.json.routeId], [200, "a:b"], onAB.text);
      assert.equal(onAB.headers.get("idempotent-replayed"), null, "route a:b ran its own request");
      assert.notEqual(onAB.json.result.flow.flowId, onA.json.result.flow.flowId);
      const again = await post(`${svc.url}/hooks/ab`, body, { secret: SECRET_A, headers: { "idempotency-key": "K" } });
      assert.deepEqual(
        [again.json.routeId, again.json.result.flow.flowId, again.headers.get("idempotent-replayed")],
        ["a:b", onAB.json.result.flow.flowId, "true"],
      );
    } finally {
      await svc.close();
    }
  });

  test("inbound: endpoint a with delivery id b:K, endpoint b with a:K, and ids that hash: each delivery starts its own run", async () => {
    const svc = await startService({
      redis: { url: shared.redis.url, prefix: shared.redis.prefix() },
      gateway: { url: shared.gw.url, token: GW_TOKEN },
      webhooks: {
        inbound: {
          endpoints: {
            a: { template: "a {{body.n}}", auth: { scheme: "token", secret: CI } },
            b: { template: "b {{body.n}}", auth: { scheme: "token", secret: CI } },
          },
        },
      },
    });
    try {
      const before = shared.gw.runsStarted();
      const send = (ep: string, id: string, n: number) => post(`${svc.url}/webhooks/inbound/${ep}`, { n }, { secret: CI, headers: { "webhook-id": id } });
      // Pairs that meet under a naive "endpoint:id" join, and ids that are hashed (space, unicode, long).
      const cases: [string, string][] = [
        ["a", "b:K"],
        ["b", "a:K"],
        ["a", "K"],
        ["b", "K"],
        ["a", "x y"],
        ["b", "x y"],
        ["a", "é:1"],
        ["a", "z".repeat(600)],
        ["b", "z".repeat(600)],
      ];
      const answers = [];
      for (const [i, [ep, id]] of cases.entries()) answers.push(await send(ep, id, i));
      assert.ok(
        answers.every((a) => a.status === 202 && a.headers.get("idempotent-replayed") === null),
        answers.map((a) => a.text).join("\n"),
      );
      assert.equal(new Set(answers.map((a) => a.json.runId)).size, cases.length, "one run each");
      assert.equal(shared.gw.runsStarted() - before, cases.length);
      const again = await send("a", "b:K", 0);
      assert.deepEqual([again.json.runId, again.headers.get("idempotent-replayed")], [answers[0]!.json.runId, "true"]);
    } finally {
      await svc.close();
    }
  });

  test("the key encoding is injective: two (use, scope, key) triples share a key only when they are equal", () => {
    assert.notEqual(idempotencyKey("taskflow", "a", "b:K"), idempotencyKey("taskflow", "a:b", "K"));
    const part = fc.string({ unit: fc.constantFrom("a", "b", ":", "1", "~", " ", "é"), maxLength: 8 });
    const triple = fc.tuple(fc.constantFrom("taskflow" as const, "inbound" as const), part, part);
    fc.assert(
      fc.property(triple, triple, (x, y) => (idempotencyKey(...x) === idempotencyKey(...y)) === (x[0] === y[0] && x[1] === y[1] && x[2] === y[2])),
      { numRuns: 5_000 },
    );
  });
});
