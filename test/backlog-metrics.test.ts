import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startReceiver } from "./support/receiver.js";
import { startRedis, type TestRedis } from "./support/redis.js";
import { startService, type TestService } from "./support/service.js";
import { until } from "./support/until.js";

/** An endpoint's backlog on /metrics: how many deliveries wait, and how long the oldest has. */
const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PUBLISH = "publish-token-0123456789abcdef";

describe("backlog metrics per endpoint", () => {
  let redis: TestRedis;
  let svc: TestService;
  let ok: Awaited<ReturnType<typeof startReceiver>>;
  let down: Awaited<ReturnType<typeof startReceiver>>;
  before(async () => {
    redis = await startRedis();
    ok = await startReceiver({ secret: WHSEC });
    down = await startReceiver();
    down.setFallback({ status: 503, body: "later" });
    svc = await startService({
      redis: { url: redis.url, prefix: redis.prefix() },
      webhooks: {
        publishToken: PUBLISH,
        allowPrivateCidrs: ["127.0.0.0/8"],
        endpoints: [
          { name: "ok", url: ok.url, secret: WHSEC, events: ["*"] },
          { name: "down", url: down.url, secret: WHSEC, events: ["*"], retry: { schedule: ["10m"] } },
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

  const gauge = (text: string, name: string, endpoint: string) =>
    Number(new RegExp(`^openclaw_webhooks_${name}\\{endpoint="${endpoint}"\\} (\\S+)$`, "m").exec(text)?.[1]);

  test("a failing endpoint's waiting deliveries and the age of the oldest; a healthy one's is 0", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${svc.url}/v1/events`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${PUBLISH}` },
        body: JSON.stringify({ type: "order.created", data: { i } }),
      });
      assert.equal(r.status, 202);
    }
    await until(() => ok.received.length === 3 && down.received.length === 3, 10_000);
    await new Promise((r) => setTimeout(r, 1_100));
    const text = await (await fetch(`${svc.url}/metrics`)).text();
    assert.equal(gauge(text, "endpoint_backlog", "down"), 3, "three retries scheduled");
    assert.equal(gauge(text, "endpoint_backlog", "ok"), 0);
    assert.ok(gauge(text, "endpoint_oldest_pending_seconds", "down") >= 1, text.match(/oldest_pending.*/g)?.join("\n"));
    assert.equal(gauge(text, "endpoint_oldest_pending_seconds", "ok"), 0);
  });
});
