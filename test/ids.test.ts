import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { randomUUID } from "node:crypto";
import { mapGatewayEvent } from "../src/egress/gateway-events.js";
import { startFakeGateway } from "./support/fake-gateway.js";
import { loadFixture, type RecordedFrame } from "./support/gateway-fixtures.js";
import { startReceiver } from "./support/receiver.js";
import { startRedis, type TestRedis } from "./support/redis.js";
import { post, startService } from "./support/service.js";
import { until } from "./support/until.js";

/**
 * Any id, at every entry point that takes one: POST /v1/events (accepted and delivered, or 400 with
 * a reason, never 503), the Gateway's path (relay.emit and egress.publish with source "gateway":
 * never refused, always delivered), inbound delivery ids (deduplicated, the run's callback
 * delivered), and the Gateway's own frames (below). After each, a plain event must get through:
 * nothing poisons what follows.
 */

const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PUBLISH = "publish-token-0123456789";
const ADMIN = "admin-token-0123456789";
const CI = "ci-token-0123456789";
const GW_TOKEN = "gw-token-0123456789";
const RUNS = 40;

let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(() => redis.dispose());

/** Characters that break naive ids: separators, `_`, unicode, controls, lone surrogates. */
const char = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom("a", "Z", "0", "-", ".", "_", ":", "/", " ", "~", "%", "#", "*", "é", "中", "😀", "\u200b") },
  { weight: 2, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.constantFrom("\u0000", "\t", "\n", "\r", "\u001b", "\u007f", "\u0085", "\u009f") },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)) },
);
const anyId = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: char, maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: char, minLength: 250, maxLength: 330 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "",
      "   ",
      "manual:job-1:1700000000000:1",
      "tool_search_code:call_6:mytool:1",
      "a_b",
      "a",
      "x".repeat(256),
      "x".repeat(257),
      "😀".repeat(256),
      "lead 7 / ünïcødé",
      "..",
    ),
  },
);

/** Two endpoints whose names make `dlv_<event>_<endpoint>` ambiguous: event a_b to z, event a to b_z. */
const endpoints = (url: string) => [
  { name: "z", url, secret: WHSEC, events: ["*"], headers: { "x-endpoint": "z" } },
  { name: "b_z", url, secret: WHSEC, events: ["*"], headers: { "x-endpoint": "b_z" } },
];

async function setup(extra: Record<string, unknown> = {}) {
  const rx = await startReceiver({ secret: WHSEC });
  const svc = await startService({
    redis: { url: redis.url, prefix: redis.prefix() },
    admin: { token: ADMIN },
    limits: { rateLimit: { windowMs: 60_000, maxRequests: 100_000 }, maxInFlight: 100 },
    webhooks: { publishToken: PUBLISH, allowPrivateCidrs: ["127.0.0.0/8"], endpoints: endpoints(rx.url), ...extra },
  });
  await svc.deps.egress!.startWorker();
  const envelopes = new Map<number, { id: string; type: string; data: any }>();
  const bodies = () =>
    rx.received.map((r, i) => {
      let e = envelopes.get(i);
      if (!e) envelopes.set(i, (e = JSON.parse(r.body)));
      return { r, e: e! };
    });
  /** Waits until the event reached both endpoints, verified, under two distinct safe webhook-ids the log knows. */
  async function delivered(match: (e: { id: string; type: string; data: any }) => boolean) {
    const got = () => bodies().filter((x) => match(x.e));
    await until(() => new Set(got().map((x) => x.r.headers["x-endpoint"])).size === 2, 10_000);
    const ids = new Map<string, string>();
    for (const { r, e } of got()) {
      assert.equal(r.verified, true, r.verifyError);
      const webhookId = String(r.headers["webhook-id"]);
      assert.match(webhookId, /^dlvh?_[A-Za-z0-9._-]+$/);
      assert.ok(webhookId.endsWith(`_${r.headers["x-endpoint"]}`));
      ids.set(String(r.headers["x-endpoint"]), webhookId);
      const rec = await fetch(`${svc.url}/admin/api/deliveries/${encodeURIComponent(webhookId)}`, { headers: { authorization: `Bearer ${ADMIN}` } });
      assert.equal(rec.status, 200);
      assert.equal(((await rec.json()) as any).result.delivery.eventId, e.id);
    }
    assert.notEqual(ids.get("z"), ids.get("b_z"));
    return got().map((x) => x.e);
  }
  const close = async () => {
    await svc.close();
    await rx.close();
  };
  return { rx, svc, delivered, close };
}

/** The reasons POST /v1/events may give for an id (an oracle written apart from ids.ts). */
function problemsOf(raw: string): RegExp[] {
  const id = raw.trim();
  const out: RegExp[] = [];
  if (id === "") out.push(/^id: must not be empty$/);
  if ([...id].length > 256) out.push(/^id: must be at most 256 characters$/);
  if (/[\u0000-\u001f\u007f-\u009f]/.test(id)) out.push(/^id: must not contain control characters \(U\+[0-9A-F]{4}\)$/);
  if (/\p{Cs}/u.test(id)) out.push(/^id: must be well-formed Unicode/);
  return out;
}

describe("any id is safe", () => {
  test("POST /v1/events: an accepted id is delivered, signed, to both endpoints; a refused one is 400 with its reason; the next event always goes", async () => {
    const t = await setup();
    let n = 0;
    let refused = 0;
    try {
      await fc.assert(
        fc.asyncProperty(anyId, async (raw) => {
          n++;
          const r = await post(`${t.svc.url}/v1/events`, { type: "lead.qualified", data: { n }, id: raw }, { secret: PUBLISH });
          const problems = problemsOf(raw);
          if (problems.length) {
            refused++;
            assert.equal(r.status, 400, r.text);
            assert.equal(r.json.code, "invalid_request");
            assert.ok(
              problems.some((p) => p.test(r.json.error)),
              `${JSON.stringify(raw)}: ${r.json.error}`,
            );
          } else {
            assert.equal(r.status, 202, r.text);
            assert.equal(r.json.id, raw.trim());
            assert.equal(r.json.parked, undefined);
            await t.delivered((e) => e.id === raw.trim());
          }
          const next = await post(`${t.svc.url}/v1/events`, { type: "lead.qualified", data: {}, id: `next-${n}` }, { secret: PUBLISH });
          assert.equal(next.status, 202, next.text);
          await t.delivered((e) => e.id === `next-${n}`);
        }),
        { numRuns: RUNS },
      );
      assert.ok(refused > 0 && refused < n, `both outcomes were tried (${refused} of ${n} refused)`);
      assert.equal((await t.svc.deps.egress!.parked.list()).total, 0, "nothing parked");
    } finally {
      await t.close();
    }
  });

  test("the Gateway's path (relay.emit and egress.publish, source gateway): every id is delivered as it is; the next event always goes", async () => {
    const t = await setup();
    const egress = t.svc.deps.egress!;
    const seen = new Set<string>();
    let n = 0;
    try {
      await fc.assert(
        fc.asyncProperty(anyId, fc.boolean(), async (id, viaRelay) => {
          n++;
          const event = { type: "tool.called", data: { n }, id: `${id}${viaRelay ? "" : "\u0000p"}`, source: "gateway" as const };
          const repeat = seen.has(event.id);
          seen.add(event.id);
          if (viaRelay) t.svc.deps.events!.emit(event);
          else {
            const out = await egress.publish(event);
            assert.equal(out.parked, undefined);
            assert.deepEqual([out.duplicate, out.deliveries.length], repeat ? [true, 0] : [false, 2]);
          }
          const [got] = await t.delivered((e) => e.id === event.id);
          if (!repeat) assert.deepEqual(got!.data, { n });
          t.svc.deps.events!.emit({ type: "tool.called", data: {}, id: `gw_next_${n}`, source: "gateway" });
          await t.delivered((e) => e.id === `gw_next_${n}`);
        }),
        { numRuns: RUNS },
      );
      assert.equal((await egress.parked.list()).total, 0, "nothing parked");
      assert.equal(t.svc.deps.events!.pending, 0, "nothing left in the relay's buffer");
    } finally {
      await t.close();
    }
  });

  test("inbound delivery ids (body path and header): deduplicated in Redis, the run's callback delivered; the next delivery always goes", async () => {
    const t = await setup({
      inbound: {
        endpoints: {
          body: { agentId: "ops", template: "{{body.note}}", auth: { scheme: "token", secret: CI }, idempotency: { bodyPath: "deliveryId" } },
          header: { agentId: "ops", template: "{{body.note}}", auth: { scheme: "token", secret: CI }, idempotency: { header: "x-delivery-id" } },
        },
      },
    });
    // Header values: what fetch can send (visible ASCII, spaces and tabs inside; it trims the ends).
    const headerId = fc
      .string({ unit: fc.constantFrom("a", "Z", "0", ":", "_", "-", "/", " ", "\t", "~", "=", "+", ",", ";", '"'), minLength: 1, maxLength: 300 })
      .filter((s) => s.trim() !== "");
    let n = 0;
    const seen = new Set<string>();
    const completed = (runId: string) => t.delivered((e) => e.type === "inbound.completed" && e.data.runId === runId);
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            anyId.map((id) => ({ via: "body" as const, id })),
            headerId.map((id) => ({ via: "header" as const, id })),
          ),
          async ({ via, id }) => {
            n++;
            const send = (deliveryId: string, v = via) =>
              post(
                `${t.svc.url}/webhooks/inbound/${v}`,
                { note: `n${n}`, ...(v === "body" ? { deliveryId } : {}) },
                { secret: CI, headers: v === "header" ? { "x-delivery-id": deliveryId } : {} },
              );
            const key = `${via}:${via === "header" ? id.trim() : id}`;
            const dedupes = !(via === "body" && id === "");
            const repeat = dedupes && seen.has(key);
            seen.add(key);
            const first = await send(id);
            assert.equal(first.status, 202, first.text);
            assert.equal(first.headers.get("idempotent-replayed"), repeat ? "true" : null);
            const again = await send(id);
            assert.equal(again.status, 202, again.text);
            if (!dedupes) assert.equal(again.json.duplicate, undefined, "no delivery id: nothing to dedupe on");
            else assert.deepEqual([again.json.duplicate, again.json.runId, again.headers.get("idempotent-replayed")], [true, first.json.runId, "true"]);
            await completed(first.json.runId);
            const next = await send(`next-${n}`, "body");
            assert.equal(next.status, 202, next.text);
            await completed(next.json.runId);
          },
        ),
        { numRuns: 30 },
      );
      assert.equal((await t.svc.deps.egress!.parked.list()).total, 0, "nothing parked");
    } finally {
      await t.close();
    }
  });
});

describe("any id from the Gateway's own frames", () => {
  /**
   * Recorded frames with an arbitrary id put where the Gateway puts its ids: a transcript row's
   * messageId, a tool call id, a cron run id, a task id. Each frame is broadcast by the fake
   * Gateway to the service's subscribed connection; whatever maps to an event is delivered (the
   * Gateway's ids are never refused), and a plain message after it always gets through.
   */
  test("message, tool, cron and task ids: every mapped event is delivered, nothing parked, the next frame always goes", async () => {
    const gw = await startFakeGateway({ token: GW_TOKEN });
    const rx = await startReceiver({ secret: WHSEC });
    const svc = await startService({
      redis: { url: redis.url, prefix: redis.prefix() },
      gateway: { url: gw.url, token: GW_TOKEN },
      webhooks: { allowPrivateCidrs: ["127.0.0.0/8"], endpoints: [{ name: "all", url: rx.url, secret: WHSEC, events: ["*"] }] },
    });
    await svc.deps.egress!.startWorker();
    const frame = (name: string, pred: (f: RecordedFrame) => boolean) => structuredClone(loadFixture(name).frames.find(pred)!);
    const user = frame("agent-text", (f) => f.event === "session.message" && f.payload.message.role === "user");
    const toolStart = frame("agent-tool", (f) => f.event === "session.tool" && f.payload.data.phase === "start");
    const cronDone = frame("cron-command", (f) => f.event === "cron" && f.payload.action === "finished" && typeof f.payload.runId === "string");
    const taskUp = frame("agent-text", (f) => f.event === "task");
    const kinds = {
      message: (id: string) => ({ ...user, payload: { ...user.payload, messageId: id } }),
      tool: (id: string) => ({ ...toolStart, payload: { ...toolStart.payload, data: { ...toolStart.payload.data, toolCallId: id } } }),
      cron: (id: string) => ({ ...cronDone, payload: { ...cronDone.payload, runId: id } }),
      task: (id: string) => ({ ...taskUp, payload: { ...taskUp.payload, task: { ...taskUp.payload.task, taskId: id, id } } }),
    };
    const ids = () => new Set(rx.received.map((r) => (JSON.parse(r.body) as { id: string }).id));
    try {
      await until(() => gw.subscribed() === 1);
      let n = 0;
      await fc.assert(
        fc.asyncProperty(anyId, fc.constantFrom(...(Object.keys(kinds) as (keyof typeof kinds)[])), async (id, kind) => {
          n++;
          const f = kinds[kind](id);
          const expected = mapGatewayEvent(f.event, f.payload);
          gw.broadcast(f.event, f.payload);
          const marker = `next-${n}-${randomUUID()}`;
          gw.broadcast("session.message", { ...user.payload, messageId: marker });
          await until(() => ids().has(`gw_in_${marker}`), 10_000);
          for (const e of expected) await until(() => ids().has(e.id), 10_000);
        }),
        { numRuns: RUNS },
      );
      assert.ok(
        rx.received.every((r) => r.verified),
        "every delivery verifies with standardwebhooks",
      );
      assert.equal((await svc.deps.egress!.parked.list()).total, 0, "nothing parked");
    } finally {
      await svc.close();
      await rx.close();
      await gw.stop();
    }
  });
});
