import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { configFrom } from "../src/config/load.js";
import { createDeps } from "../src/deps.js";
import { StartupError } from "../src/errors.js";
import { createLogger } from "../src/log.js";
import { startReceiver } from "./support/receiver.js";
import { startRedis } from "./support/redis.js";
import { useRedisAndGateway } from "./support/shared.js";
import { post, SECRET_A, startService, twoRoutes } from "./support/service.js";
import { until } from "./support/until.js";

const GW_TOKEN = "gw-token-0123456789";
const PUBLISH = "publish-token-0123456789";
const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const shared = useRedisAndGateway(GW_TOKEN);

/** Prometheus text → value of one series (labels given in any order), or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[3] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v) && Object.keys(got).length === Object.keys(labels).length) return Number(m[4]);
  }
  return undefined;
}

describe("metrics", () => {
  test("after scripted traffic, /metrics counts exactly what was sent", async () => {
    const rx = await startReceiver({ secret: WHSEC });
    rx.next({ status: 500 });
    const svc = await startService({
      redis: { url: shared.redis.url, prefix: shared.redis.prefix() },
      gateway: { url: shared.gw.url, token: GW_TOKEN },
      routes: twoRoutes(),
      webhooks: {
        publishToken: PUBLISH,
        allowPrivateCidrs: ["127.0.0.0/8"],
        endpoints: [{ name: "crm", url: rx.url, secret: WHSEC, events: ["lead.*"], retry: { schedule: ["100ms"] } }],
      },
    });
    await svc.deps.egress!.startWorker();
    try {
      for (let i = 0; i < 3; i++) assert.equal((await post(`${svc.url}/hooks/a`, { action: "create_flow", goal: `g${i}` }, { secret: SECRET_A })).status, 200);
      assert.equal((await post(`${svc.url}/hooks/a`, { action: "get_flow", flowId: "nope" }, { secret: SECRET_A })).status, 200);
      assert.equal((await post(`${svc.url}/hooks/a`, { action: "create_flow", goal: "x" }, { secret: "wrong" })).status, 401);
      for (let i = 0; i < 2; i++)
        assert.equal((await post(`${svc.url}/hooks/a`, "x", { secret: SECRET_A, headers: { "content-type": "text/plain" } })).status, 415);
      for (let i = 0; i < 2; i++) assert.equal((await post(`${svc.url}/v1/events`, { type: "lead.qualified", data: { i } }, { secret: PUBLISH })).status, 202);
      // The first delivery fails once (500), then both are delivered.
      await until(async () => (await svc.deps.egress!.log.list({ status: "delivered", endpoint: "crm" })).length === 2);
      const text = await (await fetch(`${svc.url}/metrics`)).text();
      const P = "openclaw_webhooks_";
      assert.equal(sample(text, `${P}ingress_requests_total`, { route: "a", status: "200", code: "" }), 4);
      assert.equal(sample(text, `${P}ingress_requests_total`, { route: "a", status: "401", code: "unauthorized" }), 1);
      assert.equal(sample(text, `${P}ingress_requests_total`, { route: "a", status: "415", code: "unsupported_media_type" }), 2);
      assert.equal(sample(text, `${P}ingress_request_duration_seconds_count`, { route: "a" }), 7);
      assert.equal(sample(text, `${P}gateway_calls_total`, { method: "webhooksBridge.create_flow", outcome: "ok" }), 3);
      assert.equal(sample(text, `${P}gateway_calls_total`, { method: "webhooksBridge.get_flow", outcome: "ok" }), 1);
      assert.equal(sample(text, `${P}gateway_call_duration_seconds_count`, { method: "webhooksBridge.create_flow" }), 3);
      assert.equal(sample(text, `${P}gateway_connected`), 1);
      assert.equal(sample(text, `${P}events_received_total`, { source: "api", type: "lead.qualified" }), 2);
      assert.equal(sample(text, `${P}deliveries_total`, { endpoint: "crm", outcome: "delivered" }), 2);
      assert.equal(sample(text, `${P}deliveries_total`, { endpoint: "crm", outcome: "retry" }), 1);
      assert.equal(sample(text, `${P}delivery_attempt_number_count`, { endpoint: "crm" }), 3);
      assert.equal(sample(text, `${P}delivery_attempt_number_bucket`, { endpoint: "crm", le: "1" }), 2);
      assert.equal(sample(text, `${P}queue_jobs`, { state: "completed" }), 2);
      assert.equal(sample(text, `${P}queue_jobs`, { state: "failed" }), 0);
      assert.equal(sample(text, `${P}endpoint_state`, { endpoint: "crm", state: "disabled" }), 0);
      assert.equal(sample(text, `${P}endpoint_state`, { endpoint: "crm", state: "circuit_open" }), 0);
      assert.ok(!/flowId|evt_|dlv_/.test(text), "no ids in label values");
    } finally {
      await svc.close();
      await rx.close();
    }
  });
});

describe("health", () => {
  test("/readyz goes 503 within seconds of Redis stopping and 200 when it is back; it names the failing check", {
    skip: process.env.REDIS_URL ? "REDIS_URL given" : false,
  }, async () => {
    const own = await startRedis();
    const svc = await startService({
      redis: { url: own.url, prefix: own.prefix() },
      webhooks: { allowPrivateCidrs: ["127.0.0.0/8"], endpoints: [{ name: "x", url: "http://127.0.0.1:9/", secret: WHSEC, events: ["*"] }] },
    });
    await svc.deps.egress!.startWorker();
    const ready = async () => {
      const r = await fetch(`${svc.url}/readyz`);
      return { status: r.status, body: (await r.json()) as { checks: Record<string, boolean> } };
    };
    try {
      await until(async () => (await ready()).status === 200, 5_000);
      assert.deepEqual((await ready()).body.checks, { accepting: true, redis: true, workers: true });
      await own.stop();
      const t0 = Date.now();
      await until(async () => (await ready()).status === 503, 5_000);
      assert.ok(Date.now() - t0 < 3_000, `503 after ${Date.now() - t0} ms`);
      assert.equal((await ready()).body.checks.redis, false);
      assert.equal((await fetch(`${svc.url}/healthz`)).status, 200, "the process lives");
      await own.start();
      await until(async () => (await ready()).status === 200, 10_000);
    } finally {
      await svc.close();
      await own.dispose();
    }
  });

  test("startup refuses a Redis whose maxmemory-policy evicts any key, naming shared.redis.url", {
    skip: process.env.REDIS_URL ? "REDIS_URL given" : false,
  }, async () => {
    const lru = await startRedis({ args: ["--maxmemory-policy", "allkeys-lru"] });
    try {
      await assert.rejects(
        createDeps(configFrom({ redis: { url: lru.url } }), { log: createLogger({ level: "silent" }) }),
        (e: Error) => e instanceof StartupError && /redis\.url: .*allkeys-lru.*noeviction/.test(e.message),
      );
    } finally {
      await lru.dispose();
    }
  });
});
