import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createGatewayClient, GatewayAuthError } from "../src/gateway/client.js";
import { createLogger } from "../src/log.js";
import { createDeps } from "../src/deps.js";
import { StartupError } from "../src/errors.js";
import { startFakeGateway, type FakeGateway } from "./support/fake-gateway.js";
import { post, SECRET_A, startService, testConfig, twoRoutes, type TestService } from "./support/service.js";

const TOKEN = "gw-test-token-0123456789abcdef";
const log = createLogger({ level: "silent" });
const list = { action: "list_flows" };

describe("Gateway client against the fake Gateway", () => {
  let gw: FakeGateway;
  before(async () => {
    gw = await startFakeGateway({ token: TOKEN, tickIntervalMs: 200 });
  });
  after(() => gw.stop());

  test("handshake: waits for connect.challenge, then sends connect with protocol 4, token and operator scopes", async () => {
    const client = createGatewayClient({ url: gw.url, token: async () => TOKEN, log, version: "9.9.9" });
    const before = gw.frames.length;
    await client.start();
    assert.equal(client.connected, true);
    assert.equal(client.hello?.protocol, 4);
    const connect = gw.frames.slice(before).find((f) => f.method === "connect");
    assert.ok(connect, "connect frame sent");
    assert.equal(connect.type, "req");
    assert.equal(connect.params.minProtocol, 4);
    assert.equal(connect.params.maxProtocol, 4);
    assert.deepEqual(connect.params.client, { id: "gateway-client", version: "9.9.9", platform: process.platform, mode: "backend" });
    assert.equal(connect.params.role, "operator");
    assert.deepEqual(connect.params.scopes, ["operator.read", "operator.write"]);
    assert.equal(connect.params.auth.token, TOKEN);
    const out = await client.call("webhooksBridge.list_flows", { sessionKey: "s" });
    assert.deepEqual(out, { flows: [] });
    await client.close();
  });

  test("events other than tick reach listeners", async () => {
    const client = createGatewayClient({ url: gw.url, token: async () => TOKEN, log, version: "1" });
    await client.start();
    const got: string[] = [];
    client.onEvent((e) => got.push(e.event));
    gw.broadcast("task", { action: "upserted", task: { taskId: "t" } });
    for (let i = 0; i < 50 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(got, ["task"]);
    await client.close();
  });

  test("a wrong token is a startup error naming gateway.token", async () => {
    const client = createGatewayClient({ url: gw.url, token: async () => "wrong", log, version: "1" });
    await assert.rejects(client.start(), (err) => err instanceof GatewayAuthError && /token mismatch/.test(err.message));
    await client.close();
    const config = testConfig({ routes: twoRoutes(), gateway: { url: gw.url, token: "wrong" } });
    await assert.rejects(createDeps(config, { log }), (err) => err instanceof StartupError && err.message.startsWith("gateway.token:"));
  });

  test("a slow call → 504 gateway_timeout; an error answer → 502 gateway_error", async () => {
    const svc = await startService({ routes: twoRoutes(), gateway: { url: gw.url, token: TOKEN, callTimeoutMs: 200 } });
    try {
      gw.script("list_flows", { delayMs: 600 });
      const started = Date.now();
      const slow = await post(`${svc.url}/hooks/a`, list, { secret: SECRET_A });
      assert.equal(slow.status, 504);
      assert.equal(slow.json.code, "gateway_timeout");
      assert.ok(Date.now() - started < 550, "answered at the call timeout, not when the Gateway did");
      gw.script("list_flows", { error: { code: "FORBIDDEN", message: "missing scope: operator.read at /etc/secret/path" } });
      const refused = await post(`${svc.url}/hooks/a`, list, { secret: SECRET_A });
      assert.equal(refused.status, 502);
      assert.equal(refused.json.code, "gateway_error");
      assert.ok(!refused.text.includes("/etc/secret/path"), "Gateway error details are not echoed");
      await new Promise((r) => setTimeout(r, 450));
      assert.equal((await post(`${svc.url}/hooks/a`, list, { secret: SECRET_A })).status, 200, "late answer to the timed-out call is ignored");
    } finally {
      await svc.close();
    }
  });

  test("subscribeSessions: sessions.subscribe on every connect and reconnect, so session.* frames keep coming", async () => {
    const plain = createGatewayClient({ url: gw.url, token: async () => TOKEN, log, version: "1" });
    const client = createGatewayClient({
      url: gw.url,
      token: async () => TOKEN,
      log,
      version: "1",
      reconnectBaseMs: 20,
      reconnectMaxMs: 50,
      subscribeSessions: true,
    });
    await plain.start();
    await client.start();
    const subscribes = () => gw.frames.filter((f) => f.method === "sessions.subscribe").length;
    assert.equal(subscribes(), 1, "subscribed before start() resolved");
    const got: string[] = [];
    const plainGot: string[] = [];
    client.onEvent((e) => got.push(e.event));
    plain.onEvent((e) => plainGot.push(e.event));
    const frame = { sessionKey: "agent:main:x", messageId: "m1", message: { role: "user", content: "hi" } };
    gw.broadcast("session.message", frame);
    for (let i = 0; i < 50 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(got, ["session.message"]);
    assert.deepEqual(plainGot, [], "a connection that did not subscribe gets no session.message (as the real Gateway)");
    gw.dropConnections();
    for (let i = 0; i < 200 && !(client.connected && subscribes() === 2); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(subscribes(), 2, "subscribed again after the reconnect");
    gw.broadcast("session.message", { ...frame, messageId: "m2" });
    for (let i = 0; i < 50 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(got, ["session.message", "session.message"]);
    await client.close();
    await plain.close();
  });

  test("a refused sessions.subscribe drops the connection and the reconnect subscribes; a slow one does not time the handshake out", async () => {
    const subscribes = () => gw.frames.filter((f) => f.method === "sessions.subscribe").length;
    const connects = () => gw.frames.filter((f) => f.method === "connect").length;
    const base = { url: gw.url, token: async () => TOKEN, log, version: "1", subscribeSessions: true };
    const s0 = subscribes();
    gw.script("sessions.subscribe", { error: { code: "UNAVAILABLE", message: "not now" } });
    const refused = createGatewayClient({ ...base, reconnectBaseMs: 20, reconnectMaxMs: 50 });
    await refused.start();
    for (let i = 0; i < 200 && !(refused.connected && subscribes() >= s0 + 2); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(refused.connected, true);
    assert.equal(subscribes(), s0 + 2, "the refused subscribe, then one on the reconnect");
    await refused.close();

    const c0 = connects();
    gw.script("sessions.subscribe", { delayMs: 600 });
    const slow = createGatewayClient({ ...base, connectTimeoutMs: 300, reconnectBaseMs: 20, reconnectMaxMs: 50 });
    await slow.start();
    assert.equal(slow.connected, true);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(connects(), c0 + 1, "one connection: the subscribe's wait is not the handshake's");
    await slow.close();
  });

  test("a Gateway that stops ticking is declared dead and reconnected", async () => {
    const client = createGatewayClient({ url: gw.url, token: async () => TOKEN, log, version: "1", reconnectBaseMs: 20, reconnectMaxMs: 50 });
    await client.start();
    const connects = () => gw.frames.filter((f) => f.method === "connect").length;
    const before = connects();
    gw.setTicking(false);
    await new Promise((r) => setTimeout(r, 700)); // > 2 tick intervals (2 × 200 ms) plus a check
    gw.setTicking(true);
    for (let i = 0; i < 100 && !(client.connected && connects() > before); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(connects() > before, "reconnected after silence");
    assert.equal(client.connected, true);
    await client.close();
  });
});

describe("Gateway outage", () => {
  let gw: FakeGateway;
  let svc: TestService;
  before(async () => {
    gw = await startFakeGateway({ token: TOKEN });
    svc = await startService({ routes: twoRoutes(), gateway: { url: gw.url, token: TOKEN, reconnectBaseMs: 50, reconnectMaxMs: 200 } });
  });
  after(async () => {
    await svc.close();
    await gw.stop();
  });

  test("503 gateway_unavailable fast while the Gateway is gone, recovery after it returns, no stuck slots", async () => {
    assert.equal((await post(`${svc.url}/hooks/a`, list, { secret: SECRET_A })).status, 200);
    await gw.stop();
    for (let i = 0; i < 50 && svc.deps.gateway!.connected; i++) await new Promise((r) => setTimeout(r, 10));
    // More requests than the in-flight limit (8): each must fail fast and give its slot back.
    for (let i = 0; i < 12; i++) {
      const started = Date.now();
      const r = await post(`${svc.url}/hooks/a`, list, { secret: SECRET_A });
      assert.equal(r.status, 503);
      assert.equal(r.json.code, "gateway_unavailable");
      assert.ok(Date.now() - started < 1_000, "within one second");
    }
    const ready = await fetch(`${svc.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal(((await ready.json()) as any).checks.gateway, false);
    await gw.restart();
    let status = 503;
    for (let i = 0; i < 100 && status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 50));
      status = (await post(`${svc.url}/hooks/a`, list, { secret: SECRET_A })).status;
    }
    assert.equal(status, 200, "recovered");
    assert.equal((await fetch(`${svc.url}/readyz`)).status, 200);
    // All eight in-flight slots are free: eight concurrent calls succeed.
    const burst = await Promise.all(Array.from({ length: 8 }, () => post(`${svc.url}/hooks/a`, list, { secret: SECRET_A })));
    assert.deepEqual(
      burst.map((r) => r.status),
      Array(8).fill(200),
    );
  });

  test("a socket dropped mid-call fails that call with 503 instead of hanging", async () => {
    gw.script("list_flows", { drop: true });
    const r = await post(`${svc.url}/hooks/a`, list, { secret: SECRET_A });
    assert.equal(r.status, 503);
    assert.equal(r.json.code, "gateway_unavailable");
  });

  test("a Gateway unreachable at startup does not stop the service; it connects when the Gateway appears", async () => {
    const port = gw.port;
    await gw.stop();
    const late = await startService({
      routes: twoRoutes(),
      gateway: { url: `ws://127.0.0.1:${port}`, token: TOKEN, reconnectBaseMs: 50, reconnectMaxMs: 200 },
    });
    try {
      assert.equal((await post(`${late.url}/hooks/a`, list, { secret: SECRET_A })).status, 503);
      await gw.restart();
      let status = 503;
      for (let i = 0; i < 100 && status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 50));
        status = (await post(`${late.url}/hooks/a`, list, { secret: SECRET_A })).status;
      }
      assert.equal(status, 200);
    } finally {
      await late.close();
    }
  });
});
