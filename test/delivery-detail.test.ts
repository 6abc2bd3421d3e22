import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { after, before, describe, test } from "node:test";
import { ERROR_CLASSES } from "../src/egress/attempt-detail.js";
import { startReceiver } from "./support/receiver.js";
import { freePort, startRedis, type TestRedis } from "./support/redis.js";
import { post, startService, type TestService } from "./support/service.js";
import { until } from "./support/until.js";

// Issue #20 part 4, the API under the dashboard: what each attempt records (error class from a
// closed set, request headers with credentials masked, the receiver's status, headers and first
// KB), find by delivery or event id, list filters, the last hour per endpoint, the bulk replay's
// dry run, and inbound runs. Every attempt goes over a real socket (or fails to).

const ADMIN = "admin-token-0123456789";
const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const INBOUND_TOKEN = "ci-token-0123456789";
const ENV_SECRET = "from-env-value-7f3a9c";
process.env.DELIVERY_DETAIL_TEST_SECRET = ENV_SECRET;

let redis: TestRedis;
let prefix: string;
let svc: TestService;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let flaky: Awaited<ReturnType<typeof startReceiver>>;
let silent: Server;

const admin = async (path: string, init: RequestInit = {}) => {
  const res = await fetch(`${svc.url}/admin/api${path}`, {
    ...init,
    headers: { authorization: `Bearer ${ADMIN}`, ...(init.body ? { "content-type": "application/json" } : {}), ...init.headers },
  });
  return { status: res.status, json: (await res.json()) as any };
};

before(async () => {
  redis = await startRedis();
  prefix = redis.prefix();
  rx = await startReceiver({ secret: WHSEC });
  rx.setFallback({ status: 500, headers: { "x-receiver-trace": "trace-42", "set-cookie": "session=abcdef; HttpOnly" }, body: "boom: database is down" });
  flaky = await startReceiver({ secret: WHSEC });
  flaky.setFallback({ status: 503, body: "not now" });
  silent = createServer(() => {}); // accepts connections and never answers
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  const silentPort = (silent.address() as { port: number }).port;
  const once = { retry: { schedule: [] }, events: ["probe"], secret: WHSEC };
  svc = await startService({
    redis: { url: redis.url, prefix },
    admin: { token: ADMIN },
    webhooks: {
      allowPrivateCidrs: ["127.0.0.0/8"],
      circuitBreaker: { failureThreshold: 1_000, cooldownMs: 30_000, maxCooldownMs: 60_000 },
      endpoints: [
        {
          name: "http500",
          url: `${rx.url}/hook`,
          ...once,
          headers: {
            Authorization: "Bearer sk_live_supersecret",
            "x-api-token": "tok-123456",
            "x-from-env": "${DELIVERY_DETAIL_TEST_SECRET}",
            "x-plain": "visible",
          },
        },
        { name: "refused", url: `http://127.0.0.1:${await freePort()}/`, ...once },
        { name: "hang", url: `http://127.0.0.1:${silentPort}/`, ...once, timeoutMs: 300 },
        // glibc builds no query for a label over 63 bytes: a DNS failure that asks no server.
        { name: "dns", url: `http://${"a".repeat(64)}.invalid/`, ...once },
        { name: "ssrf", url: "http://10.1.2.3:9/", ...once },
        { name: "tls", url: `https://127.0.0.1:${rx.port}/`, ...once },
        { name: "flaky", url: flaky.url, secret: WHSEC, events: ["batch.*"], retry: { schedule: [] } },
      ],
      inbound: { endpoints: { deploy: { agentId: "devops-agent", template: "deploy {{body.repo}}", auth: { scheme: "token", secret: INBOUND_TOKEN } } } },
    },
  } as never);
  await svc.deps.egress!.startWorker();
});
after(async () => {
  await svc?.close();
  await rx?.close();
  await flaky?.close();
  silent?.close();
  await redis?.dispose();
});

describe("a failing event's attempts", () => {
  let eventId: string;
  const byEndpoint: Record<string, any> = {};
  before(async () => {
    const out = await svc.deps.egress!.publish({ type: "probe", data: { n: 1 } });
    eventId = out.id;
    assert.equal(out.deliveries.length, 6);
    await until(async () => {
      const found = await admin(`/find?id=${encodeURIComponent(eventId)}`);
      return found.json.result?.deliveries?.every((d: any) => d.status === "failed") ?? false;
    }, 20_000);
    for (const id of out.deliveries) {
      const d = (await admin(`/deliveries/${id}`)).json.result.delivery;
      byEndpoint[d.endpoint] = d;
    }
  });

  test("each failure has its class from the closed set", () => {
    const classes = Object.fromEntries(Object.entries(byEndpoint).map(([e, d]) => [e, [d.attemptLog[0].errorClass, d.attemptLog[0].status ?? null]]));
    assert.deepEqual(classes, {
      http500: ["http_status", 500],
      refused: ["connect", null],
      hang: ["timeout", null],
      dns: ["dns", null],
      ssrf: ["ssrf_blocked", null],
      tls: ["tls", null],
    });
    for (const d of Object.values(byEndpoint)) assert.ok((ERROR_CLASSES as readonly string[]).includes(d.attemptLog[0].errorClass));
    // The list rows carry the last attempt's class and duration (from the record's own fields).
    assert.ok(byEndpoint.hang.attemptLog[0].durationMs >= 250, `timeout took ${byEndpoint.hang.attemptLog[0].durationMs} ms`);
  });

  test("the receiver's answer is kept: status, headers (a cookie masked), the body", () => {
    const a = byEndpoint.http500.attemptLog[0];
    assert.equal(a.responseBody, "boom: database is down");
    assert.equal(a.responseHeaders["x-receiver-trace"], "trace-42");
    assert.equal(a.responseHeaders["set-cookie"], "…(masked)");
    assert.match(a.responseHeaders["date"], /GMT$/);
    assert.equal(byEndpoint.refused.attemptLog[0].responseHeaders, undefined, "no answer, no headers");
  });

  test("request headers are stored with every credential masked, and nothing of the secrets reaches Redis", async () => {
    const d = byEndpoint.http500;
    const h = d.attemptLog[0].requestHeaders;
    assert.equal(h["webhook-id"], d.id);
    assert.match(h["webhook-timestamp"], /^\d{10}$/);
    assert.equal(h["webhook-signature"], "v1,…(masked)");
    assert.equal(h["x-openclaw-signature"], "sha256=…(masked)");
    assert.equal(h["Authorization"], "Bearer …(masked)");
    assert.equal(h["x-api-token"], "…(masked)");
    assert.equal(h["x-from-env"], "…(masked)", "a value read from the environment is masked whatever its name");
    assert.equal(h["x-plain"], "visible");
    assert.equal(h["content-type"], "application/json");
    // What the receiver really got, and what Redis holds: none of the secrets or signatures.
    const got = rx.received.find((r) => r.headers["webhook-id"] === d.id)!;
    assert.equal(got.headers.authorization, "Bearer sk_live_supersecret");
    assert.equal(got.headers["x-from-env"], ENV_SECRET);
    const stored = await svc.deps.redis!.hget(svc.deps.egress!.log.keys.record(d.id), "a1");
    for (const secret of [
      "sk_live_supersecret",
      "tok-123456",
      ENV_SECRET,
      String(got.headers["webhook-signature"]).slice(3),
      String(got.headers["x-openclaw-signature"]).slice(7),
    ]) {
      assert.ok(!stored!.includes(secret), `stored attempt holds ${secret}`);
    }
    assert.ok(Buffer.byteLength(stored!) < 6_000, `attempt record is ${Buffer.byteLength(stored!)} bytes`);
  });

  test("find: a delivery id gives the delivery; an event id its deliveries; anything else 404", async () => {
    const one = await admin(`/find?id=${byEndpoint.tls.id}`);
    assert.deepEqual([one.status, one.json.result.kind, one.json.result.delivery.endpoint], [200, "delivery", "tls"]);
    assert.equal(one.json.result.delivery.attemptLog.length, 1);
    const ev = await admin(`/find?id=${encodeURIComponent(eventId)}`);
    assert.equal(ev.json.result.kind, "event");
    assert.deepEqual(ev.json.result.deliveries.map((d: any) => d.endpoint).sort(), ["dns", "hang", "http500", "refused", "ssrf", "tls"]);
    const none = await admin("/find?id=evt_nothing_here");
    assert.deepEqual([none.status, none.json.ok, none.json.code], [404, false, "not_found"]);
    const empty = await admin("/find?id=");
    assert.deepEqual([empty.status, empty.json.code], [400, "invalid_request"]);
  });

  test("list filters: endpoint, status, event type, since/until", async () => {
    const ids = (r: any) => r.json.result.deliveries.map((d: any) => d.endpoint).sort();
    assert.deepEqual(ids(await admin("/deliveries?endpoint=http500")), ["http500"]);
    const failed = await admin("/deliveries?status=failed&eventType=probe&since=1h");
    assert.deepEqual(ids(failed), ["dns", "hang", "http500", "refused", "ssrf", "tls"]);
    const row = failed.json.result.deliveries.find((d: any) => d.endpoint === "hang");
    assert.equal(row.lastErrorClass, "timeout");
    assert.ok(row.lastDurationMs >= 250);
    assert.equal(row.attemptLog, undefined, "rows carry no attempts");
    assert.deepEqual(ids(await admin("/deliveries?eventType=other.type")), []);
    assert.deepEqual(ids(await admin(`/deliveries?until=${new Date(Date.now() - 3_600_000).toISOString()}`)), []);
    assert.deepEqual(ids(await admin("/deliveries?status=delivered&endpoint=http500")), []);
    const bad = await admin("/deliveries?since=yesterday-ish");
    assert.deepEqual([bad.status, bad.json.code], [400, "invalid_request"]);
    assert.match(bad.json.error, /^since: /);
    const unknown = await admin("/deliveries?colour=red");
    assert.equal(unknown.status, 400);
  });

  test("the last hour per endpoint: success rate over attempts, latency over answered attempts", async () => {
    const r = await admin("/endpoints/stats");
    const s = Object.fromEntries(r.json.result.stats.map((x: any) => [x.endpoint, x]));
    assert.deepEqual([s.http500.attempts, s.http500.succeeded, s.http500.successRate, s.http500.answered], [1, 0, 0, 1]);
    assert.ok(s.http500.p50Ms > 0 && s.http500.p95Ms >= s.http500.p50Ms);
    assert.deepEqual([s.refused.attempts, s.refused.answered, s.refused.p50Ms, s.refused.successRate], [1, 0, null, 0]);
    const one = await admin("/endpoints/stats?endpoint=tls");
    assert.deepEqual(
      one.json.result.stats.map((x: any) => x.endpoint),
      ["tls"],
    );
    assert.equal((await admin("/endpoints/stats?endpoint=nope")).status, 404);
  });
});

describe("bulk replay", () => {
  test("the dry run counts what the replay then resends, and sends nothing", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(...(await svc.deps.egress!.publish({ type: "batch.item", data: { i } })).deliveries);
    await until(async () => (await Promise.all(ids.map((id) => svc.deps.egress!.log.state(id)))).every((s) => s?.status === "failed"));
    const sent = flaky.received.length;
    assert.equal(sent, 4);

    const dry = await admin("/deliveries/replay", { method: "POST", body: JSON.stringify({ endpoint: "flaky", since: "1h", dryRun: true }) });
    assert.equal(dry.status, 200);
    assert.deepEqual([dry.json.result.dryRun, dry.json.result.started, dry.json.result.skipped], [true, 4, []]);
    assert.equal(typeof dry.json.result.since, "number");
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(flaky.received.length, sent, "a dry run sends nothing");
    assert.equal(await svc.deps.redis!.exists(...ids.map((id) => `${prefix}replay:${id}`)), 0);

    flaky.setFallback({ status: 200, body: "ok" });
    const real = await admin("/deliveries/replay", { method: "POST", body: JSON.stringify({ endpoint: "flaky", since: dry.json.result.since }) });
    assert.equal(real.status, 202);
    assert.equal(real.json.result.started, dry.json.result.started);
    await until(() => flaky.received.length === sent + 4);
    await until(async () => (await Promise.all(ids.map((id) => svc.deps.egress!.log.state(id)))).every((s) => s?.status === "delivered"));

    // Nothing is left to resend, and the dry run says so.
    const after = await admin("/deliveries/replay", { method: "POST", body: JSON.stringify({ endpoint: "flaky", since: "1h", dryRun: true }) });
    assert.equal(after.json.result.started, 0);
    const bad = await admin("/deliveries/replay", { method: "POST", body: JSON.stringify({ endpoint: "flaky", dryRun: "yes" }) });
    assert.deepEqual([bad.status, bad.json.code], [400, "invalid_request"]);
  });
});

describe("inbound", () => {
  test("inbound endpoints and their recent runs, with how each ended", async () => {
    const r = await post(`${svc.url}/webhooks/inbound/deploy`, { repo: "my-app" }, { secret: INBOUND_TOKEN });
    assert.equal(r.status, 202, r.text);
    const runId = r.json.runId as string;
    let run: any;
    await until(async () => {
      run = (await admin("/inbound")).json.result.runs.find((x: any) => x.runId === runId);
      return run?.status === "ok";
    });
    const res = (await admin("/inbound")).json.result;
    assert.deepEqual(
      res.endpoints.map((e: any) => [e.name, e.action, e.agentId, e.auth]),
      [["deploy", "agent", "devops-agent", "token"]],
    );
    assert.equal(res.runsRecorded, true);
    assert.equal(run.endpoint, "deploy");
    assert.ok(run.startedAt <= run.endedAt);
    assert.equal(run.completionEventId, `inbound_completed_${runId}`);
    assert.equal((await admin("/inbound?limit=0")).status, 400);
  });
});
