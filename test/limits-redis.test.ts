import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { createMemoryLimitStore } from "../src/limits/memory-store.js";
import { createRedisLimitStore } from "../src/limits/redis-store.js";
import { createKeys } from "../src/redis-keys.js";
import { startRedis, type TestRedis } from "./support/redis.js";
import { chunk, head, lastChunk, rawRequest } from "./support/http.js";
import { freePort } from "./support/redis.js";
import { awaitFreshWindow, post, SECRET_A, startService, twoRoutes, type TestService } from "./support/service.js";

let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(() => redis.dispose());

describe("Redis limits shared by two app instances", () => {
  let one: TestService;
  let two: TestService;
  before(async () => {
    const prefix = redis.prefix();
    // Both instances run the full service, each with its own Redis connection.
    // The wrong-secret lockout (auth-failures.test.ts) is set out of the way: the test below counts
    // admissions with wrong secrets.
    const limits = { authFailures: { max: 1_000, windowMs: 60_000 } };
    one = await startService({ routes: twoRoutes(), redis: { url: redis.url, prefix }, limits });
    two = await startService({ routes: twoRoutes(), redis: { url: redis.url, prefix }, limits });
  });
  after(async () => {
    await one.close();
    await two.close();
  });

  test("exactly 120 requests are accepted in one window across both instances", async () => {
    // 152 requests alternating instances, 8 at a time (the in-flight limit, so none is refused for
    // concurrency); a wrong secret keeps the store empty: the limiter counts before auth, so a 401
    // means "admitted by the limiter".
    await awaitFreshWindow();
    const statuses: string[] = [];
    for (let i = 0; i < 152; i += 8) {
      const batch = Array.from({ length: 8 }, (_, j) =>
        post(`${(i + j) % 2 ? one.url : two.url}/hooks/a`, { action: "list_flows" }, { secret: "wrong" }).then((r) => `${r.status} ${r.json.code}`),
      );
      statuses.push(...(await Promise.all(batch)));
    }
    const tally: Record<string, number> = {};
    for (const s of statuses) tally[s] = (tally[s] ?? 0) + 1;
    assert.deepEqual(tally, { "401 unauthorized": 120, "429 rate_limited": 32 });
  });
});

describe("Redis in-flight leases", () => {
  test("two instances share maxInFlight; a lease is released when the request ends", async () => {
    const prefix = redis.prefix();
    const cfg = { routes: twoRoutes({ maxInFlight: 1 }), redis: { url: redis.url, prefix }, limits: { bodyTimeoutMs: 2_000 } };
    const one = await startService(cfg);
    const two = await startService(cfg);
    try {
      // Hold the only slot on instance one with an unfinished body.
      const body = '{"action":"list_flows"}';
      const holder = rawRequest(
        one.server.port,
        [
          head("/hooks/a", { "content-type": "application/json", authorization: `Bearer ${SECRET_A}`, "content-length": body.length }),
          body.slice(0, 10),
          { pauseMs: 400 },
          body.slice(10),
        ],
        { timeoutMs: 5_000 },
      );
      await new Promise((r) => setTimeout(r, 150));
      const blocked = await post(`${two.url}/hooks/a`, { action: "list_flows" }, { secret: SECRET_A });
      assert.equal(blocked.status, 429);
      assert.equal(blocked.json.code, "in_flight_limited");
      assert.equal((await holder).status, 200);
      const freed = await post(`${two.url}/hooks/a`, { action: "list_flows" }, { secret: SECRET_A });
      assert.equal(freed.status, 200);
    } finally {
      await one.close();
      await two.close();
    }
  });

  test("a lease left by an instance killed with SIGKILL frees itself after leaseMs", async () => {
    const prefix = redis.prefix();
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "ocwh-kill-"));
    const configFile = join(dir, "config.json5");
    const routes = twoRoutes({ maxInFlight: 2 });
    writeFileSync(
      configFile,
      JSON.stringify({
        server: { host: "127.0.0.1", port },
        redis: { url: redis.url, prefix },
        limits: { leaseMs: 1_500, bodyTimeoutMs: 30_000 },
        log: { level: "info" },
        plugins: { entries: { webhooks: { config: { routes } } } },
      }),
    );
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "--config", configFile], { stdio: ["ignore", "pipe", "pipe"] });
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error("service did not start")), 15_000);
        child.stdout!.on("data", (d: Buffer) => {
          if (d.toString().includes("listening")) {
            clearTimeout(t);
            resolve();
          }
        });
        child.once("exit", (code) => reject(new Error(`service exited ${code}`)));
      });
      // Two requests take both leases and hang mid-body; then the process is killed.
      const hang = () =>
        rawRequest(
          port,
          [head("/hooks/a", { "content-type": "application/json", authorization: `Bearer ${SECRET_A}`, "content-length": 50 }), "{", { pauseMs: 10_000 }],
          { timeoutMs: 10_000 },
        ).catch(() => undefined);
      void hang();
      void hang();
      const r = new Redis(redis.url);
      const leaseKey = `${prefix}inflight:{/hooks/a|127.0.0.1}`;
      for (let i = 0; i < 50 && (await r.zcard(leaseKey)) < 2; i++) await new Promise((res) => setTimeout(res, 20));
      assert.equal(await r.zcard(leaseKey), 2, "both leases taken");
      child.kill("SIGKILL");
      await new Promise((res) => child.once("exit", res));
      const killedAt = Date.now();

      const survivor = await startService({ routes, redis: { url: redis.url, prefix }, limits: { leaseMs: 1_500 } });
      try {
        const now = await post(`${survivor.url}/hooks/a`, { action: "list_flows" }, { secret: SECRET_A });
        assert.equal(now.status, 429, "the dead instance's leases still count");
        let status = 429;
        while (status === 429 && Date.now() - killedAt < 5_000) {
          await new Promise((res) => setTimeout(res, 100));
          status = (await post(`${survivor.url}/hooks/a`, { action: "list_flows" }, { secret: SECRET_A })).status;
        }
        assert.equal(status, 200, "leases expired");
        assert.ok(Date.now() - killedAt >= 1_000, "not before the lease expiry");
      } finally {
        await survivor.close();
        r.disconnect();
      }
    } finally {
      child.kill("SIGKILL");
    }
  });

  test("Redis unavailable → 503 limits_unavailable, and service resumes when Redis is back", {
    skip: process.env.REDIS_URL ? "REDIS_URL given: this test must stop its own Redis" : false,
  }, async () => {
    const svc = await startService({ routes: twoRoutes(), redis: { url: redis.url, prefix: redis.prefix() } });
    try {
      assert.equal((await post(`${svc.url}/hooks/a`, { action: "list_flows" }, { secret: SECRET_A })).status, 200);
      await redis.stop();
      const down = await post(`${svc.url}/hooks/a`, { action: "list_flows" }, { secret: SECRET_A });
      assert.equal(down.status, 503);
      assert.equal(down.json.code, "limits_unavailable");
      assert.equal(down.headers.get("retry-after"), "1");
      await redis.start();
      let status = 503;
      for (let i = 0; i < 50 && status !== 200; i++) {
        await new Promise((res) => setTimeout(res, 100));
        status = (await post(`${svc.url}/hooks/a`, { action: "list_flows" }, { secret: SECRET_A })).status;
      }
      assert.equal(status, 200);
    } finally {
      await svc.close();
    }
  });
});

describe("body limits after a Redis round trip", () => {
  test("a chunked body that arrived whole while the limits were checked is still counted: over → 413, under → 200", async (t) => {
    // The acquire's round trip gives the parser time to take in the rest of the write, so the body
    // is read from the request's buffer at once (no events, no timer): the limit must hold there too.
    const svc = await startService({ routes: twoRoutes({ maxBodyBytes: 1024 }), redis: { url: redis.url, prefix: `body-${Date.now()}:` } });
    t.after(() => svc.close());
    const auth = { "content-type": "application/json", authorization: `Bearer ${SECRET_A}` };
    const whole = (body: string, extra: Record<string, string>) =>
      [head("/hooks/a", { ...auth, "transfer-encoding": "chunked", ...extra }), chunk(body.slice(0, 700)), chunk(body.slice(700)), lastChunk].join("");
    const over = await rawRequest(svc.server.port, [whole(JSON.stringify({ action: "create_flow", goal: "x".repeat(2000) }), {})]);
    assert.equal(over.status, 413);
    assert.equal(JSON.parse(over.body).code, "payload_too_large");
    const under = await rawRequest(svc.server.port, [whole(JSON.stringify({ action: "create_flow", goal: "y".repeat(800) }), { connection: "close" })]);
    assert.equal(under.status, 200);
    assert.equal(JSON.parse(under.body).result.flow.goal, "y".repeat(800));
  });
});

describe("limit stores agree", () => {
  for (const kind of ["redis", "memory"] as const) {
    test(`${kind}: window, in-flight and release`, async () => {
      const conn = kind === "redis" ? new Redis(redis.url) : undefined;
      const store = conn ? createRedisLimitStore(conn, { prefix: redis.prefix(), leaseMs: 60_000 }) : createMemoryLimitStore({ maxTrackedKeys: 4096 });
      try {
        const limits = { windowMs: 60_000, maxRequests: 3, maxInFlight: 2 };
        const a = await store.acquire("k", limits);
        const b = await store.acquire("k", limits);
        assert.ok(a.ok && b.ok);
        const c = await store.acquire("k", limits);
        assert.deepEqual(c, { ok: false, reason: "in_flight_limited" });
        await a.release();
        await a.release(); // idempotent: must not free b's slot
        const d = await store.acquire("k", limits);
        assert.equal(d.ok, false, "window of 3 used up");
        assert.equal(d.ok === false && d.reason, "rate_limited");
        const other = await store.acquire("other", limits);
        assert.ok(other.ok, "keys are independent");
      } finally {
        conn?.disconnect();
      }
    });
  }

  for (const kind of ["redis", "memory"] as const) {
    test(`${kind}: a burst asked for in one turn is judged request by request, in order`, async () => {
      const conn = kind === "redis" ? new Redis(redis.url) : undefined;
      const store = conn ? createRedisLimitStore(conn, { prefix: redis.prefix(), leaseMs: 60_000 }) : createMemoryLimitStore({ maxTrackedKeys: 4096 });
      try {
        const limits = { windowMs: 60_000, maxRequests: 6, maxInFlight: 3 };
        await awaitFreshWindow(); // all nine in one window
        const evalsBefore = conn ? await scriptCalls(conn) : 0;
        // Nine requests of one key and one of another, all asked for before any answer: the Redis
        // store sends them at the turn's end, one script call per key.
        const burst = await Promise.all([...Array.from({ length: 9 }, () => store.acquire("burst", limits)), store.acquire("calm", limits)]);
        const verdicts = burst.map((r) => (r.ok ? "ok" : r.reason));
        assert.deepEqual(verdicts, [
          "ok",
          "ok",
          "ok",
          "in_flight_limited",
          "in_flight_limited",
          "in_flight_limited",
          "rate_limited",
          "rate_limited",
          "rate_limited",
          "ok",
        ]);
        const limited = burst[6]!;
        assert.ok(!limited.ok && limited.reason === "rate_limited" && limited.retryAfterMs > 0 && limited.retryAfterMs <= 60_000);
        if (conn) assert.equal((await scriptCalls(conn)) - evalsBefore, 2, "one script call per key for the whole burst");
        // A second burst on the other key sees the first one's lease: two more fit under 3 in flight.
        const next = await Promise.all([store.acquire("calm", limits), store.acquire("calm", limits), store.acquire("calm", limits)]);
        assert.deepEqual(
          next.map((r) => (r.ok ? "ok" : r.reason)),
          ["ok", "ok", "in_flight_limited"],
        );
        for (const r of [...burst, ...next]) if (r.ok) await r.release();
      } finally {
        conn?.disconnect();
      }
    });
  }

  test("redis: the next window starts from zero, and the window key keeps one count (the script declares every key it touches)", async () => {
    const conn = new Redis(redis.url);
    const prefix = redis.prefix();
    const store = createRedisLimitStore(conn, { prefix, leaseMs: 60_000 });
    try {
      const limits = { windowMs: 300, maxRequests: 2, maxInFlight: 100 };
      const windowKey = createKeys(prefix).limits.window("roll");
      for (let round = 0; round < 3; round++) {
        // Start just after a boundary (by this clock; Redis runs on the same machine), so the three requests share a window.
        await new Promise((r) => setTimeout(r, 300 - (Date.now() % 300) + 20));
        const verdicts = await Promise.all([store.acquire("roll", limits), store.acquire("roll", limits), store.acquire("roll", limits)]);
        assert.deepEqual(
          verdicts.map((r) => (r.ok ? "ok" : r.reason)),
          ["ok", "ok", "rate_limited"],
          `round ${round}`,
        );
        const counts = await conn.hgetall(windowKey);
        assert.equal(Object.keys(counts).length, 1, "only the current window's count is kept");
        assert.equal(Object.values(counts)[0], "3");
        const ttl = await conn.pttl(windowKey);
        assert.ok(ttl > 0 && ttl <= 1_300, `expires a second after the window (${ttl} ms)`);
        for (const r of verdicts) if (r.ok) await r.release();
      }
    } finally {
      conn.disconnect();
    }
  });

  test("memory store keeps at most maxTrackedKeys windows, evicting the oldest", async () => {
    const store = createMemoryLimitStore({ maxTrackedKeys: 2 });
    const limits = { windowMs: 60_000, maxRequests: 1, maxInFlight: 10 };
    const first = await store.acquire("k1", limits);
    assert.ok(first.ok);
    assert.equal((await store.acquire("k1", limits)).ok, false);
    await store.acquire("k2", limits);
    await store.acquire("k3", limits); // evicts k1's window
    assert.equal((await store.acquire("k1", limits)).ok, true);
  });
});

/** How many times Redis has run a script (EVALSHA or EVAL) since its start. */
async function scriptCalls(conn: Redis): Promise<number> {
  const info = await conn.info("commandstats");
  let n = 0;
  for (const m of info.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)) n += Number(m[1]);
  return n;
}
