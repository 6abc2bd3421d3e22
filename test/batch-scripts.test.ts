import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { batchTurnWrites } from "../src/redis.js";
import { createDeliveryLog, type DeliveryStatus } from "../src/egress/log.js";
import { createEgressScripts } from "../src/egress/scripts.js";
import { deliveryId } from "../src/egress/ids.js";
import { createKeys } from "../src/redis-keys.js";
import { startRedis, type TestRedis } from "./support/redis.js";
import { configFrom } from "../src/config/load.js";
import { openTestEgress } from "./support/egress.js";
import { startReceiver } from "./support/receiver.js";
import { until } from "./support/until.js";

// The egress gathers a turn's records, attempt ends and event reads into one command each
// (scripts.ts, util/turn-batch.ts). What Redis holds afterwards must be what one call per item,
// in the same order, leaves: the breaker's moves, the records, the indexes and the stats.

let redis: TestRedis;
let client: Redis;
before(async () => {
  redis = await startRedis();
  client = batchTurnWrites(new Redis(redis.url));
});
after(async () => {
  client.disconnect();
  await redis.dispose();
});

const BREAKER = { failureThreshold: 3, cooldownMs: 1_000, maxCooldownMs: 60_000 };
const ENDPOINT = "crm";
const AT = Date.UTC(2026, 11, 7, 12, 0, 30);

function open(prefix: string) {
  const log = createDeliveryLog(client, { prefix, retentionMs: 3_600_000, endpoints: [ENDPOINT] });
  return { scripts: createEgressScripts(client, log, prefix), keys: createKeys(prefix) };
}

/** What a test looks at after a run: the breaker, the records, the indexes and the stats, with Redis's clock taken out. */
async function state(prefix: string, ids: string[]) {
  const { keys } = open(prefix);
  const breaker = await client.hgetall(keys.endpoint.state(ENDPOINT));
  for (const f of ["lastSuccessAt", "failingSince", "openUntil"]) if (breaker[f]) breaker[f] = "(set)";
  const records = await Promise.all(ids.map((id) => client.hgetall(keys.delivery.record(id))));
  const indexes = await Promise.all(
    (["pending", "delivered", "failed"] as const).map(async (s) => [s, await client.zrange(keys.delivery.byStatus(ENDPOINT, s), "0", "-1")]),
  );
  const stats = await client.hgetall(keys.endpoint.stats(ENDPOINT, Math.floor(AT / 60_000)));
  return { breaker, records, indexes, stats };
}

/** Script calls Redis has run so far (ioredis sends EVALSHA, and EVAL the first time). */
const evalCalls = async () => {
  let n = 0;
  for (const m of (await client.info("commandstats")).matchAll(/cmdstat_eval(?:sha)?:calls=(\d+)/g)) n += Number(m[1]);
  return n;
};

// Successes and failures in an order that moves the breaker every way: failures up to the
// threshold (it opens), a probe that fails (it opens again, longer), a success (it closes).
const OUTCOMES: { ok: boolean; isProbe?: boolean; status: DeliveryStatus }[] = [
  { ok: true, status: "delivered" },
  { ok: false, status: "pending" },
  { ok: false, status: "pending" },
  { ok: false, status: "failed" },
  { ok: false, isProbe: true, status: "pending" },
  { ok: true, isProbe: true, status: "delivered" },
  { ok: false, status: "pending" },
  { ok: true, status: "delivered" },
];

async function run(prefix: string, together: boolean) {
  const { scripts } = open(prefix);
  const ids = OUTCOMES.map((_, i) => deliveryId(`evt_${i}`, ENDPOINT));
  for (const [i, id] of ids.entries()) await scripts.record({ id: `evt_${i}`, type: "order.created" }, { deliveryId: id, endpoint: ENDPOINT }, AT, true);
  const finish = (o: (typeof OUTCOMES)[number], i: number) =>
    scripts.finish(
      { endpoint: ENDPOINT, ok: o.ok, isProbe: o.isProbe ?? false, breaker: BREAKER },
      {
        id: ids[i]!,
        from: "pending",
        status: o.status,
        lastStatus: o.ok ? 200 : 503,
        lastError: o.ok ? undefined : "HTTP 503",
        attempt: { attempt: 1, trigger: "scheduled", at: AT + i, status: o.ok ? 200 : 503, durationMs: 5 + i, responseBody: "" },
      },
    );
  const before = await evalCalls();
  const replies = together ? await Promise.all(OUTCOMES.map(finish)) : [];
  if (!together) for (const [i, o] of OUTCOMES.entries()) replies.push(await finish(o, i));
  const calls = (await evalCalls()) - before;
  return { replies: replies.map(([s, since]) => [s, since === null ? null : "(set)"]), calls, after: await state(prefix, ids) };
}

describe("batched scripts", () => {
  test("finish: a turn's attempts to one endpoint in one call leave what one call each, in order, leaves", async () => {
    const alone = await run(redis.prefix(), false);
    const together = await run(redis.prefix(), true);
    assert.equal(alone.calls, OUTCOMES.length, "one call per attempt when each is awaited");
    assert.equal(together.calls, 1, "one call for the turn's attempts");
    assert.deepEqual(together.replies, alone.replies);
    assert.deepEqual(
      alone.replies.map(([s]) => s),
      ["closed", "closed", "closed", "opened", "opened", "closed", "closed", "closed"],
      "the breaker moved: opened at the third failure, again at the failed probe, closed by the probe that passed",
    );
    assert.deepEqual(together.after, alone.after);
    assert.equal(together.after.stats.n, String(OUTCOMES.length));
    assert.equal(together.after.stats.ok, "3");
    assert.deepEqual(together.after.indexes.find(([s]) => s === "pending")![1], [
      deliveryId("evt_1", ENDPOINT),
      deliveryId("evt_2", ENDPOINT),
      deliveryId("evt_4", ENDPOINT),
      deliveryId("evt_6", ENDPOINT),
    ]);
  });

  test("a key of another type fails its own item alone; the rest of the batch is written", async () => {
    const prefix = redis.prefix();
    const { scripts, keys } = open(prefix);
    const ids = [0, 1, 2].map((i) => deliveryId(`evt_${i}`, ENDPOINT));
    await client.set(keys.delivery.record(ids[1]!), "not a hash");
    const recorded = await Promise.allSettled(
      ids.map((id, i) => scripts.record({ id: `evt_${i}`, type: "t" }, { deliveryId: id, endpoint: ENDPOINT }, AT, true)),
    );
    assert.deepEqual(
      recorded.map((r) => r.status),
      ["fulfilled", "rejected", "fulfilled"],
    );
    assert.match(String((recorded[1] as PromiseRejectedResult).reason), /WRONGTYPE/);
    assert.equal(await client.get(keys.delivery.record(ids[1]!)), "not a hash", "the odd key is left as it was");
    assert.deepEqual(await client.zrange(keys.delivery.byStatus(ENDPOINT, "pending"), "0", "-1"), [ids[0], ids[2]]);

    const finished = await Promise.allSettled(
      ids.map((id) =>
        scripts.finish(
          { endpoint: ENDPOINT, ok: true, isProbe: false, breaker: BREAKER },
          { id, from: "pending", status: "delivered", attempt: { attempt: 1, trigger: "scheduled", at: AT, durationMs: 3, responseBody: "" } },
        ),
      ),
    );
    assert.deepEqual(
      finished.map((r) => r.status),
      ["fulfilled", "rejected", "fulfilled"],
    );
    assert.deepEqual(await client.zrange(keys.delivery.byStatus(ENDPOINT, "delivered"), "0", "-1"), [ids[0], ids[2]]);
    assert.equal((await client.hgetall(keys.endpoint.stats(ENDPOINT, Math.floor(AT / 60_000)))).n, "2", "the failed item is not counted");
  });

  test("events: a turn's reads and first-writer-wins stores answer each event as one call each would", async () => {
    const prefix = redis.prefix();
    const { scripts } = open(prefix);
    assert.equal(await scripts.storeEvent({ id: "evt_old", json: '{"old":1}' }), true);
    const before = await evalCalls();
    const kept = await Promise.all(["evt_old", "evt_new", "evt_other"].map((id) => scripts.eventKept(id)));
    const stored = await Promise.all([
      scripts.storeEvent({ id: "evt_old", json: '{"old":2}' }),
      scripts.storeEvent({ id: "evt_new", json: '{"new":1}' }),
      scripts.storeEvent({ id: "evt_new", json: '{"new":2}' }),
    ]);
    assert.deepEqual(kept, [true, false, false]);
    assert.deepEqual(stored, [false, true, false], "the first writer of evt_new wins, evt_old stays");
    assert.equal((await evalCalls()) - before, 2, "one call for the reads, one for the stores");
    const gates = await Promise.all(["evt_old", "evt_new", "evt_missing"].map((id) => scripts.gate(ENDPOINT, id)));
    assert.deepEqual(
      gates.map((g) => g.raw),
      ['{"old":1}', '{"new":1}', null],
    );
    assert.ok(gates.every((g) => !g.disabled && !g.open));
  });
});

describe("a delivered attempt's record and its job's completion", () => {
  test("the record is sent first, on the same connection: Redis runs it before BullMQ completes the job", async () => {
    const secret = `whsec_${Buffer.from("0123456789abcdef0123456789abcdef").toString("base64")}`;
    const prefix = redis.prefix();
    const rx = await startReceiver({ secret });
    const config = configFrom({
      redis: { url: redis.url, prefix },
      webhooks: { allowPrivateCidrs: ["127.0.0.0/8"], endpoints: [{ name: ENDPOINT, url: rx.url, secret, events: ["*"] }] },
    });
    const egress = await openTestEgress(config);
    // Every command Redis runs, in the order it runs them (MONITOR), EVALSHA/EVAL lines only.
    const base = new Redis(redis.url);
    const monitor = await base.monitor();
    const ran: string[][] = [];
    monitor.on("monitor", (_time: string, args: string[]) => {
      if (/^eval/i.test(args[0] ?? "")) ran.push(args);
    });
    try {
      await egress.startWorker();
      const ids: string[] = [];
      // Bursts, so that several attempts end in one turn and their records leave in one call.
      for (let burst = 0; burst < 4; burst++) {
        const out = await Promise.all(Array.from({ length: 10 }, (_, i) => egress.publish({ type: "order.created", data: { burst, i } })));
        ids.push(...out.map((o) => o.deliveries[0]!));
      }
      await until(() => rx.received.length === ids.length);
      const keys = createKeys(prefix);
      await until(async () => (await client.zcard(keys.delivery.byStatus(ENDPOINT, "delivered"))) === ids.length);
      await new Promise((r) => setTimeout(r, 100)); // MONITOR's last lines
      for (const id of ids) {
        const record = ran.findIndex((args) => args.includes(keys.delivery.record(id)) && args.includes("delivered"));
        const completed = ran.findIndex((args) => args.some((a) => a.endsWith(`:${id}`) && a !== keys.delivery.record(id)) && args.includes("completed"));
        assert.ok(record >= 0 && completed >= 0, `${id}: both ran (record at ${record}, completion at ${completed})`);
        assert.ok(record < completed, `${id}: the record (${record}) ran before the job's completion (${completed})`);
      }
      assert.ok(
        ran.some((args) => ids.filter((id) => args.includes(keys.delivery.record(id))).length > 1),
        "some records went several to a call",
      );
    } finally {
      monitor.disconnect();
      base.disconnect();
      await egress.close();
      await rx.close();
    }
  });
});
