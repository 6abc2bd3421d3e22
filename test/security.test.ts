import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Webhook } from "standardwebhooks";
import { useRedisAndGateway } from "./support/shared.js";
import { startService, type TestService } from "./support/service.js";

/**
 * One security table for every surface (issue #16), in the style of Unkey's shared route tests:
 * each row is a surface with how a caller authenticates; each column is a hostile request every
 * surface must refuse the same way, with its precise status, never a 5xx, and nothing done.
 * Adding a surface means adding a row.
 */
const GW_TOKEN = "gw-token-0123456789abcdef";
const ROUTE_SECRET = "route-secret-0123456789abcdef";
const TOKEN = "inbound-token-0123456789abcdef";
const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const GITHUB = "github-secret-0123456789abcdef";
const STRIPE = "whsec_stripe-secret-0123456789abcdef";
const HMAC = "hmac-secret-0123456789abcdef";
const PUBLISH = "publish-token-0123456789abcdef";
const ADMIN = "admin-token-0123456789abcdef";
/** Wrong credentials a client may send per window on all surfaces together (limits.authFailures.max). */
const GUESSES = 5;
/** A fresh client address for each request (the benchmarking range 198.18.0.0/15: it is only a header here). */
let clients = 0;
const client = () => {
  clients++;
  return `198.18.${clients >> 8}.${clients & 255}`;
};
/** The general body limit (limits.maxBodyBytes, 256 KiB by default). */
const MAX_BODY = 256 * 1024;

const shared = useRedisAndGateway(GW_TOKEN);
let svc: TestService;

type Signed = { body: string; headers: Record<string, string> };
type Surface = {
  name: string;
  path: string;
  /** A request with good credentials for `body`, or wrong ones. */
  sign: (body: string, good: boolean) => Signed;
  /** A body the surface accepts (shape-wise). */
  body: () => string;
  /** Where a deep value goes: the whole body, or a field of it. */
  deep: (depth: number) => string;
  media: string;
  /** What good credentials with the valid body answer (the surface works at all). */
  ok: number[];
  /** A wrong method's answer: 405 on POST surfaces (404 where the path also serves GET). */
  wrongMethod: { method: string; status: number };
};

const bearer =
  (secret: string) =>
  (body: string, good: boolean): Signed => ({ body, headers: { authorization: `Bearer ${good ? secret : `${secret}x`}` } });
const nested = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;
let seq = 0;
const id = () => `sec-${process.pid}-${++seq}`;

const SURFACES: Surface[] = [
  {
    name: "TaskFlow route (Bearer)",
    path: "/hooks/a",
    sign: bearer(ROUTE_SECRET),
    body: () => JSON.stringify({ action: "list_flows" }),
    deep: (d) => `{"action":"create_flow","goal":"g","stateJson":${nested(d)}}`,
    media: "application/json",
    ok: [200],
    wrongMethod: { method: "PUT", status: 405 },
  },
  {
    name: "inbound, token",
    path: "/webhooks/inbound/tok",
    sign: (body, good) => ({ body, headers: { authorization: `Bearer ${good ? TOKEN : "wrong-token-0123456789abcdef"}`, "webhook-id": id() } }),
    body: () => JSON.stringify({ title: "t" }),
    deep: (d) => `{"title":${nested(d)}}`,
    media: "application/json",
    ok: [202],
    wrongMethod: { method: "PUT", status: 405 },
  },
  {
    name: "inbound, standard-webhooks",
    path: "/webhooks/inbound/sw",
    sign: (body, good) => {
      const msgId = id();
      const at = new Date();
      const signature = new Webhook(good ? WHSEC : "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").sign(msgId, at, body);
      return { body, headers: { "webhook-id": msgId, "webhook-timestamp": String(Math.floor(at.getTime() / 1000)), "webhook-signature": signature } };
    },
    body: () => JSON.stringify({ title: "t" }),
    deep: (d) => `{"title":${nested(d)}}`,
    media: "application/json",
    ok: [202],
    wrongMethod: { method: "DELETE", status: 405 },
  },
  {
    name: "inbound, github",
    path: "/webhooks/inbound/gh",
    sign: (body, good) => ({
      body,
      headers: {
        "x-github-delivery": id(),
        "x-github-event": "push",
        "x-hub-signature-256": `sha256=${createHmac("sha256", good ? GITHUB : `${GITHUB}x`)
          .update(body)
          .digest("hex")}`,
      },
    }),
    body: () => JSON.stringify({ repository: { full_name: "o/r" } }),
    deep: (d) => `{"repository":${nested(d)}}`,
    media: "application/json",
    ok: [202],
    wrongMethod: { method: "PATCH", status: 405 },
  },
  {
    name: "inbound, stripe",
    path: "/webhooks/inbound/stripe",
    sign: (body, good) => {
      const t = Math.floor(Date.now() / 1000);
      const v1 = createHmac("sha256", good ? STRIPE : `${STRIPE}x`)
        .update(`${t}.${body}`)
        .digest("hex");
      return { body, headers: { "stripe-signature": `t=${t},v1=${v1}` } };
    },
    body: () => JSON.stringify({ id: id(), type: "invoice.paid" }),
    deep: (d) => `{"id":"${id()}","type":${nested(d)}}`,
    media: "application/json",
    ok: [202],
    wrongMethod: { method: "PUT", status: 405 },
  },
  {
    name: "inbound, hmac",
    path: "/webhooks/inbound/hm",
    sign: (body, good) => ({
      body,
      headers: {
        "webhook-id": id(),
        "x-signature": `sha256=${createHmac("sha256", good ? HMAC : `${HMAC}x`)
          .update(body)
          .digest("hex")}`,
      },
    }),
    body: () => JSON.stringify({ title: "t" }),
    deep: (d) => `{"title":${nested(d)}}`,
    media: "application/json",
    ok: [202],
    wrongMethod: { method: "PUT", status: 405 },
  },
  {
    name: "publish (POST /v1/events)",
    path: "/v1/events",
    sign: bearer(PUBLISH),
    body: () => JSON.stringify({ type: "lead.qualified", data: { n: 1 } }),
    deep: (d) => `{"type":"lead.qualified","data":{"x":${nested(d)}}}`,
    media: "application/json",
    ok: [202],
    wrongMethod: { method: "PUT", status: 405 },
  },
  {
    name: "admin API (bulk replay)",
    path: "/admin/api/deliveries/replay",
    sign: bearer(ADMIN),
    body: () => JSON.stringify({ endpoint: "crm", since: "1h" }),
    deep: (d) => `{"endpoint":"crm","since":${nested(d)}}`,
    media: "application/json",
    ok: [202],
    wrongMethod: { method: "PUT", status: 404 },
  },
  {
    name: "dashboard login (form)",
    path: "/dashboard/login",
    sign: (body, good) => ({ body: body.replace("TOKEN", encodeURIComponent(good ? ADMIN : `${ADMIN}x`)), headers: {} }),
    body: () => "token=TOKEN",
    deep: (d) => `token=TOKEN&x=${"[".repeat(d)}`,
    media: "application/x-www-form-urlencoded",
    ok: [303],
    wrongMethod: { method: "PUT", status: 404 },
  },
];

/** Every answer the table got, by status: the figure it prints. */
const tally = new Map<number, number>();
async function send(s: Surface, req: Signed, opts: { method?: string; media?: string; path?: string; from?: string } = {}) {
  const started = performance.now();
  const res = await fetch(`${svc.url}${opts.path ?? s.path}`, {
    method: opts.method ?? "POST",
    headers: { "content-type": opts.media ?? s.media, "x-forwarded-for": opts.from ?? client(), ...req.headers },
    body: req.body,
    redirect: "manual",
  });
  const text = await res.text();
  tally.set(res.status, (tally.get(res.status) ?? 0) + 1);
  return { status: res.status, headers: res.headers, text, ms: performance.now() - started };
}
/** The service's JSON envelope with this code (the dashboard's login form answers HTML). */
function envelope(s: Surface, r: { text: string }, code: string) {
  if (s.media !== "application/json") return;
  const body = JSON.parse(r.text);
  assert.equal(body.ok, false, r.text);
  assert.equal(body.code, code, r.text);
}

describe("security table: every surface refuses the same hostile requests the same way", () => {
  before(async () => {
    svc = await startService({
      redis: { url: shared.redis.url, prefix: `sec-${process.pid}:` },
      gateway: { url: shared.gw.url, token: GW_TOKEN },
      admin: { token: ADMIN },
      // Each request comes as its own client (X-Forwarded-For from the trusted loopback proxy), so
      // one column's wrong credentials do not lock out the next.
      server: { host: "127.0.0.1", port: 0, trustedProxies: ["127.0.0.1"] },
      limits: { authFailures: { max: GUESSES, windowMs: 60_000 } },
      routes: { a: { path: "/hooks/a", sessionKey: "agent:main:hook:a", secret: ROUTE_SECRET } },
      webhooks: {
        publishToken: PUBLISH,
        allowPrivateCidrs: ["127.0.0.0/8"],
        endpoints: [{ name: "crm", url: "http://127.0.0.1:9/hook", secret: WHSEC, events: ["lead.*"] }],
        inbound: {
          endpoints: {
            tok: { template: "Alert {{body.title}}", auth: { scheme: "token", secret: TOKEN } },
            sw: { template: "Alert {{body.title}}", auth: { scheme: "standard-webhooks", secret: WHSEC } },
            gh: { template: "Push to {{body.repository.full_name}}", auth: { scheme: "github", secret: GITHUB } },
            stripe: { template: "Stripe {{body.type}}", auth: { scheme: "stripe", secret: STRIPE } },
            hm: { template: "Alert {{body.title}}", auth: { scheme: "hmac", secret: HMAC, header: "x-signature", prefix: "sha256=" } },
          },
        },
      },
    } as never);
  });
  after(async () => {
    await svc?.close();
  });

  for (const s of SURFACES) {
    describe(s.name, () => {
      test("good credentials work (the row is live)", async () => {
        const r = await send(s, s.sign(s.body(), true));
        assert.ok(s.ok.includes(r.status), `${r.status} ${r.text}`);
      });

      test("missing credentials: 401", async () => {
        const r = await send(s, { body: s.body().replace("TOKEN", ""), headers: {} });
        assert.equal(r.status, 401, r.text);
        envelope(s, r, "unauthorized");
      });

      test("wrong credentials: 401", async () => {
        const r = await send(s, s.sign(s.body(), false));
        assert.equal(r.status, 401, r.text);
        envelope(s, r, "unauthorized");
      });

      test(`guessing: after ${GUESSES} wrong credentials from one client, 429 with Retry-After, even with the right one; another client is unaffected`, async () => {
        const guesser = client();
        for (let i = 0; i < GUESSES; i++) assert.equal((await send(s, s.sign(s.body(), false), { from: guesser })).status, 401);
        const locked = await send(s, s.sign(s.body(), true), { from: guesser });
        assert.equal(locked.status, 429, locked.text);
        assert.ok(Number(locked.headers.get("retry-after")) >= 1, `Retry-After: ${locked.headers.get("retry-after")}`);
        envelope(s, locked, "auth_rate_limited");
        const other = await send(s, s.sign(s.body(), true));
        assert.ok(s.ok.includes(other.status), `${other.status} ${other.text}`);
      });

      test("a body over the limit: 413, before the credentials are even checked", async () => {
        const big = s.media === "application/json" ? `{"x":"${"a".repeat(MAX_BODY * 4)}"}` : `token=${"a".repeat(MAX_BODY * 4)}`;
        const r = await send(s, s.sign(big, true));
        assert.equal(r.status, 413, r.text.slice(0, 300));
      });

      test("JSON nested 5,000 and 20,000 deep, correctly signed: 4xx, never 5xx", async () => {
        for (const depth of [5_000, 20_000]) {
          const r = await send(s, s.sign(s.deep(depth), true));
          assert.ok(r.status >= 400 && r.status < 500, `${depth} deep: ${r.status} ${r.text.slice(0, 300)}`);
        }
      });

      test("a wrong method: refused with its precise status", async () => {
        const r = await send(s, s.sign(s.body(), true), { method: s.wrongMethod.method });
        assert.equal(r.status, s.wrongMethod.status, r.text);
      });

      test("a wrong media type: 415", async () => {
        const r = await send(s, s.sign(s.body(), true), { media: "text/plain" });
        assert.equal(r.status, 415, r.text);
      });
    });
  }

  after(() => {
    const all = [...tally].sort(([a], [b]) => a - b);
    const n = all.reduce((sum, [, c]) => sum + c, 0);
    const fivexx = all.filter(([st]) => st >= 500).reduce((sum, [, c]) => sum + c, 0);
    console.log(`security table: ${SURFACES.length} surfaces, ${n} requests, ${fivexx} 5xx (${all.map(([st, c]) => `${c} × ${st}`).join(", ")})`);
    assert.equal(fivexx, 0);
  });

  test("odd ids in paths and headers: 4xx or a normal answer, never 5xx", async () => {
    const odd = ["%00", "%FF%FE", "a%0D%0Ab", "..%2F..%2Fetc", "x".repeat(2_000), "%F0%9F%92%A9", "dlv_:::", "%25"];
    const statuses: number[] = [];
    for (const x of odd) {
      for (const [method, path] of [
        ["GET", `/admin/api/deliveries/${x}`],
        ["POST", `/admin/api/deliveries/${x}/replay`],
        ["GET", `/admin/api/parked/${x}`],
        ["POST", `/admin/api/endpoints/${x}/test`],
        ["POST", `/webhooks/inbound/${x}`],
      ] as const) {
        const res = await fetch(`${svc.url}${path}`, {
          method,
          headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
          ...(method === "POST" ? { body: "{}" } : {}),
        });
        await res.text();
        statuses.push(res.status);
        assert.ok(res.status < 500, `${method} ${path.slice(0, 80)}: ${res.status}`);
      }
    }
    // Odd delivery ids from the sender, on a signed inbound request.
    const tok = SURFACES.find((s) => s.path.endsWith("/tok"))!;
    for (const deliveryId of ["", " ", "a\u0000b", "é".repeat(300), "x".repeat(5_000), "../../x", ":"]) {
      const req = tok.sign(tok.body(), true);
      const r = await send(tok, { body: req.body, headers: { ...req.headers, "webhook-id": encodeURIComponent(deliveryId) } });
      assert.ok(r.status < 500, `delivery id ${JSON.stringify(deliveryId.slice(0, 20))}: ${r.status} ${r.text}`);
    }
    assert.ok(
      statuses.every((st) => st === 400 || st === 404),
      statuses.join(","),
    );
  });
});
