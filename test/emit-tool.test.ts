import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
// The bridge plugin's agent tool, plain JS loaded by the Gateway as it is.
// @ts-expect-error: plain ESM without type declarations
import { createEmitTool, eventFor, readEmitConfig, shared, takeRate, EmitRefused } from "../gateway-plugin/emit.js";
import { startReceiver } from "./support/receiver.js";
import { freePort, startRedis, type TestRedis } from "./support/redis.js";
import { startService, type TestService } from "./support/service.js";
import { until } from "./support/until.js";

/**
 * `webhooks_emit` against this service over a real socket (the Gateway side is in
 * test/openclaw/agent-tool.test.ts): the type rules, the bounds, and what the agent is told.
 */
const SECRET = `whsec_${randomBytes(24).toString("base64")}`;
const PUBLISH = "publish-token-0123456789abcdef";
const cfg = (over: Record<string, unknown> = {}) => readEmitConfig({ service: { url: "http://127.0.0.1:1", token: PUBLISH }, ...over });

describe("webhooks_emit: what an agent may fire", () => {
  test("a dotted type is delivered as it is; a bare name is custom.triggered with event_name", () => {
    assert.deepEqual(eventFor({ type: "lead.qualified", data: { score: 91 } }, cfg()), { type: "lead.qualified", eventName: undefined, data: { score: 91 } });
    assert.deepEqual(eventFor({ type: " cancellation_intent " }, cfg()), { type: "custom.triggered", eventName: "cancellation_intent", data: {} });
  });

  test("refused, with the reason the agent is told: reserved families, outside the allow-list, bad names, bad or large data", () => {
    const refused = (params: unknown, re: RegExp, c = cfg()) =>
      assert.throws(
        () => eventFor(params, c),
        (e: Error) => e instanceof EmitRefused && re.test(e.message),
      );
    refused({ type: "message.sent" }, /sends itself; an agent cannot fire it/);
    refused({ type: "flow.finished" }, /cannot fire it/);
    refused({ type: "message.sent" }, /cannot fire it/, cfg({ emit: { allow: ["*"] } }));
    refused({ type: "billing.refund" }, /not an event this agent may fire \(allowed: custom\.triggered, lead\.\*, intent\.\*, handoff\.\*\)/);
    refused({ type: "cancel me now" }, /type must be an event type such as lead\.qualified/);
    refused({ type: "" }, /type must be/);
    refused({ type: "lead.qualified", data: [1] }, /data must be an object/);
    refused({ type: "lead.qualified", data: { blob: "x".repeat(20_000) } }, /data is 20\d\d\d bytes; at most 16384/);
    refused("lead.qualified", /takes \{ type, data\? \}/);
    assert.equal(eventFor({ type: "billing.refund" }, cfg({ emit: { allow: ["billing.*"] } })).type, "billing.refund");
    refused({ type: "oops" }, /not an event this agent may fire/, cfg({ emit: { allow: ["lead.*"] } }));
  });

  test("the rate per session is a sliding window", () => {
    const state = { rate: new Map() };
    const per = { max: 2, windowMs: 1_000 };
    assert.equal(takeRate(state, "s", per, 0), true);
    assert.equal(takeRate(state, "s", per, 10), true);
    assert.equal(takeRate(state, "s", per, 20), false);
    assert.equal(takeRate(state, "other", per, 20), true, "per session");
    assert.equal(takeRate(state, "s", per, 1_001), true, "the first call left the window");
  });
});

describe("webhooks_emit against the service (real sockets, real Redis)", () => {
  let redis: TestRedis;
  let svc: TestService;
  let rx: Awaited<ReturnType<typeof startReceiver>>;
  before(async () => {
    redis = await startRedis();
    rx = await startReceiver({ secret: SECRET });
    svc = await startService({
      redis: { url: redis.url, prefix: redis.prefix() },
      webhooks: { publishToken: PUBLISH, allowPrivateCidrs: ["127.0.0.0/8"], endpoints: [{ name: "crm", url: rx.url, secret: SECRET, events: ["*"] }] },
    });
    await svc.deps.egress!.startWorker();
  });
  after(async () => {
    await svc.close();
    await rx.close();
    await redis.dispose();
  });
  const ctx = { agentId: "sales", sessionKey: "agent:sales:telegram:dm:42", sessionId: "s-1" };
  const tool = () => createEmitTool(ctx, readEmitConfig({ service: { url: svc.url, token: PUBLISH } }), async (t: string) => t);

  test("delivered once, signed, with the agent's context; the same tool call again is a duplicate, not a second event", async () => {
    shared().calls.set("call-7", { runId: "run-7", channel: "telegram" });
    const first = await tool().execute("call-7", { type: "lead.qualified", data: { score: 91, agentId: "forged" } });
    assert.equal(first.details.ok, true);
    assert.equal(first.details.duplicate, false);
    const again = await tool().execute("call-7", { type: "lead.qualified", data: { score: 91 } });
    assert.equal(again.details.duplicate, true);
    await until(() => rx.received.length >= 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(rx.received.length, 1);
    assert.equal(rx.received[0]!.verified, true);
    const e = JSON.parse(rx.received[0]!.body);
    assert.equal(e.type, "lead.qualified");
    assert.deepEqual(e.data, { score: 91, agentId: "sales", sessionKey: ctx.sessionKey, sessionId: "s-1", runId: "run-7", channel: "telegram" });
  });

  test("a wrong token, a service that is away, a refusal: a tool error that says which", async () => {
    const wrong = createEmitTool(ctx, readEmitConfig({ service: { url: svc.url, token: "nope" } }), async (t: string) => t);
    await assert.rejects(wrong.execute("c1", { type: "lead.qualified" }), /refused the plugin's token \(401\)/);
    const away = createEmitTool(
      ctx,
      readEmitConfig({ service: { url: `http://127.0.0.1:${await freePort()}`, token: PUBLISH, timeoutMs: 500 } }),
      async (t: string) => t,
    );
    await assert.rejects(away.execute("c2", { type: "lead.qualified" }), /cannot be reached \(ECONNREFUSED\); the event was not sent/);
    const unresolved = createEmitTool(
      ctx,
      readEmitConfig({ service: { url: svc.url, token: { source: "env", id: "NOT_SET_ANYWHERE" } } }),
      async () => undefined,
    );
    await assert.rejects(unresolved.execute("c3", { type: "lead.qualified" }), /service token does not resolve/);
    const none = createEmitTool(ctx, readEmitConfig({}), async (t: string) => t);
    await assert.rejects(none.execute("c4", { type: "lead.qualified" }), /no service configured/);
  });

  test("over the rate: refused until the window moves", async () => {
    const rateCtx = { ...ctx, sessionKey: "agent:sales:rate" };
    const t = createEmitTool(
      rateCtx,
      readEmitConfig({ service: { url: svc.url, token: PUBLISH }, emit: { perSession: { max: 2, windowMs: 60_000 } } }),
      async (x: string) => x,
    );
    await t.execute("r1", { type: "intent.detected" });
    await t.execute("r2", { type: "intent.detected" });
    await assert.rejects(t.execute("r3", { type: "intent.detected" }), /rate limit: at most 2 events per 60 s in this session/);
  });
});
