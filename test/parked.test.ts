import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { deliveryId, parkedId } from "../src/egress/ids.js";
import { createLogger } from "../src/log.js";
import { createKeys } from "../src/redis-keys.js";
import { startReceiver } from "./support/receiver.js";
import { startRedis, type TestRedis } from "./support/redis.js";
import { post, startService, type TestService } from "./support/service.js";
import { until } from "./support/until.js";

/**
 * An event that cannot be stored or queued for a reason other than Redis being away (here a key of
 * the wrong type, which makes the publish script fail: the same as any script or BullMQ refusing
 * it) is parked where an operator sees it, and the events after it go on; replayed once the cause
 * is fixed, it is delivered.
 */

const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ADMIN = "admin-token-0123456789";
const PUBLISH = "publish-token-0123456789";
let redis: TestRedis;
let probe: Redis;
let svc: TestService;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let P: string;
const logLines: any[] = [];

function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ["bin/openclaw-webhooks.js", ...args], {
      env: { ...process.env, OPENCLAW_WEBHOOKS_URL: svc.url, OPENCLAW_WEBHOOKS_ADMIN_TOKEN: ADMIN },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("close", (code) => resolve({ code: code ?? -1, out, err }));
  });
}
const admin = async (method: string, path: string) => {
  const res = await fetch(`${svc.url}/admin/api${path}`, { method, headers: { authorization: `Bearer ${ADMIN}` } });
  return { status: res.status, json: (await res.json()) as any };
};
const metric = async (name: string, labels = "") => {
  const text = await (await fetch(`${svc.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`openclaw_webhooks_${name}${labels} `) || l === `openclaw_webhooks_${name}${labels}`);
  return line === undefined ? undefined : Number(line.split(" ").at(-1));
};
const deliveredIds = () => rx.received.map((r) => JSON.parse(r.body).id as string);
/** Makes the publish script fail for this event: its delivery record's key holds a string. */
const poison = (eventId: string) => probe.set(createKeys(P).delivery.record(deliveryId(eventId, "crm")), "not a hash");
const cure = (eventId: string) => probe.del(createKeys(P).delivery.record(deliveryId(eventId, "crm")));

before(async () => {
  redis = await startRedis();
  rx = await startReceiver({ secret: WHSEC });
  P = redis.prefix();
  probe = new Redis(redis.url);
  svc = await startService(
    {
      redis: { url: redis.url, prefix: P },
      admin: { token: ADMIN },
      webhooks: { publishToken: PUBLISH, allowPrivateCidrs: ["127.0.0.0/8"], endpoints: [{ name: "crm", url: rx.url, secret: WHSEC, events: ["*"] }] },
    },
    { log: createLogger({ level: "info", destination: { write: (line: string) => void logLines.push(JSON.parse(line)) } }) },
  );
  await svc.deps.egress!.startWorker();
});
after(async () => {
  await svc.close();
  await rx.close();
  probe.disconnect();
  await redis.dispose();
});

describe("parked events", () => {
  test("a permanent failure on the Gateway's path is parked (metric, log, admin API, CLI); the next event is delivered; replayed once fixed, it is delivered", async () => {
    const id = "manual:job-7:1700000000000:1";
    const pk = parkedId(id);
    await poison(id);
    svc.deps.events!.emit({ type: "cron.finished", data: { jobId: "job-7" }, id, source: "gateway" });
    svc.deps.events!.emit({ type: "cron.finished", data: { jobId: "job-8" }, id: "cron_job-8_1", source: "gateway" });
    await until(() => deliveredIds().includes("cron_job-8_1"));
    assert.equal(svc.deps.events!.pending, 0, "nothing waits behind the parked event");

    const line = logLines.find((l) => l.msg.startsWith("event parked"));
    assert.deepEqual([line?.level, line?.eventId, line?.type, line?.source], [50, id, "cron.finished", "gateway"], "an error line names the event");
    assert.match(line.reason, /WRONGTYPE/);
    assert.equal(await metric("events_parked_total", '{source="gateway"}'), 1);
    assert.equal(await metric("events_parked"), 1);

    const list = await admin("GET", "/parked");
    assert.equal(list.status, 200);
    assert.equal(list.json.result.total, 1);
    const [entry] = list.json.result.parked;
    assert.deepEqual(
      [entry.parkedId, entry.eventId, entry.type, entry.source, entry.replayable, entry.storedIn, entry.times],
      [pk, id, "cron.finished", "gateway", true, "redis", 1],
    );
    assert.match(entry.reason, /WRONGTYPE/);
    assert.equal(entry.data, undefined, "the list leaves the data out");
    assert.deepEqual((await admin("GET", `/parked/${encodeURIComponent(pk)}`)).json.result.parked.data, { jobId: "job-7" });

    const table = await cli(["parked", "list"]);
    assert.equal(table.code, 0, table.err);
    assert.match(table.out, /^ID\s+EVENT ID\s+TYPE\s+SOURCE\s+PARKED\s+TIMES\s+REASON/);
    assert.ok(table.out.includes(pk) && table.out.includes("WRONGTYPE"));
    const json = await cli(["parked", "list", "--json"]);
    assert.deepEqual(
      JSON.parse(json.out).parked.map((p: any) => p.eventId),
      [id],
    );
    const show = await cli(["parked", "show", pk]);
    assert.equal(show.code, 0, show.err);
    assert.match(show.out, /replay\s+possible/);

    // Not fixed yet: the replay is refused and the entry stays (parked a second time).
    const early = await cli(["parked", "replay", pk]);
    assert.equal(early.code, 1);
    assert.match(early.err, /409 replay_failed/);
    assert.equal((await admin("GET", `/parked/${encodeURIComponent(pk)}`)).json.result.parked.times, 2);

    await cure(id);
    const replay = await cli(["parked", "replay", pk]);
    assert.equal(replay.code, 0, replay.err);
    assert.match(replay.out, /1 delivery\(ies\) queued/);
    await until(() => deliveredIds().includes(id));
    const got = rx.received.find((r) => JSON.parse(r.body).id === id)!;
    assert.equal(got.verified, true);
    assert.equal(got.headers["webhook-id"], deliveryId(id, "crm"));
    assert.deepEqual(JSON.parse(got.body).data, { jobId: "job-7" });

    assert.equal((await admin("GET", "/parked")).json.result.total, 0);
    assert.equal(await metric("events_parked"), 0);
    assert.equal((await cli(["parked", "list"])).out, "no parked events\n");
    const gone = await cli(["parked", "replay", pk]);
    assert.deepEqual([gone.code, /404 not_found/.test(gone.err)], [1, true]);
  });

  test("POST /v1/events answers 202 parked: true; discard removes it; an unserialisable payload is parked but cannot be replayed", async () => {
    await poison("api-poison");
    const r = await post(`${svc.url}/v1/events`, { type: "lead.qualified", data: { x: 1 }, id: "api-poison" }, { secret: PUBLISH });
    assert.equal(r.status, 202, r.text);
    assert.deepEqual([r.json.parked, r.json.deliveries], [true, 0]);
    const next = await post(`${svc.url}/v1/events`, { type: "lead.qualified", data: {}, id: "api-next" }, { secret: PUBLISH });
    assert.equal(next.status, 202);
    await until(() => deliveredIds().includes("api-next"));

    const discard = await cli(["parked", "discard", "pk_api-poison"]);
    assert.equal(discard.code, 0, discard.err);
    assert.equal(discard.out, "pk_api-poison discarded\n");
    assert.equal((await cli(["parked", "discard", "pk_api-poison"])).code, 1);
    await cure("api-poison");

    const out = await svc.deps.egress!.publish({ type: "lead.big", data: { n: 10n }, id: "bigint-1", source: "flow" });
    assert.match(out.parked!.reason, /BigInt/);
    const entry = (await admin("GET", "/parked/pk_bigint-1")).json.result.parked;
    assert.deepEqual([entry.replayable, entry.source, entry.data], [false, "flow", undefined]);
    const replay = await admin("POST", "/parked/pk_bigint-1/replay");
    assert.deepEqual([replay.status, replay.json.code], [409, "not_replayable"]);
    assert.equal((await admin("POST", "/parked/pk_bigint-1/discard")).status, 200);
    assert.equal((await admin("GET", "/parked/no-such-id")).status, 404);
  });

  test("when Redis refuses the parked entry too, it is kept in memory (the API answers 503), and moves to Redis once it can", async () => {
    await poison("both-fail");
    await probe.set(createKeys(P).parked.items, "not a hash");
    const r = await post(`${svc.url}/v1/events`, { type: "lead.qualified", data: {}, id: "both-fail" }, { secret: PUBLISH });
    assert.deepEqual([r.status, r.json.code], [503, "storage_unavailable"]);
    let list = (await admin("GET", "/parked")).json.result;
    assert.deepEqual(
      list.parked.map((p: any) => [p.eventId, p.storedIn]),
      [["both-fail", "memory"]],
    );
    assert.equal(await metric("events_parked"), 1);
    await probe.del(createKeys(P).parked.items);
    list = (await admin("GET", "/parked")).json.result;
    assert.deepEqual(
      list.parked.map((p: any) => [p.eventId, p.storedIn]),
      [["both-fail", "redis"]],
    );
    assert.equal(await probe.hexists(createKeys(P).parked.items, "pk_both-fail"), 1);
    await cure("both-fail");
    assert.equal((await admin("POST", "/parked/pk_both-fail/replay")).status, 202);
    await until(() => deliveredIds().includes("both-fail"));
  });
});
