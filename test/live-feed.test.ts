import assert from "node:assert/strict";
import { request, type ClientRequest, type IncomingMessage } from "node:http";
import { after, before, test } from "node:test";
import { Redis } from "ioredis";
import { startReceiver } from "./support/receiver.js";
import { startRedis, type TestRedis } from "./support/redis.js";
import { startService, type TestService } from "./support/service.js";

// Issue #16 item 10: live updates are read from Redis by one poller per replica and fanned out to
// every subscriber, only while there is one; the number of subscribers is bounded (503 beyond).

const ADMIN = "admin-token-0123456789";
const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const MAX = 100;
let redis: TestRedis;
let svc: TestService;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let probe: Redis;
let cookie: string;

before(async () => {
  redis = await startRedis();
  rx = await startReceiver({ secret: WHSEC });
  svc = await startService({
    redis: { url: redis.url, prefix: redis.prefix() },
    admin: { token: ADMIN, maxLiveSubscribers: MAX },
    webhooks: { allowPrivateCidrs: ["127.0.0.0/8"], endpoints: [{ name: "crm", url: rx.url, secret: WHSEC, events: ["lead.*"] }] },
  });
  for (let i = 0; i < 5; i++) await svc.deps.egress!.publish({ type: "lead.qualified", data: { i } });
  probe = new Redis(redis.url);
  const res = await fetch(`${svc.url}/dashboard/login`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token: ADMIN }).toString(),
  });
  cookie = res.headers.getSetCookie()[0]!.split(";")[0]!;
});
after(async () => {
  probe?.disconnect();
  await svc?.close();
  await rx?.close();
  await redis?.dispose();
});

type Sub = { req: ClientRequest; status: number; snapshots: number; res: IncomingMessage };

/** Opens one SSE subscriber on its own connection; resolves once the answer's head is in. */
function subscribe(): Promise<Sub> {
  return new Promise((resolve, reject) => {
    const req = request(`${svc.url}/dashboard/events`, { agent: false, headers: { cookie, accept: "text/event-stream" } }, (res) => {
      const sub: Sub = { req, status: res.statusCode!, snapshots: 0, res };
      res.setEncoding("utf8");
      res.on("data", (d: string) => (sub.snapshots += d.split("event: snapshot").length - 1));
      res.on("error", () => {});
      resolve(sub);
    });
    req.on("error", reject);
    req.end();
  });
}

/** Commands Redis processed per second over `ms`, minus the probe's own INFO calls. */
async function commandRate(ms = 2_000): Promise<number> {
  const read = async () => Number(/total_commands_processed:(\d+)/.exec(await probe.info("stats"))![1]);
  const a = await read();
  await new Promise((r) => setTimeout(r, ms));
  const b = await read();
  return ((b - a - 1) * 1000) / ms;
}

const until = async (check: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  return check();
};

test(`${MAX} live subscribers cost Redis about what one does; subscriber ${MAX + 1} gets 503`, async () => {
  const subs: Sub[] = [];
  try {
    subs.push(await subscribe());
    assert.equal(subs[0]!.status, 200);
    assert.ok(await until(() => subs[0]!.snapshots > 0), "the first subscriber gets a snapshot");
    const one = await commandRate();
    assert.ok(one > 0, "one subscriber polls Redis");

    for (let i = 1; i < MAX; i++) subs.push(await subscribe());
    assert.ok(subs.every((s) => s.status === 200));
    assert.ok(await until(() => subs.every((s) => s.snapshots > 0)), "every subscriber gets the snapshot");
    const many = await commandRate();
    assert.ok(many < one * 3, `${MAX} subscribers: ${many.toFixed(0)} commands/s vs ${one.toFixed(0)} for one`);

    // Fan-out: a change reaches every subscriber, from the one poll.
    const before = subs.map((s) => s.snapshots);
    await svc.deps.egress!.publish({ type: "lead.qualified", data: { late: true } });
    assert.ok(await until(() => subs.every((s, i) => s.snapshots > before[i]!)), "a new delivery reaches all subscribers");

    const extra = await subscribe();
    assert.equal(extra.status, 503);
    assert.ok(Number(extra.res.headers["retry-after"]) >= 1, "Retry-After on the refusal");
    extra.req.destroy();
  } finally {
    for (const s of subs) s.req.destroy();
  }
  // Nobody left: the poller stops, and a slot is free again.
  await new Promise((r) => setTimeout(r, 1_500));
  const idle = await commandRate();
  assert.ok(idle < 1, `no subscribers: ${idle.toFixed(1)} commands/s`);
  const again = await subscribe();
  assert.equal(again.status, 200);
  again.req.destroy();
});
