import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createApp } from "../src/app.js";
import { createDeps } from "../src/deps.js";
import { createMemoryLimitStore } from "../src/limits/memory-store.js";
import type { LimitStore } from "../src/limits/store.js";
import { createLogger } from "../src/log.js";
import { createMetrics } from "../src/metrics.js";
import { createSecretResolver, type SecretResolver } from "../src/secrets/resolve.js";
import { Registry } from "prom-client";
import { chunk, head, lastChunk, rawRequest } from "./support/http.js";
import { awaitFreshWindow, SECRET_A, startService, testConfig, twoRoutes, type TestService } from "./support/service.js";

/** Counts calls into the later stages, to prove an earlier rejection never reaches them. */
function spies() {
  const calls = { acquire: 0, released: 0, resolve: 0 };
  const inner = createMemoryLimitStore({ maxTrackedKeys: 4096 });
  const limitStore: LimitStore = {
    async acquire(key, limits) {
      calls.acquire++;
      const r = await inner.acquire(key, limits);
      if (!r.ok) return r;
      return {
        ok: true,
        release: async () => {
          calls.released++;
          await r.release();
        },
      };
    },
  };
  const real = createSecretResolver({ providers: {} });
  const secrets: SecretResolver = {
    resolve: (i) => {
      calls.resolve++;
      return real.resolve(i);
    },
  };
  return { calls, limitStore, secrets };
}

async function appWith(routesExtra: Record<string, unknown> = {}, limits: Record<string, unknown> = {}) {
  const s = spies();
  const config = testConfig({ routes: twoRoutes(routesExtra), limits: limits as never });
  const deps = await createDeps(config, {
    log: createLogger({ level: "silent" }),
    metrics: createMetrics(new Registry(), { defaultMetrics: false }),
    limitStore: s.limitStore,
    secrets: s.secrets,
  });
  return { app: createApp(deps), ...s };
}

const create = JSON.stringify({ action: "create_flow", goal: "Review inbound queue" });
const req = (init: { method?: string; ct?: string | null; secret?: string | null; body?: string; headers?: Record<string, string> } = {}) => {
  const headers: Record<string, string> = { ...init.headers };
  if (init.ct !== null) headers["content-type"] = init.ct ?? "application/json";
  if (init.secret !== null) headers.authorization = `Bearer ${init.secret ?? SECRET_A}`;
  const method = init.method ?? "POST";
  return { method, headers, ...(method === "GET" || method === "HEAD" ? {} : { body: init.body ?? create }) };
};

describe("pipeline stages, in the seed's order", () => {
  // One table: each row is a request that fails at one stage, with what the client must see.
  const rows: {
    name: string;
    init: Parameters<typeof req>[0];
    status: number;
    code: string;
    headers?: Record<string, string>;
    reached: { acquire: number; resolve: number };
  }[] = [
    {
      name: "GET → 405 with Allow: POST",
      init: { method: "GET" },
      status: 405,
      code: "method_not_allowed",
      headers: { allow: "POST", connection: "close" },
      reached: { acquire: 0, resolve: 0 },
    },
    {
      name: "PUT with a wrong secret → 405, not 401",
      init: { method: "PUT", secret: "nope" },
      status: 405,
      code: "method_not_allowed",
      reached: { acquire: 0, resolve: 0 },
    },
    {
      name: "text/plain → 415",
      init: { ct: "text/plain" },
      status: 415,
      code: "unsupported_media_type",
      headers: { connection: "close" },
      reached: { acquire: 0, resolve: 0 },
    },
    {
      name: "no content type and a wrong secret → 415, not 401",
      init: { ct: null, secret: "wrong" },
      status: 415,
      code: "unsupported_media_type",
      reached: { acquire: 0, resolve: 0 },
    },
    {
      name: "wrong secret → 401",
      init: { secret: "wrong" },
      status: 401,
      code: "unauthorized",
      headers: { connection: "close" },
      reached: { acquire: 1, resolve: 1 },
    },
    { name: "no secret → 401", init: { secret: null }, status: 401, code: "unauthorized", reached: { acquire: 1, resolve: 1 } },
    { name: "bad JSON → 400", init: { body: "{nope" }, status: 400, code: "invalid_request", reached: { acquire: 1, resolve: 1 } },
    { name: "empty body → 400", init: { body: "" }, status: 400, code: "invalid_request", reached: { acquire: 1, resolve: 1 } },
    { name: "unknown action → 400", init: { body: '{"action":"nope"}' }, status: 400, code: "invalid_request", reached: { acquire: 1, resolve: 1 } },
  ];
  for (const row of rows) {
    test(row.name, async () => {
      const { app, calls } = await appWith();
      const res = await app.request("/hooks/a", req(row.init));
      assert.equal(res.status, row.status);
      const body = (await res.json()) as any;
      assert.deepEqual(Object.keys(body).sort(), ["code", "error", "ok", "result", "routeId"]);
      assert.equal(body.ok, false);
      assert.equal(body.routeId, "a");
      assert.equal(body.code, row.code);
      assert.deepEqual(body.result, {});
      assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8");
      for (const [k, v] of Object.entries(row.headers ?? {})) assert.equal(res.headers.get(k), v, k);
      assert.equal(calls.acquire, row.reached.acquire, "limit store reached");
      assert.equal(calls.resolve, row.reached.resolve, "secret resolved");
      assert.equal(calls.released, calls.acquire, "every lease released");
    });
  }

  test("*+json media types and charset parameters pass the content-type stage", async () => {
    const { app } = await appWith();
    for (const ct of ["application/json; charset=utf-8", "application/vnd.api+json", "APPLICATION/JSON"]) {
      const res = await app.request("/hooks/a", req({ ct }));
      assert.equal(res.status, 200, ct);
    }
  });

  test("x-openclaw-webhook-secret works; Authorization: Bearer wins when both are sent", async () => {
    const { app } = await appWith();
    const viaHeader = await app.request("/hooks/a", req({ secret: null, headers: { "x-openclaw-webhook-secret": ` ${SECRET_A} ` } }));
    assert.equal(viaHeader.status, 200);
    const bearerWrong = await app.request("/hooks/a", req({ secret: "wrong", headers: { "x-openclaw-webhook-secret": SECRET_A } }));
    assert.equal(bearerWrong.status, 401);
    const lower = await app.request("/hooks/a", req({ secret: null, headers: { authorization: `bearer ${SECRET_A}` } }));
    assert.equal(lower.status, 200);
  });

  test("route B's secret does not open route A", async () => {
    const { app } = await appWith();
    const res = await app.request("/hooks/a", req({ secret: "secret-route-b-0123456789" }));
    assert.equal(res.status, 401);
  });

  test("schema errors name the first issue as `path: message`", async () => {
    const { app } = await appWith();
    const cases: [unknown, string][] = [
      [{ action: "create_flow", goal: "" }, "goal: Too small: expected string to have >=1 characters"],
      [{ action: "create_flow", goal: "x", x: 1 }, 'Unrecognized key: "x"'],
      [{ action: "set_waiting", flowId: "f", expectedRevision: -1 }, "expectedRevision: Too small: expected number to be >=0"],
      [{ action: "run_task", flowId: "f", runtime: "cli", task: "t" }, 'runtime: Invalid option: expected one of "subagent"|"acp"'],
      [
        { action: "run_task", flowId: "f", runtime: "acp", task: "t", status: "queued", startedAt: 1 },
        "status: status must be running when startedAt, lastEventAt, or progressSummary is provided",
      ],
    ];
    for (const [body, error] of cases) {
      const res = await app.request("/hooks/a", req({ body: JSON.stringify(body) }));
      assert.equal(res.status, 400);
      const json = (await res.json()) as any;
      assert.equal(json.code, "invalid_request");
      assert.equal(json.error, error);
    }
  });

  test("rate limit: the 121st request in a window is 429 with Retry-After, and is not authenticated", async () => {
    // The wrong-secret lockout (auth-failures.test.ts) is set out of the way: this is the route's window.
    const { app, calls } = await appWith({}, { rateLimit: { windowMs: 60_000, maxRequests: 120 }, authFailures: { max: 1_000, windowMs: 60_000 } });
    await awaitFreshWindow();
    const statuses: number[] = [];
    for (let i = 0; i < 125; i++) statuses.push((await app.request("/hooks/a", req({ secret: "wrong" }))).status);
    assert.deepEqual(statuses.slice(0, 120), Array(120).fill(401));
    assert.deepEqual(statuses.slice(120), Array(5).fill(429));
    assert.equal(calls.resolve, 120, "rate-limited requests never reach auth");
    const res = await app.request("/hooks/a", req());
    assert.equal(res.status, 429);
    const retry = Number(res.headers.get("retry-after"));
    assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
    assert.equal(res.headers.get("connection"), "close");
    assert.equal(((await res.json()) as any).code, "rate_limited");
    // Another route has its own budget.
    assert.equal((await app.request("/hooks/b", req({ secret: "secret-route-b-0123456789" }))).status, 200);
  });

  test("a trailing slash reaches the same route and shares its budget", async () => {
    const { app } = await appWith({ rateLimit: { windowMs: 60_000, maxRequests: 2 } });
    await awaitFreshWindow();
    assert.equal((await app.request("/hooks/a", req())).status, 200);
    assert.equal((await app.request("/hooks/a/", req())).status, 200);
    assert.equal((await app.request("/hooks/a/", req())).status, 429);
  });

  test("unknown path → 404 envelope", async () => {
    const { app } = await appWith();
    const res = await app.request("/nope", req());
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as any).code, "not_found");
  });
});

describe("pipeline over real sockets", () => {
  let svc: TestService;
  before(async () => {
    svc = await startService({
      routes: twoRoutes({ maxBodyBytes: 1024, maxInFlight: 2 }),
      limits: { bodyTimeoutMs: 600 },
    });
  });
  after(() => svc.close());

  const auth = { "content-type": "application/json", authorization: `Bearer ${SECRET_A}` };

  test("Content-Length over the limit → 413 before the body is sent, connection closed", async () => {
    const res = await rawRequest(svc.server.port, [head("/hooks/a", { ...auth, "content-length": 5000 })], { timeoutMs: 5000 });
    assert.equal(res.status, 413);
    assert.equal(res.headers.connection, "close");
    assert.equal(JSON.parse(res.body).code, "payload_too_large");
  });

  test("a chunked body is counted and cut off at the limit → 413", async () => {
    const big = JSON.stringify({ action: "create_flow", goal: "x".repeat(2000) });
    const res = await rawRequest(svc.server.port, [
      head("/hooks/a", { ...auth, "transfer-encoding": "chunked" }),
      chunk(big.slice(0, 900)),
      chunk(big.slice(900)),
      lastChunk,
    ]);
    assert.equal(res.status, 413);
    assert.equal(JSON.parse(res.body).code, "payload_too_large");
  });

  test("a chunked body under the limit is accepted", async () => {
    const body = JSON.stringify({ action: "create_flow", goal: "chunked" });
    const res = await rawRequest(svc.server.port, [
      head("/hooks/a", { ...auth, "transfer-encoding": "chunked", connection: "close" }),
      chunk(body.slice(0, 10)),
      { pauseMs: 50 },
      chunk(body.slice(10)),
      lastChunk,
    ]);
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body).result.flow.goal, "chunked");
  });

  test("a stalled body → 408 after the body timeout, and its in-flight slot is given back", async () => {
    const started = Date.now();
    const res = await rawRequest(svc.server.port, [head("/hooks/a", { ...auth, "content-length": 100 }), '{"action":'], { timeoutMs: 5000 });
    assert.equal(res.status, 408);
    assert.equal(JSON.parse(res.body).code, "request_timeout");
    assert.ok(Date.now() - started >= 550, "waited for the timeout");
    // maxInFlight is 2: three requests in a row all succeed only if the stalled one released its lease.
    for (let i = 0; i < 3; i++) {
      const ok = await fetch(`${svc.url}/hooks/a`, { method: "POST", headers: auth, body: JSON.stringify({ action: "list_flows" }) });
      assert.equal(ok.status, 200);
    }
  });

  test("in-flight limit: a third concurrent request from one client → 429; aborted requests give their slots back", async () => {
    const slow = () =>
      rawRequest(svc.server.port, [head("/hooks/a", { ...auth, "content-length": 100 }), "{", { pauseMs: 400 }], { timeoutMs: 300 }).catch(() => undefined);
    // Two clients hold the two slots with unfinished bodies, then abort (socket destroyed at 300 ms).
    const holders = [slow(), slow()];
    await new Promise((r) => setTimeout(r, 100));
    const third = await fetch(`${svc.url}/hooks/a`, { method: "POST", headers: auth, body: JSON.stringify({ action: "list_flows" }) });
    assert.equal(third.status, 429);
    assert.equal(((await third.json()) as any).code, "in_flight_limited");
    assert.equal(third.headers.get("retry-after"), "1");
    await Promise.all(holders);
    await new Promise((r) => setTimeout(r, 100));
    const after = await fetch(`${svc.url}/hooks/a`, { method: "POST", headers: auth, body: JSON.stringify({ action: "list_flows" }) });
    assert.equal(after.status, 200, "slots freed by the aborted requests");
  });

  test("keep-alive is not poisoned: after early rejects, the next request on the pool succeeds", async () => {
    for (let i = 0; i < 3; i++) {
      const rej = await fetch(`${svc.url}/hooks/a`, { method: "POST", headers: { ...auth, authorization: "Bearer wrong" }, body: "x".repeat(3000) });
      assert.equal(rej.status, 401);
      await rej.text();
      const ok = await fetch(`${svc.url}/hooks/a`, { method: "POST", headers: auth, body: JSON.stringify({ action: "list_flows" }) });
      assert.equal(ok.status, 200);
    }
  });
});
