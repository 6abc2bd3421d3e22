import assert from "node:assert/strict";
import { request as httpRequest, Agent } from "node:http";
import { connect } from "node:net";
import { after, describe, test } from "node:test";
import { parseJsonBody } from "../../src/ingress/body.js";
import { actionRequestSchema } from "../../src/taskflow/schemas.js";
import { startFakeGateway } from "../support/fake-gateway.js";
import { startServiceProcess, type ServiceProcess } from "../support/process.js";
import { startReceiver } from "../support/receiver.js";
import { startRedis } from "../support/redis.js";
import { awaitFreshWindow, post, SECRET_A, SECRET_B, twoRoutes } from "../support/service.js";
import { until } from "../support/until.js";

/**
 * `npm run test:reliability`: survival, not speed. Each scenario runs the service as its own
 * process (one or two replicas) with a throwaway redis-server, the fake Gateway and loopback
 * receivers, and records a figure; the run ends with the table the README reproduces.
 */
const figures: { scenario: string; figure: string }[] = [];
const record = (scenario: string, figure: string) => {
  figures.push({ scenario, figure });
  console.log(`  [${scenario}] ${figure}`);
};
after(() => {
  const w = Math.max(...figures.map((f) => f.scenario.length));
  console.log(`\n${"scenario".padEnd(w)}  figure\n${"-".repeat(w)}  ${"-".repeat(50)}`);
  for (const f of figures) console.log(`${f.scenario.padEnd(w)}  ${f.figure}`);
});

const GW_TOKEN = "gw-token-0123456789";
const PUBLISH = "publish-token-0123456789";
const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const CI = "ci-token-0123456789";
const ADMIN = "admin-token-0123456789";

async function pool<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  }));
  return out;
}

const metricValue = async (url: string, name: string) => {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
};

describe("reliability", () => {
  test("two replicas, one Redis: limits are global and 1,000 events are delivered once each", async () => {
    const redis = await startRedis();
    const gw = await startFakeGateway({ token: GW_TOKEN });
    const rx = await startReceiver({ secret: WHSEC });
    const config = {
      redis: { url: redis.url, prefix: redis.prefix() },
      gateway: { url: gw.url, token: GW_TOKEN },
      plugins: { entries: { webhooks: { enabled: true, config: { routes: twoRoutes() } } } },
      webhooks: { publishToken: PUBLISH, allowPrivateCidrs: ["127.0.0.0/8"], endpoints: [{ name: "sink", url: rx.url, secret: WHSEC, events: ["*"], concurrency: 50 }] },
    };
    const replicas: ServiceProcess[] = [];
    try {
      replicas.push(await startServiceProcess(config), await startServiceProcess(config));
      // Rate limit: 300 requests spread over both replicas, one 120-request budget.
      await awaitFreshWindow(60_000, 15_000);
      const statuses = await pool(300, 4, (i) => post(`${replicas[i % 2]!.url}/hooks/a`, { action: "list_flows" }, { secret: SECRET_A }).then((r) => r.status));
      const accepted = statuses.filter((s) => s === 200).length;
      assert.equal(accepted, 120, `accepted ${accepted}`);
      assert.equal(statuses.filter((s) => s === 429).length, 180);
      // In-flight: 20 slow calls at once over both replicas, 8 slots.
      for (let i = 0; i < 20; i++) gw.script("create_flow", { delayMs: 1_500 });
      const slow = await Promise.all(Array.from({ length: 20 }, (_, i) => post(`${replicas[i % 2]!.url}/hooks/b`, { action: "create_flow", goal: "slow" }, { secret: SECRET_B })));
      const held = slow.filter((r) => r.status === 200).length;
      assert.equal(held, 8, `in flight at once: ${held}`);
      assert.ok(slow.filter((r) => r.status === 429).every((r) => r.json.code === "in_flight_limited"));
      // 1,000 events published through both replicas, delivered by both workers.
      await pool(1_000, 20, async (i) => {
        const r = await post(`${replicas[i % 2]!.url}/v1/events`, { type: "order.created", data: { i }, id: `order-${i}` }, { secret: PUBLISH });
        assert.equal(r.status, 202);
      });
      await until(() => new Set(rx.received.map((r) => r.headers["webhook-id"])).size === 1_000, 60_000);
      await new Promise((r) => setTimeout(r, 1_000));
      const dupes = rx.received.length - 1_000;
      assert.equal(dupes, 0, "exactly once with no fault injected");
      record("two replicas, one Redis", `rate: ${accepted}/300 accepted (budget 120); in flight: ${held}/20 (limit 8); events: 1000/1000 delivered, ${dupes} duplicates`);
    } finally {
      await Promise.all(replicas.map((r) => r.stop("SIGKILL")));
      await rx.close();
      await gw.stop();
      await redis.dispose();
    }
  });

  test("Gateway gone and back: 503 within a second, recovery by itself, no stuck in-flight slots", async () => {
    const gw = await startFakeGateway({ token: GW_TOKEN });
    const svc = await startServiceProcess({
      gateway: { url: gw.url, token: GW_TOKEN, reconnectBaseMs: 100, reconnectMaxMs: 500 },
      plugins: { entries: { webhooks: { enabled: true, config: { routes: twoRoutes({ rateLimit: { windowMs: 60_000, maxRequests: 10_000 } }) } } } },
    });
    try {
      // Calls hanging in the Gateway when it goes away must not keep their slots.
      for (let i = 0; i < 8; i++) gw.script("create_flow", { delayMs: 5_000 });
      const hanging = Promise.all(Array.from({ length: 8 }, () => post(`${svc.url}/hooks/a`, { action: "create_flow", goal: "x" }, { secret: SECRET_A })));
      await new Promise((r) => setTimeout(r, 300));
      await gw.stop();
      const cut = await hanging;
      assert.ok(cut.every((r) => r.status === 503), cut.map((r) => r.status).join(","));
      let worst = 0;
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        const r = await post(`${svc.url}/hooks/a`, { action: "list_flows" }, { secret: SECRET_A });
        worst = Math.max(worst, performance.now() - t0);
        assert.deepEqual([r.status, r.json.code], [503, "gateway_unavailable"]);
      }
      assert.ok(worst < 1_000, `503 took ${worst.toFixed(0)} ms`);
      const t0 = Date.now();
      await gw.restart();
      await until(async () => (await post(`${svc.url}/hooks/a`, { action: "list_flows" }, { secret: SECRET_A })).status === 200, 15_000);
      const recoveredMs = Date.now() - t0;
      const all = await Promise.all(Array.from({ length: 8 }, () => post(`${svc.url}/hooks/a`, { action: "create_flow", goal: "after" }, { secret: SECRET_A })));
      assert.ok(all.every((r) => r.status === 200), `8 slots free again: ${all.map((r) => r.status).join(",")}`);
      record("Gateway gone and back", `503 in ≤ ${worst.toFixed(0)} ms; recovered ${recoveredMs} ms after restart; 8/8 slots free`);
    } finally {
      await svc.stop("SIGKILL");
      await gw.stop();
    }
  });

  test("hostile input: 10,000 generated requests on every route kind, no 5xx, no crash, no pollution, memory back to baseline", async () => {
    const redis = await startRedis();
    const svc = await startServiceProcess({
      redis: { url: redis.url, prefix: redis.prefix() },
      admin: { token: ADMIN },
      limits: { rateLimit: { windowMs: 60_000, maxRequests: 1_000_000 }, maxInFlight: 1_000 },
      plugins: { entries: { webhooks: { enabled: true, config: { routes: twoRoutes() } } } },
      webhooks: {
        publishToken: PUBLISH,
        allowPrivateCidrs: ["127.0.0.0/8"],
        endpoints: [{ name: "sink", url: "http://127.0.0.1:9/", secret: WHSEC, events: ["never.*"] }],
        inbound: { endpoints: { deploy: { template: "{{body.repo}}", auth: { scheme: "token", secret: CI } }, sig: { template: "{{body.x}}", auth: { scheme: "standard-webhooks", secret: WHSEC } } } },
      },
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 50 });
    try {
      let seed = 42;
      const rand = () => ((seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff) / 0x7fffffff);
      const pick = <T,>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
      const targets = [
        { path: "/hooks/a", auth: `Bearer ${SECRET_A}` },
        { path: "/webhooks/inbound/deploy", auth: `Bearer ${CI}` },
        { path: "/webhooks/inbound/sig", auth: "" },
        { path: "/v1/events", auth: `Bearer ${PUBLISH}` },
        { path: "/admin/api/deliveries/replay", auth: `Bearer ${ADMIN}` },
        { path: "/admin/api/deliveries/x/replay", auth: `Bearer ${ADMIN}` },
      ];
      const bodies: (() => Buffer | string)[] = [
        () => "{not json",
        () => `${"[".repeat(20_000)}${"]".repeat(20_000)}`,
        () => `{"a":${"{\"a\":".repeat(5_000)}1${"}".repeat(5_001)}`,
        () => '{"action":"create_flow","goal":1e400}',
        () => '{"action":"create_flow","goal":"g","stateJson":123456789012345678901234567890123456789}',
        () => '{"action":["create_flow"],"goal":{"x":1}}',
        () => '{"__proto__":{"polluted":"yes"},"action":"create_flow","goal":"g"}',
        () => '{"constructor":{"prototype":{"polluted":"yes"}},"type":"x.y","data":{}}',
        () => '{"type":"a.b","data":{"__proto__":{"polluted":"yes"}},"id":"p"}',
        () => Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d]),
        () => Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 2_000) }, () => Math.floor(rand() * 256))),
        () => JSON.stringify({ endpoint: pick(["sink", "", "../x", "__proto__"]), since: pick(["1h", "-5", "bogus", 1e308]) }),
        () => JSON.stringify({ repo: "x".repeat(300_000) }),
        () => "",
      ];
      const statuses = new Map<number, number>();
      const N = 10_000;
      const baseMb = (await metricValue(svc.url, "openclaw_webhooks_nodejs_heap_size_used_bytes")) / 2 ** 20;
      await pool(N, 50, (i) => {
        const t = pick(targets);
        const body = pick(bodies)();
        const method = rand() < 0.1 ? pick(["GET", "PUT", "DELETE", "PATCH", "OPTIONS"]) : "POST";
        const headers: Record<string, string> = { "content-type": rand() < 0.1 ? pick(["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1", "", "application/vnd.x+json"]) : "application/json" };
        if (t.auth && rand() < 0.9) headers.authorization = t.auth;
        if (rand() < 0.02) headers["x-huge"] = "h".repeat(20_000);
        if (rand() < 0.05) headers["webhook-id"] = `msg_${i}`;
        return new Promise<void>((resolve) => {
          const req = httpRequest(`${svc.url}${t.path}`, { method, headers, agent }, (res) => {
            statuses.set(res.statusCode!, (statuses.get(res.statusCode!) ?? 0) + 1);
            res.resume();
            res.on("end", resolve);
            res.on("error", () => resolve());
          });
          req.on("error", () => {
            statuses.set(0, (statuses.get(0) ?? 0) + 1);
            resolve();
          });
          req.end(body);
        });
      });
      const fiveXX = [...statuses].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0);
      assert.equal(fiveXX, 0, `5xx answers: ${JSON.stringify([...statuses])}`);
      assert.equal(svc.child.exitCode, null, "still running");
      assert.equal((await fetch(`${svc.url}/healthz`)).status, 200);
      // A normal request still behaves normally, and answers carry nothing injected.
      const r = await post(`${svc.url}/hooks/a`, { action: "create_flow", goal: "after the storm" }, { secret: SECRET_A });
      assert.equal(r.status, 200);
      assert.ok(!r.text.includes("polluted"));
      // The same corpus through the parser and schema in this process: Object.prototype untouched.
      for (const make of bodies) {
        try {
          actionRequestSchema.safeParse(parseJsonBody(Buffer.from(make())));
        } catch {
          /* a 400 in the service */
        }
      }
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
      await new Promise((res) => setTimeout(res, 2_000));
      const heapMb = (await metricValue(svc.url, "openclaw_webhooks_nodejs_heap_size_used_bytes")) / 2 ** 20;
      assert.ok(heapMb < baseMb + 64, `heap used ${heapMb.toFixed(0)} MB after the storm, ${baseMb.toFixed(0)} MB before`);
      const codes = [...statuses].sort(([a], [b]) => a - b).map(([s, c]) => `${s}×${c}`).join(" ");
      record("hostile input", `${N} requests: ${codes} (0 = the server closed the connection, after a 431); 0 5xx; heap ${baseMb.toFixed(0)} → ${heapMb.toFixed(0)} MB`);
    } finally {
      agent.destroy();
      await svc.stop("SIGKILL");
      await redis.dispose();
    }
  });

  test("slow clients: 200 trickling bodies, normal clients still served, the body timeout and in-flight limit hold", async () => {
    const svc = await startServiceProcess({
      limits: { bodyTimeoutMs: 3_000 },
      plugins: { entries: { webhooks: { enabled: true, config: { routes: twoRoutes({ rateLimit: { windowMs: 60_000, maxRequests: 100_000 } }) } } } },
    });
    const sockets: ReturnType<typeof connect>[] = [];
    try {
      const normal = async (n: number) => {
        const ms: number[] = [];
        for (let i = 0; i < n; i++) {
          const t0 = performance.now();
          const r = await post(`${svc.url}/hooks/b`, { action: "list_flows" }, { secret: SECRET_B });
          assert.equal(r.status, 200);
          ms.push(performance.now() - t0);
        }
        return ms.sort((a, b) => a - b)[Math.floor(n / 2)]!;
      };
      const before = await normal(50);
      const answers: string[] = [];
      const opened = Date.now();
      for (let i = 0; i < 200; i++) {
        const s = connect(svc.port, "127.0.0.1");
        s.on("error", () => {});
        let got = "";
        s.on("data", (d) => (got += d));
        s.on("close", () => answers.push(got.split("\r\n")[0] ?? ""));
        s.write(`POST /hooks/a HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ${SECRET_A}\r\nContent-Length: 1000\r\n\r\n{`);
        sockets.push(s);
      }
      const trickle = setInterval(() => sockets.forEach((s) => s.writable && s.write(" ")), 500);
      await new Promise((r) => setTimeout(r, 500));
      const during = await normal(50);
      await until(() => answers.length === 200, 15_000);
      clearInterval(trickle);
      const closedAfter = Date.now() - opened;
      const timeouts = answers.filter((a) => a.includes(" 408 ")).length;
      const limited = answers.filter((a) => a.includes(" 429 ")).length;
      assert.equal(timeouts, 8, "the 8 in-flight slots time out their slow bodies");
      assert.equal(limited, 192, "the rest are refused at once by the in-flight limit");
      assert.ok(closedAfter < 6_000, `all slow clients answered within ${closedAfter} ms (body timeout 3 s)`);
      assert.ok(during < Math.max(3 * before, before + 20), `normal p50 ${during.toFixed(1)} ms during vs ${before.toFixed(1)} ms before`);
      record("slow clients", `200 slowloris: 8 × 408 after the 3 s body timeout, 192 × 429 at once; normal p50 ${before.toFixed(1)} → ${during.toFixed(1)} ms`);
    } finally {
      sockets.forEach((s) => s.destroy());
      await svc.stop("SIGKILL");
    }
  });
});
