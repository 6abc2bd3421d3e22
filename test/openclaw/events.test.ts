import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { GatewayClient } from "../../src/gateway/client.js";
import { catalogueValidator } from "../support/catalogue.js";
import { startReceiver } from "../support/receiver.js";
import { startRedis, type TestRedis } from "../support/redis.js";
import { startService, type TestService } from "../support/service.js";
import { startStubModel, type StubModel } from "../support/stub-model.js";
import { deliveriesTo, operatorClient, startRealGateway, type Envelope, type RealGateway } from "./real-gateway.js";
import { GATEWAY_EVENT_TYPES } from "../support/event-types.js";

/**
 * Outgoing webhooks from real agent turns on the real OpenClaw 2026.9.6 Gateway (issue #14): a
 * loopback stub model answers the turns, two service replicas share one Redis and one endpoint
 * subscribed to `*`, and a receiver verifies every delivery with `standardwebhooks`. Each type is
 * checked once per occurrence, with its fields, from a real run.
 */
const SECRET = `whsec_${randomBytes(24).toString("base64")}`;

let model: StubModel;
let gw: RealGateway;
let redis: TestRedis;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let replicas: TestService[] = [];
let caller: GatewayClient;
/** Every frame the service's first replica saw, with when it came (for the retry check). */
const seen: { at: number; event: string; payload: any }[] = [];
/** The HTTP 500 turn runs in the background from the start: the Gateway retries it for ~85 s. */
let failing: { sessionKey: string; runId: string; startedAt: number } | undefined;

before(async () => {
  model = await startStubModel();
  gw = await startRealGateway({ model: model.baseUrl });
  redis = await startRedis();
  rx = await startReceiver({ secret: SECRET });
  const prefix = redis.prefix();
  const cfg = {
    redis: { url: redis.url, prefix },
    gateway: { url: gw.url, token: gw.token, callTimeoutMs: 10_000 },
    webhooks: { allowPrivateCidrs: ["127.0.0.0/8"], endpoints: [{ name: "all", url: rx.url, secret: SECRET, events: ["*"] }] },
  };
  replicas = [await startService(cfg), await startService(cfg)];
  await Promise.all(replicas.map((r) => r.deps.egress!.startWorker()));
  replicas[0]!.deps.gateway!.onEvent((e) => seen.push({ at: Date.now(), event: e.event, payload: e.payload }));
  caller = operatorClient(gw);
  await caller.start();
  const sessionKey = "agent:main:events-500";
  const res = await caller.call<{ runId: string }>("agent", { message: "The provider is down [stub:status 500]", sessionKey, idempotencyKey: randomUUID() });
  failing = { sessionKey, runId: res.runId, startedAt: Date.now() };
});

after(async () => {
  await caller?.close();
  for (const r of replicas) await r.close();
  await rx?.close();
  await redis?.dispose();
  await gw?.dispose();
  await model?.close();
});

const envelopes = () => deliveriesTo(rx).envelopes();
const deliveries = (pred: (e: Envelope) => boolean, n?: number, ms?: number) => deliveriesTo(rx).deliveries(pred, n, ms);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const one = async (type: string, pred: (e: Envelope) => boolean) => {
  const got = await deliveries((e) => e.type === type && pred(e));
  assert.equal(got.length, 1, `one ${type}, not ${got.length}`);
  return got[0]!;
};
const inSession = (key: string) => (e: Envelope) => e.data?.sessionKey === key;

/** Starts an agent turn with the `agent` method (answered once the run is accepted). */
async function agentTurn(sessionKey: string, message: string) {
  const res = await caller.call<{ runId: string }>("agent", { message, sessionKey, idempotencyKey: randomUUID() });
  return res.runId;
}

describe("outgoing webhooks from real agent turns (stub model) on the real Gateway", () => {
  test("an agent turn: message.received and message.sent with model, provider, usage and message id; session.created; task.updated per status", async () => {
    const key = "agent:main:events-text";
    const runId = await agentTurn(key, "What is the deploy status?");
    const received = await one("message.received", inSession(key));
    assert.equal(received.data.agentId, "main");
    assert.equal(received.data.message.role, "user");
    assert.equal(received.data.message.content, "What is the deploy status?");
    assert.match(received.data.message.messageId, /^[0-9a-f-]{36}$/);
    assert.equal(typeof received.data.sessionId, "string");
    const sent = await one("message.sent", inSession(key));
    assert.equal(sent.data.message.content, "Echo: What is the deploy status?");
    assert.equal(sent.data.runId, runId);
    assert.equal(sent.data.model, "stub-1");
    assert.equal(sent.data.provider, "stub");
    assert.ok(sent.data.usage.inputTokens > 0 && sent.data.usage.outputTokens > 0, JSON.stringify(sent.data.usage));
    assert.notEqual(sent.data.message.messageId, received.data.message.messageId);
    assert.equal(sent.data.sessionId, received.data.sessionId);
    const created = await one("session.created", inSession(key));
    assert.equal(created.data.sessionId, received.data.sessionId);
    const tasks = await deliveries((e) => e.type === "task.updated" && e.data.runId === runId, 2);
    assert.deepEqual(tasks.map((e) => e.data.status).sort(), ["completed", "running"]);
    assert.equal(
      rx.received.every((r) => r.verified),
      true,
      "every delivery verifies with standardwebhooks",
    );
  });

  test("chat.send: message.received and message.sent for that session", async () => {
    const key = "agent:main:events-chat";
    const res = await caller.call<{ runId: string }>("chat.send", { sessionKey: key, message: "Hello over chat.send", idempotencyKey: randomUUID() });
    const received = await one("message.received", inSession(key));
    assert.equal(received.data.message.content, "Hello over chat.send");
    const sent = await one("message.sent", inSession(key));
    assert.equal(sent.data.runId, res.runId);
    assert.equal(sent.data.model, "stub-1");
    await one("session.created", inSession(key));
  });

  test("a tool call: tool.called with name, call id and args; tool.completed with the error flag and duration; one message.sent for the reply", async () => {
    const key = "agent:main:events-tool";
    const runId = await agentTurn(key, 'List the files [stub:tool ls {"path":"."}]');
    const called = await one("tool.called", inSession(key));
    assert.equal(called.data.toolName, "ls");
    assert.equal(called.data.runId, runId);
    assert.deepEqual(called.data.args, { path: "." });
    assert.equal(typeof called.data.toolCallId, "string");
    const completed = await one("tool.completed", inSession(key));
    assert.equal(completed.data.toolCallId, called.data.toolCallId);
    assert.equal(completed.data.isError, false);
    assert.ok(completed.data.durationMs >= 0 && completed.data.durationMs < 30_000, String(completed.data.durationMs));
    assert.match(completed.data.result, /AGENTS\.md/);
    const sent = await one("message.sent", inSession(key));
    assert.equal(sent.data.message.content, "The tool ran.");
  });

  test("sessions.create, sessions.send, sessions.reset, sessions.delete: session.created, then session.ended for the reset and the delete", async () => {
    const key = "agent:main:events-sessions";
    const created = await caller.call<{ sessionId: string }>("sessions.create", { key });
    const c = await one("session.created", inSession(key));
    assert.equal(c.data.sessionId, created.sessionId);
    assert.equal(c.data.createdVia, "operator");
    await caller.call("sessions.send", { key, message: "First message", idempotencyKey: randomUUID() });
    await one("message.sent", inSession(key));
    await caller.call("sessions.reset", { key, reason: "reset" });
    const reset = await one("session.ended", (e) => inSession(key)(e) && e.data.reason === "reset");
    assert.equal(reset.data.agentId, "main");
    await caller.call("sessions.delete", { key, deleteTranscript: true });
    await one("session.ended", (e) => inSession(key)(e) && e.data.reason === "delete");
  });

  test("a model that answers 400: one error.occurred with message, provider and model, and no message.sent", async () => {
    const key = "agent:main:events-400";
    const runId = await agentTurn(key, "Fail please [stub:status 400]");
    const err = await one("error.occurred", inSession(key));
    assert.equal(err!.data.runId, runId);
    assert.equal(err!.data.error.provider, "stub");
    assert.equal(err!.data.error.model, "stub-1");
    assert.match(err.data.error.message, /LLM request failed/);
    assert.deepEqual(
      envelopes().filter((e) => e.type === "message.sent" && inSession(key)(e)),
      [],
    );
  });

  test("cron command jobs: a scheduled run and a manual cron.run (its id holds ':') both give cron.finished, and a normal run after them is delivered", async () => {
    const own = await startReceiver(); // the Gateway's own unsigned POST to delivery.to
    const job = await caller.call<{ id: string }>("cron.add", {
      name: "events-cron",
      schedule: { kind: "every", everyMs: 2_000 },
      sessionTarget: "isolated",
      wakeMode: "now",
      payload: { kind: "command", argv: ["/bin/echo", "nightly report ready"] },
      delivery: { mode: "webhook", to: `${own.url}/cron` },
    });
    try {
      const ofJob = (e: Envelope) => e.type === "cron.finished" && e.data.jobId === job.id;
      const [scheduled] = await deliveries((e) => ofJob(e) && e.data.runId === undefined);
      assert.equal(scheduled!.data.status, "ok");
      assert.equal(scheduled!.data.summary, "nightly report ready");
      assert.equal(scheduled!.data.job.name, "events-cron");
      const manual = await caller.call<{ runId: string }>("cron.run", { id: job.id, mode: "force" });
      assert.match(manual.runId, /^manual:/);
      const m = await one("cron.finished", (e) => ofJob(e) && e.data.runId === manual.runId);
      assert.equal(m.data.status, "ok");
      assert.equal(m.data.deliveryStatus, "delivered");
      // The queue is not stuck behind the manual run's id: the next scheduled run arrives too.
      const before = envelopes().filter((e) => ofJob(e) && e.data.runId === undefined).length;
      await deliveries((e) => ofJob(e) && e.data.runId === undefined, before + 1);
      // And an agent turn after it.
      const key = "agent:main:events-after-cron";
      await agentTurn(key, "Still there?");
      await one("message.sent", inSession(key));
      // Our cron.finished carries the body the Gateway itself POSTed to delivery.to (seed 004).
      for (let i = 0; i < 150 && !own.received.some((r) => JSON.parse(r.body).runAtMs === m.data.runAtMs); i++) await sleep(100);
      const ownManual = own.received.map((r) => JSON.parse(r.body)).find((b) => b.runAtMs === m.data.runAtMs);
      assert.ok(ownManual, "the Gateway's own POST for the manual run");
      for (const k of ["jobId", "action", "status", "summary", "diagnostics", "runAtMs", "delivered", "deliveryStatus", "delivery"])
        assert.deepEqual(m.data[k], ownManual[k], k);
    } finally {
      await caller.call("cron.remove", { id: job.id }).catch(() => {});
      await own.close();
    }
  });

  test("a model that answers 500: nothing while the Gateway retries, then exactly one error.occurred", async () => {
    const f = failing!;
    // The Gateway retries for ~85 s from the turn's start (started in `before`).
    const [err] = await deliveries((x) => x.type === "error.occurred" && inSession(f.sessionKey)(x), 1, 150_000);
    assert.equal(err!.data.runId, f.runId);
    assert.equal(err!.data.error.provider, "stub");
    assert.equal(err!.data.error.reason, "server_error");
    const retries = seen.filter(
      (s) => s.event === "agent" && s.payload.runId === f.runId && s.payload.stream === "run_status" && s.payload.data?.phase === "retrying",
    );
    assert.ok(retries.length >= 5, `${retries.length} retry frames`);
    const delivered = rx.received.find((r) => JSON.parse(r.body).id === err!.id)!;
    assert.ok(delivered.at > retries.at(-1)!.at, "delivered only after the Gateway's last retry");
    await sleep(500);
    assert.equal(envelopes().filter((e) => e.type === "error.occurred" && inSession(f.sessionKey)(e)).length, 1);
  });

  test("every payload these real runs delivered meets the event catalogue the service serves at /openapi.json", async () => {
    const doc = await (await fetch(`${replicas[0]!.url}/openapi.json`)).json();
    const v = catalogueValidator(doc as never);
    const types = new Set<string>();
    for (const r of rx.received) {
      const e = JSON.parse(r.body);
      assert.deepEqual(v.problems(e), [], r.body.slice(0, 500));
      types.add(e.type);
    }
    for (const t of GATEWAY_EVENT_TYPES) assert.ok(types.has(t), `${t} was delivered and checked`);
    console.log(`# catalogue: ${rx.received.length} deliveries from real runs, ${types.size} types, all valid`);
  });
});
