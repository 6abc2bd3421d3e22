import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { startReceiver } from "./support/receiver.js";
import { startRedis, type TestRedis } from "./support/redis.js";
import { startService, type TestService } from "./support/service.js";
import { until } from "./support/until.js";

/**
 * Retention with time compressed: with `webhooks.retention` at 2 s, once the traffic stops every
 * event, delivery record and delivery index goes away by itself (records by their TTL, index
 * entries by the trim timer), for a delivered endpoint and a failing one alike.
 */
const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PUBLISH = "publish-token-0123456789abcdef";

describe("retention", () => {
  let redis: TestRedis;
  let svc: TestService;
  let ok: Awaited<ReturnType<typeof startReceiver>>;
  let down: Awaited<ReturnType<typeof startReceiver>>;
  const prefix = `ret-${process.pid}:`;
  before(async () => {
    redis = await startRedis();
    ok = await startReceiver({ secret: WHSEC });
    down = await startReceiver();
    down.setFallback({ status: 500, body: "no" });
    svc = await startService({
      redis: { url: redis.url, prefix },
      webhooks: {
        publishToken: PUBLISH,
        retention: "2s",
        circuitBreaker: { failureThreshold: 1_000 },
        allowPrivateCidrs: ["127.0.0.1/32"],
        endpoints: [
          { name: "ok", url: ok.url, secret: WHSEC, events: ["*"] },
          { name: "down", url: down.url, secret: WHSEC, events: ["*"], retry: { schedule: [] } },
        ],
      },
    } as never);
    await svc.deps.egress!.startWorker();
  });
  after(async () => {
    await svc?.close();
    await ok?.close();
    await down?.close();
    await redis?.dispose();
  });

  const families = async () => {
    const r = new Redis(redis.url);
    try {
      const keys = await r.keys(`${prefix}*`);
      const count = (re: RegExp) => keys.filter((k) => re.test(k.slice(prefix.length))).length;
      return { event: count(/^event:/), delivery: count(/^delivery:/), index: count(/^deliveries:/) };
    } finally {
      r.disconnect();
    }
  };

  test("events, delivery records and the delivery indexes are gone one retention after the traffic stops", async () => {
    for (let i = 0; i < 20; i++) {
      const r = await fetch(`${svc.url}/v1/events`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${PUBLISH}` },
        body: JSON.stringify({ type: "order.created", data: { i } }),
      });
      assert.equal(r.status, 202);
    }
    await until(() => ok.received.length === 20 && down.received.length === 20, 10_000).catch((err) => {
      throw new Error(`received ${ok.received.length} and ${down.received.length}`, { cause: err });
    });
    const during = await families();
    assert.ok(during.event > 0 && during.delivery > 0 && during.index > 0, JSON.stringify(during));
    // Records expire at 2 s; the trim timer runs every 2 s (min(retention, 60 s)).
    await until(async () => {
      const f = await families();
      return f.event === 0 && f.delivery === 0 && f.index === 0;
    }, 10_000).catch(async (err) => {
      throw new Error(`left after the retention: ${JSON.stringify(await families())}`, { cause: err });
    });
    console.log(`# retention 2 s: ${JSON.stringify(during)} keys during the traffic, none of them 2-6 s after`);
  });
});
