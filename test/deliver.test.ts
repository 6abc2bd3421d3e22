import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createServer } from "node:net";
import { RESPONSE_BODY_KEPT } from "../src/egress/attempt-detail.js";
import { createDeliveryAgent, attemptDelivery } from "../src/egress/deliver.js";
import { signatureHeaders } from "../src/egress/sign.js";
import { createSsrfGuard } from "../src/egress/ssrf.js";
import { freePort } from "./support/redis.js";
import { startReceiver } from "./support/receiver.js";

const SECRET = `whsec_${Buffer.from("0123456789abcdef0123456789abcdef").toString("base64")}`;
const loopbackGuard = createSsrfGuard({ allowCidrs: ["127.0.0.0/8", "::1/128"] });
const agent = createDeliveryAgent(loopbackGuard);
const body = JSON.stringify({ id: "evt_1", type: "message.sent", data: {} });
const send = (url: string, extra: Partial<Parameters<typeof attemptDelivery>[0]> = {}) =>
  attemptDelivery({
    url,
    body,
    headers: { "content-type": "application/json", ...signatureHeaders({ id: "msg_1", timestamp: Math.floor(Date.now() / 1000), body, secrets: [SECRET] }) },
    timeoutMs: 1_000,
    dispatcher: agent,
    guard: loopbackGuard,
    ...extra,
  });

after(() => agent.close());

describe("one delivery attempt", () => {
  let rx: Awaited<ReturnType<typeof startReceiver>>;
  before(async () => {
    rx = await startReceiver({ secret: SECRET });
  });
  after(() => rx.close());

  test("2xx is delivered, and the receiver verifies the signature with standardwebhooks", async () => {
    rx.next({ status: 204 });
    const r = await send(`${rx.url}/hook`);
    assert.equal(r.outcome, "delivered");
    assert.equal(r.status, 204);
    assert.equal(rx.received.at(-1)?.verified, true, rx.received.at(-1)?.verifyError);
  });

  test("5xx and 4xx are failed attempts with their class; 410 asks to disable; Retry-After is read", async () => {
    rx.next({ status: 503, headers: { "retry-after": "7" }, body: "busy" });
    let r = await send(rx.url);
    assert.deepEqual([r.outcome, r.status, r.errorClass, r.retryAfterMs, r.responseBody], ["retry", 503, "http_status", 7000, "busy"]);
    assert.equal(r.responseHeaders?.["retry-after"], "7", "the receiver's headers are kept");
    rx.next({ status: 404 });
    r = await send(rx.url);
    assert.deepEqual([r.outcome, r.status, r.errorClass], ["retry", 404, "http_status"]);
    rx.next({ status: 410 });
    r = await send(rx.url);
    assert.equal(r.outcome, "disable");
    const when = new Date(Date.now() + 60_000).toUTCString();
    rx.next({ status: 429, headers: { "retry-after": when } });
    r = await send(rx.url);
    assert.ok(r.retryAfterMs! > 50_000 && r.retryAfterMs! <= 60_000, `HTTP-date Retry-After: ${r.retryAfterMs}`);
  });

  test("a 302 is not followed", async () => {
    const before = rx.received.length;
    rx.next({ status: 302, headers: { location: `${rx.url}/elsewhere` } });
    const r = await send(rx.url);
    assert.deepEqual([r.outcome, r.status, r.errorClass], ["retry", 302, "http_status"]);
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(rx.received.length, before + 1, "only the original request arrived");
  });

  test("a slow receiver times out; a hanging one too; a reset is a connect error", async () => {
    rx.next({ delayMs: 600 });
    let r = await send(rx.url, { timeoutMs: 200 });
    assert.deepEqual([r.outcome, r.errorClass], ["retry", "timeout"]);
    assert.ok(r.durationMs < 500, `took ${r.durationMs} ms`);
    rx.next({ hang: true });
    r = await send(rx.url, { timeoutMs: 200 });
    assert.equal(r.errorClass, "timeout");
    rx.next({ destroy: true });
    r = await send(rx.url);
    assert.deepEqual([r.outcome, r.errorClass], ["retry", "connect"]);
  });

  test("nobody listening → connect", async () => {
    const r = await send(`http://127.0.0.1:${await freePort()}/`);
    assert.deepEqual([r.outcome, r.errorClass], ["retry", "connect"]);
  });

  test("a huge response body is cut at 1 KiB, and a cut UTF-8 character is left out", async () => {
    rx.next({ status: 500, body: Buffer.alloc(5 * 1024 * 1024, "x") });
    let r = await send(rx.url);
    assert.equal(r.responseBody.length, RESPONSE_BODY_KEPT);
    assert.equal(r.responseTruncated, true);
    // 1,023 ASCII bytes, then "é" (2 bytes) across the 1,024th byte.
    rx.next({ status: 500, body: `${"a".repeat(1023)}é and more` });
    r = await send(rx.url);
    assert.equal(r.responseBody, "a".repeat(1023));
    assert.ok(Buffer.byteLength(r.responseBody) <= RESPONSE_BODY_KEPT);
    rx.next({ status: 500, body: "short" });
    r = await send(rx.url);
    assert.deepEqual([r.responseBody, r.responseTruncated], ["short", undefined]);
  });

  test("https:// to a server that does not speak TLS → tls", async () => {
    // A plain HTTP listener on loopback: the TLS handshake gets an HTTP answer and fails.
    const r = await send(`https://127.0.0.1:${rx.port}/`);
    assert.deepEqual([r.outcome, r.errorClass, r.status], ["retry", "tls", undefined], r.error);
  });

  test("a name that cannot resolve → dns (no packet leaves the machine)", async () => {
    // glibc refuses to build a query for a label over 63 bytes: getaddrinfo fails with ENOTFOUND
    // locally, so this is a real resolver failure without asking any DNS server.
    const r = await send(`http://${"a".repeat(64)}.invalid/`);
    assert.deepEqual([r.outcome, r.errorClass], ["retry", "dns"], r.error);
  });

  test("a server that accepts and never answers → timeout", async () => {
    const silent = createServer(() => {});
    await new Promise<void>((res) => silent.listen(0, "127.0.0.1", res));
    try {
      const r = await send(`http://127.0.0.1:${(silent.address() as { port: number }).port}/`, { timeoutMs: 300 });
      assert.deepEqual([r.outcome, r.errorClass], ["retry", "timeout"]);
    } finally {
      silent.close();
    }
  });
});

describe("the exchange's edges (raw sockets)", () => {
  /** A loopback server that runs `onRequest` on each request head it reads; it counts the heads. */
  async function rawServer(onRequest: (sock: import("node:net").Socket) => void) {
    const heads: string[] = [];
    const closed: boolean[] = [];
    const sockets: import("node:net").Socket[] = [];
    const server = createServer((sock) => {
      sockets.push(sock);
      const i = closed.push(false) - 1;
      sock.on("close", () => (closed[i] = true));
      sock.on("error", () => {});
      let buf = "";
      sock.on("data", (d) => {
        buf += d;
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        heads.push(buf.slice(0, end));
        buf = "";
        onRequest(sock);
      });
    });
    await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
    // Closing ends the connections the client keeps alive as well.
    const close = () =>
      new Promise<void>((res) => {
        server.close(() => res());
        for (const s of sockets) s.destroy();
      });
    return { url, heads, closed, close };
  }

  test("an endless body: the status and the first KiB are kept, and the connection is closed instead of read", async () => {
    let writer: NodeJS.Timeout | undefined;
    const srv = await rawServer((sock) => {
      sock.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
      const chunk = `4000\r\n${"z".repeat(0x4000)}\r\n`;
      // Bounded: at most 10 s of writing, stopped as soon as the client closes.
      let n = 0;
      writer = setInterval(() => (sock.destroyed || ++n > 1_000 ? clearInterval(writer) : sock.write(chunk)), 10);
    });
    try {
      const r = await send(srv.url, { timeoutMs: 5_000 });
      assert.deepEqual([r.outcome, r.status, r.responseTruncated, r.responseBody.length], ["delivered", 200, true, RESPONSE_BODY_KEPT]);
      assert.ok(r.durationMs < 2_000, `took ${r.durationMs} ms`);
      for (let i = 0; i < 100 && !srv.closed[0]; i++) await new Promise((res) => setTimeout(res, 20));
      assert.equal(srv.closed[0], true, "the receiver's connection was closed");
    } finally {
      clearInterval(writer);
      await srv.close();
    }
  });

  test("a body cut off mid-way leaves the status as the answer", async () => {
    const srv = await rawServer((sock) => {
      sock.write("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 100\r\nretry-after: 7\r\n\r\nonly ten b");
      setTimeout(() => sock.destroy(), 20);
    });
    try {
      const r = await send(srv.url);
      assert.deepEqual([r.outcome, r.status, r.errorClass, r.retryAfterMs], ["retry", 503, "http_status", 7_000]);
      assert.equal(r.responseBody, "only ten b");
    } finally {
      await srv.close();
    }
  });

  test("an interim 103 is not the answer: the final status is, and a 103 with no final answer is a timeout", async () => {
    let hang = false;
    const srv = await rawServer((sock) => {
      sock.write("HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n");
      if (!hang) setTimeout(() => sock.write("HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\nok"), 20);
    });
    try {
      let r = await send(srv.url);
      assert.deepEqual([r.outcome, r.status, r.responseBody], ["delivered", 202, "ok"]);
      hang = true;
      r = await send(srv.url, { timeoutMs: 200 });
      assert.deepEqual([r.outcome, r.errorClass, r.status], ["retry", "timeout", undefined]);
    } finally {
      await srv.close();
    }
  });

  test("a request still waiting for a connection when its time is up is never sent", async () => {
    // One connection: the first request hangs on it for 400 ms; the second waits behind it and
    // times out after 100 ms. When the first gives up, its connection closes and undici opens
    // another for the queued request, which must not be written.
    const one = createDeliveryAgent(loopbackGuard, { connections: 1 });
    const srv = await rawServer(() => {});
    try {
      const first = send(srv.url, { dispatcher: one, timeoutMs: 400 });
      await new Promise((res) => setTimeout(res, 20));
      const second = await send(srv.url, { dispatcher: one, timeoutMs: 100 });
      assert.deepEqual([second.outcome, second.errorClass], ["retry", "timeout"]);
      assert.ok(second.durationMs < 300, `took ${second.durationMs} ms`);
      assert.equal((await first).errorClass, "timeout");
      await new Promise((res) => setTimeout(res, 300));
      assert.equal(srv.heads.length, 1, "only the first request reached the receiver");
    } finally {
      await one.close();
      await srv.close();
    }
  });
});

describe("SSRF guard", () => {
  const strict = createSsrfGuard({ allowCidrs: [] });
  const strictAgent = createDeliveryAgent(strict);
  after(() => strictAgent.close());

  // Literal addresses are refused before any connection is attempted, so none of these is contacted.
  for (const host of [
    "127.0.0.1",
    "[::1]",
    "[::ffff:169.254.169.254]",
    "0.0.0.0",
    "10.1.2.3",
    "100.64.0.1",
    "192.168.1.1",
    "172.16.0.1",
    "169.254.169.254",
    "[fe80::1]",
    "[fd00::1]",
  ]) {
    test(`${host} is refused as ssrf_blocked`, async () => {
      const r = await attemptDelivery({ url: `http://${host}:9/`, body, headers: {}, timeoutMs: 500, dispatcher: strictAgent, guard: strict });
      assert.deepEqual([r.outcome, r.errorClass], ["retry", "ssrf_blocked"]);
    });
  }

  test("a name resolving to a private address (localhost) is refused at connection time", async () => {
    const rx = await startReceiver({ host: "::" });
    try {
      const r = await attemptDelivery({ url: `http://localhost:${rx.port}/`, body, headers: {}, timeoutMs: 1_000, dispatcher: strictAgent, guard: strict });
      assert.deepEqual([r.outcome, r.errorClass], ["retry", "ssrf_blocked"]);
      assert.equal(rx.received.length, 0, "nothing reached the receiver");
      // Allow-listed, the same name is delivered.
      const ok = await attemptDelivery({ url: `http://localhost:${rx.port}/`, body, headers: {}, timeoutMs: 1_000, dispatcher: agent, guard: loopbackGuard });
      assert.equal(ok.outcome, "delivered");
    } finally {
      await rx.close();
    }
  });

  test("public unicast addresses pass the check; other schemes are refused", () => {
    assert.equal(strict.refuse("93.184.216.34"), undefined);
    assert.equal(strict.refuse("2606:4700::1111"), undefined);
    assert.ok(strict.checkUrl(new URL("ftp://93.184.216.34/")));
    assert.ok(strict.refuse("::ffff:127.0.0.1"), "IPv4-mapped loopback");
  });
});
