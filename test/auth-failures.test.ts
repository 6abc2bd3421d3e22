import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { request } from "node:http";
import { startRedis, type TestRedis } from "./support/redis.js";
import { post, startService, type TestService } from "./support/service.js";

// Issue #16 item 4: failed authentication attempts are limited per client IP, in Redis (so every
// replica counts them together), with 429 + Retry-After; another client with the right token is
// unaffected. Two replicas share one Redis; clients are told apart by X-Forwarded-For from a
// trusted proxy (127.0.0.1), and once by the socket's own address (127.0.0.2).

const ADMIN = "admin-token-0123456789";
const PUBLISH = "publish-token-0123456789";
const ROUTE_SECRET = "route-secret-0123456789";
const INBOUND_TOKEN = "inbound-token-0123456789";
const GH_SECRET = "github-secret-0123456789";
const MAX = 4;
let redis: TestRedis;
let a: TestService;
let b: TestService;
let ipSeq = 10;
const nextIp = () => `198.51.100.${ipSeq++}`;

before(async () => {
  redis = await startRedis();
  const prefix = redis.prefix();
  const cfg = {
    redis: { url: redis.url, prefix },
    server: { host: "127.0.0.1", port: 0, trustedProxies: ["127.0.0.1"] },
    admin: { token: ADMIN },
    limits: { authFailures: { max: MAX, windowMs: 60_000 } },
    routes: { r: { path: "/hooks/r", sessionKey: "agent:main:hook:r", secret: ROUTE_SECRET } },
    webhooks: {
      publishToken: PUBLISH,
      inbound: {
        endpoints: {
          tok: { action: "wake" as const, textTemplate: "hello", auth: { scheme: "token" as const, secret: INBOUND_TOKEN } },
          gh: { action: "wake" as const, textTemplate: "push", auth: { scheme: "github" as const, secret: GH_SECRET } },
        },
      },
    },
  };
  a = await startService(cfg);
  b = await startService(cfg);
});
after(async () => {
  await a?.close();
  await b?.close();
  await redis?.dispose();
});

type Attempt = (svc: TestService, ip: string, right: boolean) => Promise<{ status: number; headers: Headers; json: any }>;

const adminGet: Attempt = async (svc, ip, right) => {
  const res = await fetch(`${svc.url}/admin/api/routes`, {
    headers: { authorization: `Bearer ${right ? ADMIN : "wrong-admin-token"}`, "x-forwarded-for": ip },
  });
  return { status: res.status, headers: res.headers, json: await res.json().catch(() => undefined) };
};
const login: Attempt = async (svc, ip, right) => {
  const res = await fetch(`${svc.url}/dashboard/login`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", "x-forwarded-for": ip },
    body: new URLSearchParams({ token: right ? ADMIN : "wrong-admin-token" }).toString(),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, json };
};
const publish: Attempt = (svc, ip, right) =>
  post(`${svc.url}/v1/events`, { type: "lead.qualified", data: {} }, { secret: right ? PUBLISH : "wrong-publish", headers: { "x-forwarded-for": ip } });
const taskflow: Attempt = (svc, ip, right) =>
  post(`${svc.url}/hooks/r`, { action: "list_flows" }, { secret: right ? ROUTE_SECRET : "wrong-route", headers: { "x-forwarded-for": ip } });
const inboundToken: Attempt = (svc, ip, right) =>
  post(`${svc.url}/webhooks/inbound/tok`, { x: 1 }, { secret: right ? INBOUND_TOKEN : "wrong-inbound", headers: { "x-forwarded-for": ip } });
const inboundGithub: Attempt = (svc, ip, right) => {
  const body = JSON.stringify({ ref: "main" });
  const sig = createHmac("sha256", right ? GH_SECRET : "not-the-secret")
    .update(body)
    .digest("hex");
  return post(`${svc.url}/webhooks/inbound/gh`, body, { headers: { "x-hub-signature-256": `sha256=${sig}`, "x-forwarded-for": ip } });
};

const surfaces: [string, Attempt, number][] = [
  ["/admin/api", adminGet, 200],
  ["/dashboard/login", login, 303],
  ["POST /v1/events", publish, 202],
  ["TaskFlow route", taskflow, 200],
  ["inbound token endpoint", inboundToken, 200],
  ["inbound GitHub-signed endpoint", inboundGithub, 200],
];

describe("failed authentication attempts are limited per client, across replicas", () => {
  for (const [name, attempt, okStatus] of surfaces) {
    test(`${name}: ${MAX} wrong tokens are 401, the next is 429 with Retry-After; the locked client stays locked; another client gets in`, async () => {
      const attacker = nextIp();
      // Alternate replicas: the count lives in Redis, not in either process.
      for (let i = 0; i < MAX; i++) {
        const r = await attempt(i % 2 ? b : a, attacker, false);
        assert.equal(r.status, 401, `attempt ${i + 1}`);
      }
      const limited = await attempt(b, attacker, false);
      assert.equal(limited.status, 429);
      const retryAfter = Number(limited.headers.get("retry-after"));
      assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${limited.headers.get("retry-after")}`);
      assert.equal(limited.json?.ok, false);
      assert.equal(limited.json?.code, "auth_rate_limited");
      // Locked out means locked out: the right token from the same client waits for its window too.
      assert.equal((await attempt(a, attacker, true)).status, 429);
      // Another client, on either replica, is unaffected.
      assert.equal((await attempt(a, nextIp(), true)).status, okStatus);
      assert.equal((await attempt(b, nextIp(), true)).status, okStatus);
    });
  }

  test("one count per client across every surface", async () => {
    const ip = nextIp();
    for (let i = 0; i < MAX; i++) assert.equal((await surfaces[i % surfaces.length]![1](i % 2 ? a : b, ip, false)).status, 401);
    assert.equal((await adminGet(a, ip, false)).status, 429);
    assert.equal((await publish(b, ip, true)).status, 429);
  });

  test("a client told apart by its socket address (127.0.0.2), not by a header", async () => {
    // The direct socket 127.0.0.1 is the trusted proxy; without X-Forwarded-For the client is the socket.
    const from2 = (svc: TestService, token: string) =>
      new Promise<{ status: number; retryAfter: string | undefined }>((resolve, reject) => {
        const req = request(`${svc.url}/admin/api/routes`, { localAddress: "127.0.0.2", headers: { authorization: `Bearer ${token}` } }, (res) => {
          res.resume();
          res.on("end", () => resolve({ status: res.statusCode!, retryAfter: res.headers["retry-after"] as string | undefined }));
        });
        req.on("error", reject);
        req.end();
      });
    for (let i = 0; i < MAX; i++) assert.equal((await from2(i % 2 ? a : b, "nope")).status, 401);
    const r = await from2(b, ADMIN);
    assert.equal(r.status, 429);
    assert.ok(Number(r.retryAfter) >= 1);
    const direct = await fetch(`${b.url}/admin/api/routes`, { headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(direct.status, 200, "127.0.0.1 is another client");
  });

  test("requests that present no credential at all are not guesses and are not counted", async () => {
    const ip = nextIp();
    for (let i = 0; i < MAX * 3; i++) {
      const r = await fetch(`${a.url}/admin/api/routes`, { headers: { "x-forwarded-for": ip } });
      await r.arrayBuffer();
      assert.equal(r.status, 401);
    }
    assert.equal((await adminGet(a, ip, true)).status, 200);
  });
});
