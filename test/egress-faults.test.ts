import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { configFrom } from "../src/config/load.js";
import { openTestEgress } from "./support/egress.js";
import { startReceiver } from "./support/receiver.js";
import { until } from "./support/until.js";
import { freePort, startRedis } from "./support/redis.js";

const SECRET = `whsec_${randomBytes(24).toString("base64")}`;
const OWN_REDIS = process.env.REDIS_URL ? "REDIS_URL given: these tests must stop and restart their own Redis" : false;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("nothing lost", () => {
  test("a redis-server restart (AOF) in the middle of 1,000 published events: all 1,000 delivered", { skip: OWN_REDIS }, async () => {
    const redis = await startRedis({ aof: true });
    const rx = await startReceiver({ secret: SECRET });
    const config = configFrom({
      redis: { url: redis.url, prefix: redis.prefix() },
      webhooks: {
        allowPrivateCidrs: ["127.0.0.0/8"],
        // A job whose move to active Redis wrote just before the kill, with the reply lost, is in
        // no worker's hands: it comes back when its lock expires (2 × timeout + 2 s) and the
        // stalled check runs (every 5 s by default: up to the lock plus 10 s); the test checks
        // recovery, so it checks every second.
        worker: { stalledIntervalMs: 1_000 },
        endpoints: [{ name: "sink", url: rx.url, secret: SECRET, events: ["*"], timeoutMs: 2_000, retry: { schedule: ["200ms", "500ms", "1s", "2s", "5s"] } }],
      },
    });
    const egress = await openTestEgress(config);
    await egress.startWorker();
    let refused = 0;
    try {
      let restart: Promise<void> | undefined;
      for (let i = 0; i < 1_000; i++) {
        if (i === 300)
          restart = redis
            .stop()
            .then(() => sleep(300))
            .then(() => redis.start());
        // A publisher that got an error (the API's 503) sends the same id again: the contract.
        for (;;) {
          try {
            await egress.publish({ type: "order.created", data: { i }, id: `order-${i}` });
            break;
          } catch {
            refused++;
            await sleep(50);
          }
        }
      }
      await restart;
      assert.ok(refused > 0, "the restart did interrupt publishing");
      const ids = () => new Set(rx.received.map((r) => JSON.parse(r.body).id as string));
      try {
        await until(() => ids().size === 1_000, 60_000);
      } catch (err) {
        // Say where the missing ones are: queued, active, failed, pending in the log, or parked.
        const missing = Array.from({ length: 1_000 }, (_, i) => `order-${i}`).filter((id) => !ids().has(id));
        const found = await Promise.all(missing.slice(0, 5).map((id) => egress.log.find(id)));
        const counts = await egress.jobCounts();
        const parked = await egress.parked.list(5);
        throw new Error(
          `${missing.length} not delivered (${missing.slice(0, 5).join(", ")}): jobs ${JSON.stringify(counts)}, records ${JSON.stringify(found)}, parked ${parked.total}`,
          { cause: err },
        );
      }
      assert.ok(rx.received.every((r) => r.verified));
      // At least once: a duplicate may only repeat a webhook-id, never invent a new one.
      const webhookIds = new Set(rx.received.map((r) => String(r.headers["webhook-id"])));
      assert.equal(webhookIds.size, 1_000);
    } finally {
      await egress.close();
      await rx.close();
      await redis.dispose();
    }
  });

  test("a worker killed with SIGKILL mid-delivery: the job is delivered again with the same webhook-id", { skip: OWN_REDIS }, async () => {
    const redis = await startRedis();
    const rx = await startReceiver({ secret: SECRET });
    rx.next({ hang: true }); // the first attempt never answers: the worker dies holding it
    const input = {
      redis: { url: redis.url, prefix: redis.prefix() },
      webhooks: {
        allowPrivateCidrs: ["127.0.0.0/8"],
        worker: { stalledIntervalMs: 500 },
        endpoints: [{ name: "sink", url: rx.url, secret: SECRET, events: ["*"], timeoutMs: 1_000 }],
      },
    };
    const script = fileURLToPath(new URL("./support/egress-worker.ts", import.meta.url));
    const child = spawn(process.execPath, ["--import", "tsx", script, JSON.stringify(input)], { stdio: ["ignore", "pipe", "inherit"] });
    const exited = new Promise((r) => child.once("exit", r));
    let second: Awaited<ReturnType<typeof openTestEgress>> | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on("data", (d: Buffer) => d.toString().includes("ready") && resolve());
        child.once("exit", (code) => reject(new Error(`worker exited early (${code})`)));
      });
      const producer = await openTestEgress(configFrom(input as never));
      const out = await producer.publish({ type: "order.created", data: { n: 1 } });
      await producer.close();
      await until(() => rx.received.length === 1);
      child.kill("SIGKILL");
      await exited;
      second = await openTestEgress(configFrom(input as never));
      await second.startWorker();
      await until(() => rx.received.length === 2, 20_000);
      assert.equal(rx.received[1]!.headers["webhook-id"], out.deliveries[0]);
      assert.equal(rx.received[0]!.headers["webhook-id"], out.deliveries[0]);
      assert.equal(rx.received[1]!.verified, true);
      await until(async () => (await second!.log.get(out.deliveries[0]!))?.status === "delivered");
    } finally {
      child.kill("SIGKILL");
      await second?.close();
      await rx.close();
      await redis.dispose();
    }
  });

  test("a receiver that is down for a while gets everything once it returns", async () => {
    const redis = await startRedis();
    const port = await freePort();
    const config = configFrom({
      redis: { url: redis.url, prefix: redis.prefix() },
      webhooks: {
        allowPrivateCidrs: ["127.0.0.0/8"],
        circuitBreaker: { failureThreshold: 3, cooldownMs: 200, maxCooldownMs: 800 },
        endpoints: [{ name: "sink", url: `http://127.0.0.1:${port}/in`, secret: SECRET, events: ["*"], retry: { schedule: ["200ms", "400ms", "800ms"] } }],
      },
    });
    const egress = await openTestEgress(config);
    await egress.startWorker();
    let rx: Awaited<ReturnType<typeof startReceiver>> | undefined;
    try {
      const out = [];
      for (let i = 0; i < 50; i++) out.push(await egress.publish({ type: "order.created", data: { i } }));
      await sleep(2_500); // longer than the whole retry schedule: only the breaker keeps them alive
      const status = (await egress.endpointStatus())[0]!;
      assert.equal(status.circuit.state, "open");
      rx = await startReceiver({ secret: SECRET, port });
      const ids = out.map((o) => o.deliveries[0]!);
      await until(async () => (await Promise.all(ids.map((id) => egress.log.get(id)))).every((r) => r?.status === "delivered"), 20_000);
      assert.equal(new Set(rx.received.map((r) => r.headers["webhook-id"])).size, 50);
      assert.ok(rx.received.every((r) => r.verified));
    } finally {
      await egress.close();
      await rx?.close();
      await redis.dispose();
    }
  });
});
