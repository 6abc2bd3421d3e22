import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, test } from "node:test";
import { startRedis, type TestRedis } from "./support/redis.js";
import { startService, type TestService } from "./support/service.js";

// Issue #16 items 8 and 9: the dashboard and the admin API refuse to be framed; each login is its
// own server-side session (Redis), ended by logout and by a change of the admin token; the login,
// logout and cookie-authenticated POSTs refuse other sites; the cookie is Secure behind HTTPS.

const ADMIN = "admin-token-0123456789";
let redis: TestRedis;
let prefix: string;
let svc: TestService;

const config = (token: string) => ({
  redis: { url: redis.url, prefix },
  server: { host: "127.0.0.1", port: 0, trustedProxies: ["127.0.0.1"] },
  admin: { token },
  limits: { authFailures: { max: 100, windowMs: 60_000 } },
});

before(async () => {
  redis = await startRedis();
  prefix = redis.prefix();
  svc = await startService(config(ADMIN));
});
after(async () => {
  await svc?.close();
  await redis?.dispose();
});

type Answer = { status: number; headers: Record<string, string | string[] | undefined>; body: string };

/** A raw request (node:http, so the socket's local address and every header can be chosen). */
function send(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string; localAddress?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: opts.method ?? "GET", headers: opts.headers, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

async function login(s: TestService, token = ADMIN, headers: Record<string, string> = {}, localAddress?: string) {
  const res = await send(`${s.url}/dashboard/login`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams({ token }).toString(),
    ...(localAddress ? { localAddress } : {}),
  });
  const setCookie = ([] as string[]).concat(res.headers["set-cookie"] ?? []);
  const line = setCookie.find((l) => l.startsWith("ocwh_admin="));
  return { ...res, line, cookie: line?.split(";")[0] };
}

const signedIn = async (s: TestService, cookie: string) => {
  const page = await send(`${s.url}/dashboard`, { headers: { cookie } });
  return page.body.includes('action="/dashboard/logout"') && !page.body.includes('id="token"');
};
const events = async (s: TestService, cookie: string) => {
  const ac = new AbortController();
  const res = await fetch(`${s.url}/dashboard/events`, { headers: { cookie }, signal: ac.signal });
  ac.abort();
  return res.status;
};

describe("framing", () => {
  test("the dashboard (signed in or not) and the admin API forbid framing", async () => {
    const { cookie } = await login(svc);
    const answers = [
      await send(`${svc.url}/dashboard`),
      await send(`${svc.url}/dashboard`, { headers: { cookie: cookie! } }),
      await send(`${svc.url}/admin/api/routes`, { headers: { authorization: `Bearer ${ADMIN}` } }),
      await send(`${svc.url}/admin/api/routes`),
    ];
    for (const a of answers) {
      assert.equal(a.headers["x-frame-options"], "DENY", `X-Frame-Options on ${a.status}`);
      assert.match(String(a.headers["content-security-policy"]), /frame-ancestors 'none'/);
    }
  });
});

describe("sessions", () => {
  test("each login gets its own session; logout ends that one only", async () => {
    const one = await login(svc);
    const two = await login(svc);
    assert.equal(one.status, 303);
    assert.ok(one.cookie && two.cookie);
    assert.notEqual(one.cookie, two.cookie, "two logins, two cookies");
    assert.ok(!one.cookie.includes(ADMIN));
    assert.ok(await signedIn(svc, one.cookie));
    assert.ok(await signedIn(svc, two.cookie));

    const out = await send(`${svc.url}/dashboard/logout`, { method: "POST", headers: { cookie: one.cookie, origin: svc.url } });
    assert.equal(out.status, 303);
    assert.equal(await signedIn(svc, one.cookie), false, "the old cookie gets the login page after logout");
    assert.equal(await events(svc, one.cookie), 401);
    assert.ok(await signedIn(svc, two.cookie), "the other session goes on");
  });

  test("a cross-site POST to logout, login or replay is refused", async () => {
    const { cookie } = await login(svc);
    const otherSite = "http://127.0.0.1:1"; // another port is another origin
    const refusedLogout = await send(`${svc.url}/dashboard/logout`, { method: "POST", headers: { cookie: cookie!, origin: otherSite } });
    assert.equal(refusedLogout.status, 403);
    const fetchMeta = await send(`${svc.url}/dashboard/logout`, { method: "POST", headers: { cookie: cookie!, "sec-fetch-site": "cross-site" } });
    assert.equal(fetchMeta.status, 403);
    assert.ok(await signedIn(svc, cookie!), "still signed in");

    const crossLogin = await login(svc, ADMIN, { origin: otherSite });
    assert.equal(crossLogin.status, 403);
    assert.equal(crossLogin.cookie, undefined);

    const replay = await send(`${svc.url}/admin/api/deliveries/x/replay`, {
      method: "POST",
      headers: { cookie: cookie!, "x-dashboard": "1", origin: otherSite },
    });
    assert.equal(replay.status, 403);
    // The same page's own requests pass.
    assert.equal((await login(svc, ADMIN, { origin: svc.url, "sec-fetch-site": "same-origin" })).status, 303);
  });

  test("a session outlives a restart, but not a change of the admin token", async () => {
    const { cookie } = await login(svc);
    await svc.close();
    svc = await startService(config(ADMIN));
    assert.ok(await signedIn(svc, cookie!), "same token: the session is in Redis and still works");
    await svc.close();
    svc = await startService(config("rotated-admin-token-9876543210"));
    assert.equal(await signedIn(svc, cookie!), false, "rotated token: the old session is over");
    assert.equal(await events(svc, cookie!), 401);
    await svc.close();
    svc = await startService(config(ADMIN));
  });

  test("the cookie is Secure only when the request came over HTTPS through a trusted proxy", async () => {
    const behindTls = await login(svc, ADMIN, { "x-forwarded-proto": "https" });
    assert.match(behindTls.line!, /;\s*Secure/i);
    assert.match(behindTls.line!, /HttpOnly/i);
    assert.match(behindTls.line!, /SameSite=Strict/i);
    const plain = await login(svc);
    assert.doesNotMatch(plain.line!, /Secure/i);
    // 127.0.0.2 is not a trusted proxy: its X-Forwarded-Proto is not believed.
    const untrusted = await login(svc, ADMIN, { "x-forwarded-proto": "https" }, "127.0.0.2");
    assert.equal(untrusted.status, 303);
    assert.doesNotMatch(untrusted.line!, /Secure/i);
  });
});
