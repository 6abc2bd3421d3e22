import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { createLogger } from "../src/log.js";
import { startReceiver } from "./support/receiver.js";
import { startRedis, type TestRedis } from "./support/redis.js";
import { post, SECRET_A, startService, type TestService } from "./support/service.js";
import { until } from "./support/until.js";

const PUBLISH = "publish-token-0123456789";
const CI = "ci-token-0123456789";
const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/** The documented limit (src/http/body.ts MAX_JSON_DEPTH), written out so the test states the contract. */
const MAX_JSON_DEPTH = 64;

/** `n` nested arrays: `[[[…]]]`, 2n bytes. */
const nested = (n: number) => "[".repeat(n) + "]".repeat(n);

/**
 * Deeply nested JSON on every surface that parses a request body: the publish API, a TaskFlow
 * route's stateJson and an inbound endpoint whose template renders the body. Each must answer 400
 * naming the depth limit, quickly, and log nothing at error level (no stack).
 */
describe("deeply nested JSON bodies", () => {
  let redis: TestRedis;
  let rx: Awaited<ReturnType<typeof startReceiver>>;
  let svc: TestService;
  const lines: string[] = [];
  before(async () => {
    redis = await startRedis();
    rx = await startReceiver({ secret: WHSEC });
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(...chunk.toString().split("\n").filter(Boolean));
        cb();
      },
    });
    svc = await startService(
      {
        redis: { url: redis.url, prefix: redis.prefix() },
        routes: { a: { path: "/hooks/a", sessionKey: "agent:main:hook:a", secret: SECRET_A } },
        webhooks: {
          publishToken: PUBLISH,
          allowPrivateCidrs: ["127.0.0.0/8"],
          endpoints: [{ name: "crm", url: rx.url, secret: WHSEC, events: ["lead.*"] }],
          inbound: { endpoints: { deploy: { template: "{{body.repo}} {{body.deep}}", auth: { scheme: "token", secret: CI } } } },
        },
      },
      { log: createLogger({ level: "info", destination: sink }) },
    );
    await svc.deps.egress!.startWorker();
  });
  after(async () => {
    await svc?.close();
    await rx?.close();
    await redis?.dispose();
  });

  const surfaces = [
    { name: "POST /v1/events (data)", path: "/v1/events", secret: PUBLISH, body: (deep: string) => `{"type":"lead.qualified","data":{"x":${deep}}}` },
    {
      name: "TaskFlow create_flow stateJson",
      path: "/hooks/a",
      secret: SECRET_A,
      body: (deep: string) => `{"action":"create_flow","goal":"g","stateJson":${deep}}`,
    },
    { name: "inbound template endpoint", path: "/webhooks/inbound/deploy", secret: CI, body: (deep: string) => `{"repo":"my-app","deep":${deep}}` },
  ];

  for (const s of surfaces) {
    for (const depth of [5_000, 20_000]) {
      test(`${s.name}: ${depth.toLocaleString("en")} levels → 400 naming the limit, no error log`, async () => {
        const before = lines.length;
        const started = performance.now();
        const res = await post(`${svc.url}${s.path}`, s.body(nested(depth)), { secret: s.secret });
        const ms = performance.now() - started;
        assert.equal(res.status, 400, res.text);
        assert.equal(res.json?.code, "invalid_request");
        assert.match(res.json?.error, new RegExp(`nested more than ${MAX_JSON_DEPTH} levels`));
        assert.ok(ms < 2_000, `answered in ${ms.toFixed(0)} ms`);
        const errors = lines.slice(before).filter((l) => JSON.parse(l).level >= 50);
        assert.deepEqual(errors, [], "no error-level log line");
      });
    }
  }

  test(`a body exactly ${MAX_JSON_DEPTH} levels deep is accepted on every surface; brackets inside strings do not count`, async () => {
    // The body's own object is level 1, so its field can hold MAX_JSON_DEPTH - 1 levels.
    const fits = nested(MAX_JSON_DEPTH - 1);
    const inString = JSON.stringify("[".repeat(10_000));
    const events = await post(`${svc.url}/v1/events`, `{"type":"lead.qualified","data":{"s":${inString},"x":${nested(MAX_JSON_DEPTH - 2)}}}`, {
      secret: PUBLISH,
    });
    assert.equal(events.status, 202, events.text);
    await until(() => rx.received.length === 1);
    assert.equal(rx.received[0]!.verified, true);
    const flow = await post(`${svc.url}/hooks/a`, `{"action":"create_flow","goal":"g","stateJson":${fits}}`, { secret: SECRET_A });
    assert.equal(flow.status, 200, flow.text);
    const inbound = await post(`${svc.url}/webhooks/inbound/deploy`, `{"repo":"my-app","deep":${fits}}`, { secret: CI });
    assert.equal(inbound.status, 202, inbound.text);
    const over = await post(`${svc.url}/hooks/a`, `{"action":"create_flow","goal":"g","stateJson":${nested(MAX_JSON_DEPTH)}}`, { secret: SECRET_A });
    assert.equal(over.status, 400, over.text);
  });
});
