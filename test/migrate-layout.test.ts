import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { deliveryId } from "../src/egress/ids.js";
import { createDeliveryLog } from "../src/egress/log.js";
import { migrateKeyLayout } from "../src/egress/migrate-layout.js";
import { createParkedStore } from "../src/egress/parked.js";
import { createEndpointStats, minuteOf } from "../src/egress/stats.js";
import { inboundGatewayKey } from "../src/idempotency/keys.js";
import { createKeys } from "../src/redis-keys.js";
import { keyPart } from "../src/util/key-part.js";
import { startRedis, type TestRedis } from "./support/redis.js";

/**
 * migrateKeyLayout on a real Redis: the layout before hash tags, written as the service wrote it,
 * is moved to today's names with its data and expiry, the service's own readers find it there,
 * and a second run (or two at once) changes nothing more.
 */

const ENDPOINTS = ["crm", "a_b", "x.y"];
const INBOUND = ["deploy", "gh_app"];
const EVENTS = ["lead-7", "gw_msg_run-1", "order 7 / ünï"];
const DAY = 86_400_000;
let redis: TestRedis;
let r: Redis;

before(async () => {
  redis = await startRedis();
  r = new Redis(redis.url);
});
after(async () => {
  r.disconnect();
  await redis.dispose();
});

/** Every key under the prefix, without it. */
async function keysOf(prefix: string): Promise<string[]> {
  return (await r.keys(`${prefix}*`)).map((k) => k.slice(prefix.length)).sort();
}

/** The old layout, as the service wrote it before the tags. */
async function seedOld(P: string, now: number) {
  const minute = minuteOf(now);
  for (const name of ENDPOINTS) {
    for (const [i, event] of EVENTS.entries()) {
      const id = deliveryId(event, name);
      const status = ["delivered", "failed", "pending"][i]!;
      await r.hset(`${P}delivery:${id}`, {
        id,
        eventId: event,
        eventType: "order.created",
        endpoint: name,
        createdAt: now - i,
        status,
        attempts: 1,
        updatedAt: now,
      });
      await r.pexpire(`${P}delivery:${id}`, DAY);
      await r.zadd(`${P}deliveries:${name}:all`, now - i, id);
      await r.zadd(`${P}deliveries:${name}:${status}`, now, id);
    }
    // A failed index entry whose `all` entry was trimmed already (its record has expired).
    await r.zadd(`${P}deliveries:${name}:failed`, now - DAY, deliveryId("gone", name));
    await r.hset(`${P}endpoint:${name}:state`, { state: "closed", failures: 0, lastSuccessAt: now });
    await r.hset(`${P}endpoint:${name}:stats:${minute}`, { n: 3, ok: 2, b1: 2 });
    await r.pexpire(`${P}endpoint:${name}:stats:${minute}`, 7_200_000);
    await r.hset(`${P}endpoint:${name}:stats:${minute - 30}`, { n: 1, ok: 1 });
    await r.pexpire(`${P}endpoint:${name}:stats:${minute - 30}`, 7_200_000);
  }
  await r.hset(`${P}endpoint:x.y:state`, "disabled", JSON.stringify({ reason: "410 Gone", at: now }));
  const entry = (id: string) =>
    JSON.stringify({
      parkedId: id,
      eventId: id.slice(3),
      type: "t",
      source: "api",
      reason: "r",
      firstParkedAt: now,
      parkedAt: now,
      times: 1,
      replayable: false,
    });
  await r.hset(`${P}parked:items`, "pk_e1", entry("pk_e1"), "pk_e2", entry("pk_e2"));
  await r.zadd(`${P}parked:at`, now, "pk_e1", now, "pk_e2");
  await r.pexpire(`${P}parked:items`, DAY);
  await r.pexpire(`${P}parked:at`, DAY);
  // Inbound runs: listed ones (readable, hashed by the Gateway key, a run id the Gateway chose that
  // keyPart hashes) and one past the list's newest 50.
  const runs = {
    deploy: [inboundGatewayKey("deploy", "msg-1"), inboundGatewayKey("deploy", "y".repeat(300)), "gateway run 7"],
    gh_app: [inboundGatewayKey("gh_app", "b7c0-11ee")],
  };
  for (const [e, ids] of Object.entries(runs)) {
    for (const runId of ids) {
      await r.set(`${P}inbound-run:${keyPart(runId)}`, JSON.stringify({ endpoint: e, startedAt: now }), "PX", DAY);
      await r.lpush(`${P}inbound-runs:${keyPart(e)}`, runId);
    }
    await r.pexpire(`${P}inbound-runs:${keyPart(e)}`, DAY);
  }
  const unlisted = inboundGatewayKey("deploy", "msg-0");
  await r.set(`${P}inbound-run:${keyPart(unlisted)}`, JSON.stringify({ endpoint: "deploy", startedAt: now - 1 }), "PX", DAY);
  // Keys whose names did not change stay as they are.
  await r.set(`${P}idem:taskflow:1:a:k-1`, "dx", "PX", DAY);
  await r.set(`${P}replay:${deliveryId("lead-7", "crm")}`, "j", "PX", DAY);
  return { runs: [...runs.deploy, ...runs.gh_app, unlisted] };
}

describe("migrateKeyLayout", () => {
  test("nothing old: a no-op that writes nothing", async () => {
    const P = redis.prefix();
    assert.deepEqual(await migrateKeyLayout(r, P, ENDPOINTS, INBOUND), { moved: 0, merged: 0 });
    assert.deepEqual(await keysOf(P), []);
  });

  test("moves every old key to its tagged name, data and expiry kept; the readers find them; a second run does nothing", async () => {
    const P = redis.prefix();
    const now = Date.now();
    const { runs } = await seedOld(P, now);
    const before = (await keysOf(P)).length;
    const report = await migrateKeyLayout(r, P, ENDPOINTS, INBOUND);
    assert.equal(report.merged, 0);
    const after = await keysOf(P);
    assert.equal(report.moved, before - 2, "every key but the two whose names did not change");
    assert.equal(after.length, before, "renamed, none lost or added");
    assert.deepEqual(
      after.filter((k) => !k.includes("{")),
      [`idem:taskflow:1:a:k-1`, `replay:${deliveryId("lead-7", "crm")}`],
      "only the families without a tag are left untagged",
    );

    const k = createKeys(P);
    const log = createDeliveryLog(r, { prefix: P, retentionMs: DAY, endpoints: ENDPOINTS });
    for (const name of ENDPOINTS) {
      for (const event of EVENTS) {
        const id = deliveryId(event, name);
        const rec = await log.get(id);
        assert.ok(rec, id);
        assert.deepEqual([rec.id, rec.endpoint, rec.eventId], [id, name, event]);
        assert.ok((await r.pttl(k.delivery.record(id))) > DAY - 60_000, "the record keeps its expiry");
      }
      assert.deepEqual((await log.list({ endpoint: name })).sort(), EVENTS.map((e) => deliveryId(e, name)).sort());
      assert.deepEqual(await log.list({ endpoint: name, status: "failed" }), [deliveryId("gw_msg_run-1", name), deliveryId("gone", name)]);
      assert.equal((await log.backlog(name)).pending, 1);
      assert.equal(await r.hget(k.endpoint.state(name), "state"), "closed");
      const stats = await createEndpointStats(r, P).read(name, now);
      assert.deepEqual([stats.attempts, stats.succeeded], [4, 3]);
    }
    assert.match((await r.hget(k.endpoint.state("x.y"), "disabled")) ?? "", /410 Gone/);
    const parked = createParkedStore(r, { prefix: P, retentionMs: DAY });
    assert.deepEqual((await parked.list()).parked.map((e) => e.parkedId).sort(), ["pk_e1", "pk_e2"]);
    assert.ok((await r.pttl(k.parked.at)) > 0);
    for (const runId of runs) assert.ok(await r.get(k.inbound.run(runId)), `run ${runId}`);
    assert.deepEqual(await r.lrange(k.inbound.recent("deploy"), 0, -1), [...runs.slice(0, 3)].reverse());
    assert.deepEqual(await r.lrange(k.inbound.recent("gh_app"), 0, -1), [runs[3]]);

    assert.deepEqual(await migrateKeyLayout(r, P, ENDPOINTS, INBOUND), { moved: 0, merged: 0 }, "idempotent");
    assert.deepEqual(await keysOf(P), after);
  });

  test("keys the service already wrote under the new name are merged, not overwritten", async () => {
    const P = redis.prefix();
    const now = Date.now();
    const k = createKeys(P);
    await seedOld(P, now);
    // Written by the upgraded service before the migration ran (or an old replica wrote the old names after it).
    const fresh = deliveryId("fresh", "crm");
    await r.zadd(k.delivery.byEndpoint("crm"), now + 5, fresh);
    await r.hset(k.delivery.record(deliveryId("lead-7", "crm")), { id: deliveryId("lead-7", "crm"), status: "pending", attempts: 0, endpoint: "crm" });
    await r.hset(k.endpoint.state("x.y"), { state: "open", failures: 5 });
    await r.hset(k.endpoint.stats("crm", minuteOf(now)), { n: 1, ok: 0 });
    await r.hset(k.parked.items, "pk_e3", "{}");
    await r.zadd(k.parked.at, now + 1, "pk_e3");
    await r.lpush(k.inbound.recent("deploy"), "inbound:deploy:new-1");

    const report = await migrateKeyLayout(r, P, ENDPOINTS, INBOUND);
    assert.ok(report.merged >= 7, `merged ${report.merged}`);
    assert.deepEqual(
      (await keysOf(P)).filter((key) => !key.includes("{")),
      [`idem:taskflow:1:a:k-1`, `replay:${deliveryId("lead-7", "crm")}`],
      "no old key is left",
    );
    assert.equal(await r.zcard(k.delivery.byEndpoint("crm")), 4, "the union of both indexes");
    assert.equal(await r.hget(k.delivery.record(deliveryId("lead-7", "crm")), "status"), "pending", "the new record wins");
    assert.deepEqual((await r.hkeys(k.endpoint.state("x.y"))).sort(), ["disabled", "failures", "state"], "the new breaker, the old marker");
    assert.equal(await r.hget(k.endpoint.state("x.y"), "state"), "open");
    assert.match((await r.hget(k.endpoint.state("x.y"), "disabled"))!, /410 Gone/, "an old disabled marker is kept");
    assert.deepEqual(await r.hgetall(k.endpoint.stats("crm", minuteOf(now))), { n: "4", ok: "2", b1: "2" }, "counters add up");
    assert.deepEqual((await r.hkeys(k.parked.items)).sort(), ["pk_e1", "pk_e2", "pk_e3"]);
    assert.equal(await r.zcard(k.parked.at), 3);
    assert.equal((await r.lrange(k.inbound.recent("deploy"), 0, 0))[0], "inbound:deploy:new-1", "the newest run stays first");
    assert.equal(await r.llen(k.inbound.recent("deploy")), 4);
  });

  test("two replicas starting at once: every key moves once, counters are not added twice", async () => {
    const P = redis.prefix();
    const now = Date.now();
    await seedOld(P, now);
    const single = (await keysOf(P)).length;
    const other = new Redis(redis.url);
    const [a, b] = await Promise.all([migrateKeyLayout(r, P, ENDPOINTS, INBOUND), migrateKeyLayout(other, P, ENDPOINTS, INBOUND)]).finally(() =>
      other.disconnect(),
    );
    assert.equal(a.moved + b.moved, single - 2);
    assert.equal(a.merged + b.merged, 0);
    assert.deepEqual(await r.hgetall(createKeys(P).endpoint.stats("crm", minuteOf(now))), { n: "3", ok: "2", b1: "2" });
  });
});

describe("at startup", () => {
  test("the service moves the old layout before it starts: a delivery recorded before the upgrade is in its log, a disabled endpoint stays disabled", async () => {
    const { startService } = await import("./support/service.js");
    const P = redis.prefix();
    const now = Date.now();
    await seedOld(P, now);
    await r.hset(`${P}endpoint:crm:state`, "disabled", JSON.stringify({ at: now, reason: "by an operator" }));
    const svc = await startService({
      redis: { url: redis.url, prefix: P },
      webhooks: {
        allowPrivateCidrs: ["127.0.0.0/8"],
        endpoints: ENDPOINTS.map((name) => ({ name, url: "http://127.0.0.1:9/", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", events: ["*"] })),
      } as never,
    });
    try {
      const id = deliveryId(EVENTS[0]!, "crm");
      assert.equal((await svc.deps.egress!.log.get(id))?.status, "delivered");
      assert.equal(await svc.deps.egress!.isDisabled("crm"), true);
      assert.deepEqual(await r.keys(`${P}delivery:dlv*`), [], "no record left under its old name");
    } finally {
      await svc.close();
    }
  });
});
