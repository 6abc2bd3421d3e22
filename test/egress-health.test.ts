import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { configFrom } from "../src/config/load.js";
import type { Egress } from "../src/egress/engine.js";
import { openTestEgress } from "./support/egress.js";
import { startReceiver } from "./support/receiver.js";
import { until } from "./support/until.js";
import { startRedis, type TestRedis } from "./support/redis.js";

const SECRET = `whsec_${randomBytes(24).toString("base64")}`;
let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(() => redis.dispose());

/** Egress instances sharing one prefix: the replicas of one deployment. */
async function replicas(n: number, webhooks: Record<string, unknown>): Promise<Egress[]> {
  const config = configFrom({ redis: { url: redis.url, prefix: redis.prefix() }, webhooks: { allowPrivateCidrs: ["127.0.0.0/8"], ...webhooks } as never });
  const out: Egress[] = [];
  for (let i = 0; i < n; i++) {
    const e = await openTestEgress(config);
    await e.startWorker();
    out.push(e);
  }
  return out;
}
const closeAll = (list: Egress[]) => Promise.all(list.map((e) => e.close()));

describe("failing endpoints do not clog the rest", () => {
  test("per-endpoint concurrency holds across two replicas", async () => {
    const rx = await startReceiver({ secret: SECRET });
    rx.setFallback({ status: 200, delayMs: 150 });
    const eg = await replicas(2, { endpoints: [{ name: "slow", url: rx.url, secret: SECRET, events: ["*"], concurrency: 2 }] });
    try {
      for (let i = 0; i < 10; i++) await eg[i % 2]!.publish({ type: "job.done", data: { i } });
      await until(() => rx.received.length === 10);
      assert.equal(rx.maxActive, 2, "never more than 2 at once, both replicas together");
    } finally {
      await closeAll(eg);
      await rx.close();
    }
  });

  test("per-endpoint rate limit: 5/s across two replicas is a steady stream, never more than 5 or 6 in a second", async () => {
    const rx = await startReceiver({ secret: SECRET });
    const eg = await replicas(2, { endpoints: [{ name: "metered", url: rx.url, secret: SECRET, events: ["*"], rateLimit: { perSecond: 5 } }] });
    try {
      for (let i = 0; i < 10; i++) await eg[i % 2]!.publish({ type: "job.done", data: { i } });
      await until(() => rx.received.length === 10);
      const at = rx.received.map((r) => r.at).sort((a, b) => a - b);
      const span = at[9]! - at[0]!;
      assert.ok(span >= 1_500, `10 deliveries at 5/s, one per 200 ms window, take ≥ 1.5 s (took ${span} ms)`);
      // Fixed windows: two may fall either side of a window's edge, so a second can hold 6.
      const busiest = Math.max(...at.map((t) => at.filter((u) => u >= t && u < t + 1_000).length));
      assert.ok(busiest <= 6, `at most 6 in any second (${busiest})`);
    } finally {
      await closeAll(eg);
      await rx.close();
    }
  });

  test("circuit breaker: a failing endpoint is paused without burning attempts, probed, and drained when back; a healthy one is not held up", async () => {
    const bad = await startReceiver({ secret: SECRET });
    const good = await startReceiver({ secret: SECRET });
    bad.setFallback({ status: 500 });
    const [e] = await replicas(1, {
      circuitBreaker: { failureThreshold: 3, cooldownMs: 600, maxCooldownMs: 2_000 },
      endpoints: [
        { name: "bad", url: bad.url, secret: SECRET, events: ["*"], retry: { schedule: ["50ms", "50ms", "50ms", "50ms", "50ms"] }, concurrency: 1 },
        { name: "good", url: good.url, secret: SECRET, events: ["*"] },
      ],
    });
    try {
      const out = [];
      for (let i = 0; i < 6; i++) out.push(await e!.publish({ type: "job.done", data: { i } }));
      await until(() => good.received.length === 6);
      await until(async () => (await e!.endpointStatus()).find((s) => s.name === "bad")!.circuit.state === "open");
      const whenOpened = bad.received.length;
      assert.ok(whenOpened >= 3 && whenOpened <= 4, `opened after the threshold (${whenOpened} attempts)`);
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(bad.received.length, whenOpened, "no attempts while open");
      // One probe after the cooldown, which fails: the circuit reopens for longer.
      await until(() => bad.received.length === whenOpened + 1, 3_000);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(bad.received.length, whenOpened + 1, "exactly one probe");
      const ids = out.map((o) => o.deliveries.find((d) => d.endsWith("_bad"))!);
      const recs = await Promise.all(ids.map((id) => e!.log.get(id)));
      assert.ok(
        recs.every((r) => r!.status === "pending"),
        "deliveries wait instead of failing",
      );
      assert.ok(recs.reduce((n, r) => n + r!.attempts, 0) <= whenOpened + 1, "attempts were not burned while open");
      bad.setFallback({ status: 200 });
      await until(async () => (await Promise.all(ids.map((id) => e!.log.get(id)))).every((r) => r!.status === "delivered"), 10_000);
      assert.equal((await e!.endpointStatus()).find((s) => s.name === "bad")!.circuit.state, "closed");
    } finally {
      await e!.close();
      await bad.close();
      await good.close();
    }
  });

  test("Svix's rule: no success for disableAfter and an exhausted delivery disables the endpoint, with an endpoint.disabled event", async () => {
    const bad = await startReceiver({ secret: SECRET });
    const ops = await startReceiver({ secret: SECRET });
    bad.setFallback({ status: 502 });
    const [e] = await replicas(1, {
      disableAfter: "300ms",
      circuitBreaker: { failureThreshold: 100 },
      endpoints: [
        { name: "bad", url: bad.url, secret: SECRET, events: ["job.*"], retry: { schedule: ["400ms"] } },
        { name: "ops", url: ops.url, secret: SECRET, events: ["endpoint.disabled"] },
      ],
    });
    try {
      const first = await e!.publish({ type: "job.done", data: {} });
      await until(async () => (await e!.log.get(first.deliveries[0]!))?.status === "failed");
      await until(() => ops.received.length === 1);
      const ev = JSON.parse(ops.received[0]!.body);
      assert.equal(ev.type, "endpoint.disabled");
      assert.equal(ev.data.endpoint, "bad");
      assert.match(ev.data.reason, /no successful delivery since/);
      assert.equal(await e!.isDisabled("bad"), true);
      assert.deepEqual((await e!.publish({ type: "job.done", data: {} })).deliveries, []);
    } finally {
      await e!.close();
      await bad.close();
      await ops.close();
    }
  });

  test("an exhausted delivery on an endpoint failing for less than disableAfter does not disable it", async () => {
    const rx = await startReceiver({ secret: SECRET });
    const [e] = await replicas(1, {
      disableAfter: "10s",
      endpoints: [{ name: "flaky", url: rx.url, secret: SECRET, events: ["*"], retry: { maxAttempts: 1, backoffMs: 10 } }],
    });
    try {
      rx.next({ status: 500 });
      const out = await e!.publish({ type: "job.done", data: {} });
      await until(async () => (await e!.log.get(out.deliveries[0]!))?.status === "failed");
      assert.equal(await e!.isDisabled("flaky"), false);
    } finally {
      await e!.close();
      await rx.close();
    }
  });
});
