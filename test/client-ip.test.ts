import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createClientIpResolver } from "../src/http/client-ip.js";
import { post, SECRET_A, startService, twoRoutes, type TestService } from "./support/service.js";

const hdr = (h: Record<string, string>) => (name: string) => h[name];

describe("client IP", () => {
  test("the socket address unless the peer is a trusted proxy", () => {
    const none = createClientIpResolver({ trustedProxies: [], allowRealIpFallback: true });
    assert.equal(none("10.0.0.5", hdr({ "x-forwarded-for": "1.2.3.4", "x-real-ip": "5.6.7.8" })), "10.0.0.5");
    assert.equal(none("::ffff:10.0.0.5", hdr({})), "10.0.0.5", "IPv4-mapped addresses are unwrapped");
    const r = createClientIpResolver({ trustedProxies: ["10.0.0.0/8", "192.168.1.1"], allowRealIpFallback: false });
    assert.equal(r("203.0.113.9", hdr({ "x-forwarded-for": "1.2.3.4" })), "203.0.113.9", "untrusted peer: header ignored");
    assert.equal(r("10.1.1.1", hdr({ "x-forwarded-for": "1.2.3.4" })), "1.2.3.4");
  });

  test("X-Forwarded-For is walked from the right, skipping trusted and loopback hops", () => {
    const r = createClientIpResolver({ trustedProxies: ["10.0.0.0/8"], allowRealIpFallback: false });
    assert.equal(r("10.0.0.1", hdr({ "x-forwarded-for": "6.6.6.6, 1.2.3.4, 10.9.9.9, 127.0.0.1" })), "1.2.3.4", "a spoofed left entry is not believed");
    assert.equal(r("10.0.0.1", hdr({ "x-forwarded-for": "[2001:db8::1]:443, 10.2.2.2:8080" })), "2001:db8::1");
    assert.equal(r("10.0.0.1", hdr({ "x-forwarded-for": "10.1.1.1" })), "10.0.0.1", "only trusted hops: the socket");
  });

  test("X-Real-IP only with allowRealIpFallback", () => {
    const off = createClientIpResolver({ trustedProxies: ["10.0.0.0/8"], allowRealIpFallback: false });
    const on = createClientIpResolver({ trustedProxies: ["10.0.0.0/8"], allowRealIpFallback: true });
    assert.equal(off("10.0.0.1", hdr({ "x-real-ip": "1.2.3.4" })), "10.0.0.1");
    assert.equal(on("10.0.0.1", hdr({ "x-real-ip": "1.2.3.4" })), "1.2.3.4");
    assert.equal(on("10.0.0.1", hdr({ "x-forwarded-for": "5.5.5.5", "x-real-ip": "1.2.3.4" })), "5.5.5.5", "XFF first");
  });

  test("a bad trustedProxies entry is refused", () => {
    assert.throws(() => createClientIpResolver({ trustedProxies: ["not-an-ip"], allowRealIpFallback: false }), /server\.trustedProxies/);
  });
});

describe("client IP keys the limits over a real socket", () => {
  let svc: TestService;
  before(async () => {
    svc = await startService({
      server: { host: "127.0.0.1", port: 0, trustedProxies: ["127.0.0.1"] },
      routes: twoRoutes({ rateLimit: { windowMs: 60_000, maxRequests: 2 } }),
    });
  });
  after(() => svc.close());

  test("behind a trusted proxy, each forwarded client has its own budget", async () => {
    const as = (ip: string) =>
      post(`${svc.url}/hooks/a`, { action: "list_flows" }, { secret: SECRET_A, headers: { "x-forwarded-for": ip } }).then((r) => r.status);
    assert.deepEqual([await as("1.1.1.1"), await as("1.1.1.1"), await as("1.1.1.1")], [200, 200, 429]);
    assert.equal(await as("2.2.2.2"), 200, "another client is not limited");
  });
});
