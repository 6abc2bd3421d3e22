import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, before, test } from "node:test";
import { head, rawRequest } from "./support/http.js";
import { startService, type TestService } from "./support/service.js";

// Issue #16 item 11: anonymous clients cannot hold connections. The login form gets a small body
// limit and a short read deadline (well below the general body timeout), and the server a
// connection cap and a deadline for request heads.

const ADMIN = "admin-token-0123456789";
const BODY_TIMEOUT_MS = 15_000; // the general limit (limits.bodyTimeoutMs default)
const MAX_CONNECTIONS = 6;
let svc: TestService;

before(async () => {
  svc = await startService({
    admin: { token: ADMIN },
    server: { host: "127.0.0.1", port: 0, maxConnections: MAX_CONNECTIONS, headersTimeoutMs: 2_000 },
    limits: { bodyTimeoutMs: BODY_TIMEOUT_MS },
  });
});
after(async () => {
  await svc?.close();
});

const loginHead = (length: number) => head("/dashboard/login", { "Content-Type": "application/x-www-form-urlencoded", "Content-Length": length });

test("a login body that trickles in is cut off long before the general body timeout; an oversized one is 413", async () => {
  const trickle = Array.from({ length: 60 }, () => [{ pauseMs: 250 }, "x"]).flat();
  const slow = await rawRequest(svc.server.port, [loginHead(200), ...trickle], { timeoutMs: BODY_TIMEOUT_MS - 2_000 });
  assert.ok(slow.status === 408 || (slow.status === 0 && slow.closedByServer), `status ${slow.status}`);
  assert.ok(slow.elapsedMs < BODY_TIMEOUT_MS / 4, `cut off after ${slow.elapsedMs} ms (general limit ${BODY_TIMEOUT_MS} ms)`);

  const big = await rawRequest(svc.server.port, [loginHead(5_000), `token=${"x".repeat(4_994)}`]);
  assert.equal(big.status, 413);
  // A chunked body without a length is counted as it arrives.
  const chunked = await rawRequest(svc.server.port, [
    head("/dashboard/login", { "Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "chunked" }),
    `1388\r\n${"x".repeat(5_000)}\r\n`,
    "0\r\n\r\n",
  ]);
  assert.equal(chunked.status, 413);
});

test("a request head that never ends is cut off at server.headersTimeoutMs", async () => {
  const started = Date.now();
  const r = await rawRequest(svc.server.port, ["GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", { pauseMs: 12_000 }], { timeoutMs: 12_000 });
  assert.ok(r.closedByServer, "the server closed it");
  assert.ok(Date.now() - started < 6_000, `after ${Date.now() - started} ms`);
});

test("connections beyond server.maxConnections are refused; a freed slot is usable again", async () => {
  const open = (): Promise<Socket> =>
    new Promise((resolve, reject) => {
      const s = connect(svc.server.port, "127.0.0.1", () => resolve(s));
      s.on("error", reject);
    });
  const held: Socket[] = [];
  try {
    for (let i = 0; i < MAX_CONNECTIONS; i++) held.push(await open());
    await new Promise((r) => setTimeout(r, 100));
    const refused = await rawRequest(svc.server.port, [`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`], { timeoutMs: 3_000 }).catch((e: Error) => e);
    assert.ok(
      !(refused instanceof Error) && refused.closedByServer && refused.status === 0,
      `over the cap: ${refused instanceof Error ? refused.message : refused.status}`,
    );
    held.pop()!.destroy();
    await new Promise((r) => setTimeout(r, 200));
    const ok = await fetch(`${svc.url}/healthz`, { headers: { connection: "close" } });
    assert.equal(ok.status, 200);
  } finally {
    for (const s of held) s.destroy();
  }
});
