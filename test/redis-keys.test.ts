import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { startReceiver } from "./support/receiver.js";
import { useRedisAndGateway } from "./support/shared.js";
import { startService, type TestService } from "./support/service.js";
import { until } from "./support/until.js";

/**
 * The key registry (src/redis-keys.ts) is the whole truth: after every surface has been used
 * (limits, a wrong credential, a dashboard login, idempotency, an inbound run, publish, a
 * delivery that succeeds and one that fails, a replay), every key under the prefix belongs to a
 * family the registry lists.
 */
const GW_TOKEN = "gw-token-0123456789abcdef";
const SECRET = "route-secret-0123456789abcdef";
const TOKEN = "inbound-token-0123456789abcdef";
const PUBLISH = "publish-token-0123456789abcdef";
const ADMIN = "admin-token-0123456789abcdef";
const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const shared = useRedisAndGateway(GW_TOKEN);
const prefix = `keys-${process.pid}:`;
let svc: TestService;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let down: Awaited<ReturnType<typeof startReceiver>>;

describe("the key registry", () => {
  before(async () => {
    rx = await startReceiver({ secret: WHSEC });
    down = await startReceiver();
    down.setFallback({ status: 500, body: "no" });
    svc = await startService({
      redis: { url: shared.redis.url, prefix },
      gateway: { url: shared.gw.url, token: GW_TOKEN },
      admin: { token: ADMIN },
      routes: { a: { path: "/hooks/a", sessionKey: "agent:main:hook:a", secret: SECRET } },
      webhooks: {
        publishToken: PUBLISH,
        allowPrivateCidrs: ["127.0.0.0/8"],
        endpoints: [
          { name: "ok", url: rx.url, secret: WHSEC, events: ["*"] },
          { name: "down", url: down.url, secret: WHSEC, events: ["order.*"], retry: { schedule: [] } },
        ],
        inbound: { endpoints: { tok: { template: "Alert {{body.title}}", auth: { scheme: "token", secret: TOKEN } } } },
      },
    } as never);
    await svc.deps.egress!.startWorker();
  });
  after(async () => {
    await svc?.close();
    await rx?.close();
    await down?.close();
  });

  /** The registry's families as patterns over the key after the prefix. */
  const FAMILIES: [string, RegExp][] = [
    ["window", /^window:\{.+\}$/],
    ["inflight", /^inflight:\{.+\}$/],
    ["authfail", /^authfail:\{.+\}$/],
    ["session", /^session:\{.+\}$/],
    ["idem", /^idem:.+$/],
    ["inbound-run", /^inbound-run:(\{[^{}]+\}:inbound:.+|\{[^{}]+\})$/],
    ["inbound-runs", /^inbound-runs:\{[^{}]+\}$/],
    ["event", /^event:.+$/],
    ["delivery", /^delivery:\{[^{}:]+\}:dlvh?_.+$/],
    ["deliveries", /^deliveries:\{[^{}:]+\}:(all|pending|delivered|failed)$/],
    ["endpoint", /^endpoint:\{[^{}:]+\}:(state|stats:\d+)$/],
    ["replay", /^replay:.+$/],
    ["parked", /^parked:\{parked\}:(items|at)$/],
    ["bull", /^bull:(\{[^{}]+\}:)?deliveries(\.[^:]+)?:.+$/],
  ];

  test("every key the service wrote belongs to a family of the registry", async () => {
    const json = { "content-type": "application/json" };
    const post = (path: string, body: unknown, headers: Record<string, string>) =>
      fetch(`${svc.url}${path}`, { method: "POST", headers: { ...json, ...headers }, body: JSON.stringify(body) });
    await post("/hooks/a", { action: "create_flow", goal: "g" }, { authorization: `Bearer ${SECRET}`, "idempotency-key": "k-1" });
    await post("/hooks/a", { action: "list_flows" }, { authorization: "Bearer wrong-secret-0123456789" });
    await post("/webhooks/inbound/tok", { title: "t" }, { authorization: `Bearer ${TOKEN}`, "webhook-id": "msg-1" });
    await fetch(`${svc.url}/dashboard/login`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `token=${ADMIN}`,
      redirect: "manual",
    });
    const pub = (await (await post("/v1/events", { type: "order.created", data: { n: 1 } }, { authorization: `Bearer ${PUBLISH}` })).json()) as { id: string };
    await until(() => rx.received.some((r) => JSON.parse(r.body).id === pub.id) && down.received.length > 0, 10_000);
    const admin = { authorization: `Bearer ${ADMIN}` };
    const failed = async () =>
      ((await (await fetch(`${svc.url}/admin/api/deliveries?status=failed&endpoint=down`, { headers: admin })).json()) as any).result.deliveries;
    await until(async () => (await failed()).length === 1, 10_000);
    const replay = await fetch(`${svc.url}/admin/api/deliveries/${(await failed())[0].id}/replay`, { method: "POST", headers: admin });
    assert.equal(replay.status, 202);

    const r = new Redis(shared.redis.url);
    try {
      const keys = new Set<string>();
      let cursor = "0";
      do {
        const [next, batch] = await r.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1_000);
        cursor = next;
        for (const k of batch) keys.add(k.slice(prefix.length));
      } while (cursor !== "0");
      const unknown = [...keys].filter((k) => !FAMILIES.some(([, re]) => re.test(k)));
      assert.deepEqual(unknown, [], "keys outside the registry");
      const seen = new Set([...keys].map((k) => FAMILIES.find(([, re]) => re.test(k))![0]));
      for (const f of ["window", "authfail", "session", "idem", "inbound-run", "inbound-runs", "event", "delivery", "deliveries", "endpoint", "bull"])
        assert.ok(seen.has(f), `${f} was written and checked`);
      console.log(`# redis keys: ${keys.size} keys in ${seen.size} families, all registered`);
    } finally {
      r.disconnect();
    }
  });
});
