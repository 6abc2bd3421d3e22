import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { GatewayClient } from "../../src/gateway/client.js";
import { catalogueValidator } from "../support/catalogue.js";
import { startReceiver } from "../support/receiver.js";
import { freePort, startRedis, type TestRedis } from "../support/redis.js";
import { startService, type TestService } from "../support/service.js";
import { startStubModel, type StubModel } from "../support/stub-model.js";
import { deliveriesTo, openclawEntry, operatorClient, startRealGateway, type Envelope, type RealGateway } from "./real-gateway.js";

/**
 * The bridge plugin's `webhooks_emit` agent tool on the real Gateway 2026.9.6 (issue #15): the stub
 * model calls it, the plugin posts the event to the service with its own publish token, and the
 * receiver gets it once, signed, from two replicas sharing one Redis.
 */
const SECRET = `whsec_${randomBytes(24).toString("base64")}`;
const PUBLISH = "publish-token-0123456789abcdef";
const ADMIN = "admin-token-0123456789abcdef";

let model: StubModel;
let gw: RealGateway;
/** A second Gateway with Tool Search off (`tools.toolSearch: false`): plugin tools are offered directly. */
let direct: RealGateway;
let redis: TestRedis;
let rx: Awaited<ReturnType<typeof startReceiver>>;
/** An endpoint that always answers 500, with one attempt: its deliveries fail (for `--status failed`). */
let down: Awaited<ReturnType<typeof startReceiver>>;
let replicas: TestService[] = [];
let caller: GatewayClient;
let directCaller: GatewayClient;
const frames: { event: string; payload: any }[] = [];

before(async () => {
  model = await startStubModel();
  redis = await startRedis();
  rx = await startReceiver({ secret: SECRET });
  down = await startReceiver({ secret: SECRET });
  down.setFallback({ status: 500, body: "down" });
  const port = await freePort();
  const bridge = {
    bridgeConversationAccess: true,
    bridge: {
      service: {
        url: `http://127.0.0.1:${port}`,
        token: { source: "env", id: "OCWH_TEST_PUBLISH_TOKEN" },
        adminToken: { source: "env", id: "OCWH_TEST_ADMIN_TOKEN" },
      },
      emit: { perSession: { max: 3, windowMs: 60_000 } },
    },
    env: { OCWH_TEST_PUBLISH_TOKEN: PUBLISH },
  };
  [gw, direct] = await Promise.all([
    startRealGateway({ model: model.baseUrl, ...bridge }),
    startRealGateway({ model: model.baseUrl, ...bridge, config: { tools: { toolSearch: false } } }),
  ]);
  const cfg = (p: number) => ({
    server: { host: "127.0.0.1", port: p },
    redis: { url: redis.url, prefix: "ocwh-agent-tool:" },
    gateway: { url: gw.url, token: gw.token, callTimeoutMs: 10_000 },
    admin: { token: ADMIN },
    webhooks: {
      publishToken: PUBLISH,
      allowPrivateCidrs: ["127.0.0.0/8"],
      endpoints: [
        { name: "crm", url: rx.url, secret: SECRET, events: ["custom.*", "lead.*", "intent.*", "handoff.*"] },
        { name: "legacy-crm", url: down.url, secret: SECRET, events: ["lead.*"], retry: { maxAttempts: 1, backoffMs: 100 } },
      ],
    },
  });
  replicas = [await startService(cfg(port)), await startService(cfg(0))];
  await Promise.all(replicas.map((r) => r.deps.egress!.startWorker()));
  const client = (g: RealGateway) => {
    const c = operatorClient(g, { subscribeSessions: true });
    c.onEvent((e) => frames.push({ event: e.event, payload: e.payload }));
    return c;
  };
  caller = client(gw);
  directCaller = client(direct);
  await caller.start();
  await directCaller.start();
});

after(async () => {
  await caller?.close();
  await directCaller?.close();
  for (const r of replicas) await r.close();
  await rx?.close();
  await down?.close();
  await redis?.dispose();
  await gw?.dispose();
  await direct?.dispose();
  await model?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const envelopes = () => deliveriesTo(rx).envelopes();
const deliveries = (pred: (e: Envelope) => boolean, n?: number, ms?: number) => deliveriesTo(rx).deliveries(pred, n, ms);
/** The tool's result row in the transcript, for the run's tool call. */
async function toolResult(sessionKey: string, ms = 30_000) {
  const end = Date.now() + ms;
  for (;;) {
    const f = frames.find((x) => x.event === "session.tool" && x.payload.sessionKey === sessionKey && x.payload.data?.phase === "result");
    if (f) return f.payload.data;
    if (Date.now() > end) throw new Error(`no tool result in ${sessionKey}`);
    await sleep(50);
  }
}
/**
 * The real `openclaw` CLI on the Gateway host (its state folder, so it reads the Gateway's
 * openclaw.json with the bridge plugin's config), as an operator would run it.
 */
function openclaw(args: string[], opts: { home?: string; adminToken?: string } = {}) {
  const home = opts.home ?? join(gw.dir, "home");
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [openclawEntry(), ...args],
      {
        cwd: gw.dir,
        timeout: 90_000,
        env: {
          ...process.env,
          HOME: home,
          OPENCLAW_STATE_DIR: join(home, ".openclaw"),
          OPENCLAW_DISABLE_BONJOUR: "1",
          OPENCLAW_NO_AUTO_UPDATE: "1",
          OCWH_TEST_ADMIN_TOKEN: opts.adminToken ?? ADMIN,
        },
      },
      (err, stdout, stderr) => resolve({ code: err ? ((err as any).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const turn = (sessionKey: string, message: string, via = caller) => via.call<{ runId: string }>("agent", { message, sessionKey, idempotencyKey: randomUUID() });

describe("webhooks_emit: agents fire their own events (real Gateway, stub model)", () => {
  test("a dotted type, called directly (Tool Search off): delivered once as that type, with the agent's context and the triggering message", async () => {
    const key = "agent:main:emit-direct";
    const { runId } = await turn(key, 'The customer is ready to buy [stub:tool webhooks_emit {"type":"lead.qualified","data":{"score":91}}]', directCaller);
    const [e, ...more] = await deliveries((x) => x.type === "lead.qualified" && x.data.sessionKey === key);
    assert.equal(more.length, 0);
    assert.equal(e!.data.score, 91);
    assert.equal(e!.data.agentId, "main");
    assert.equal(e!.data.runId, runId);
    assert.match(e!.data.trigger_message, /^The customer is ready to buy/);
    assert.equal((await toolResult(key)).isError, false);
    assert.ok(rx.received.every((r) => r.verified));
  });

  test("a bare name through Tool Search's tool_call: custom.triggered with event_name", async () => {
    const key = "agent:main:emit-search";
    await turn(
      key,
      'I want to cancel my subscription [stub:tool tool_call {"id":"webhooks_emit","args":{"type":"cancellation_intent","data":{"sentiment":"frustrated"}}}]',
    );
    const result = await toolResult(key);
    assert.equal(result.isError, false, JSON.stringify(result));
    const [e, ...more] = await deliveries((x) => x.type === "custom.triggered" && x.data.sessionKey === key);
    assert.equal(more.length, 0);
    assert.equal(e!.data.event_name, "cancellation_intent");
    assert.equal(e!.data.sentiment, "frustrated");
    assert.match(e!.data.trigger_message, /^I want to cancel my subscription/);
  });

  test("what the agents fired meets the event catalogue at /openapi.json (custom.triggered, and a dotted type as an agent event)", async () => {
    const v = catalogueValidator((await (await fetch(`${replicas[0]!.url}/openapi.json`)).json()) as never);
    const fired = rx.received.map((r) => JSON.parse(r.body)).filter((e) => e.type === "custom.triggered" || e.type === "lead.qualified");
    assert.deepEqual(fired.map((e) => v.entryFor(e)).sort(), ["agent event", "custom.triggered"]);
    for (const e of fired) assert.deepEqual(v.problems(e), [], JSON.stringify(e).slice(0, 500));
  });

  test("a refused type: the agent gets a tool error naming why, and nothing is delivered", async () => {
    const key = "agent:main:emit-refused";
    await turn(key, 'Pretend [stub:tool tool_call {"id":"webhooks_emit","args":{"type":"message.sent","data":{}}}]');
    const result = await toolResult(key);
    assert.equal(result.isError, true, JSON.stringify(result));
    assert.match(JSON.stringify(result), /cannot fire it/);
    await turn(key, 'And this [stub:tool tool_call {"id":"webhooks_emit","args":{"type":"billing.refund","data":{}}}]');
    await sleep(1_500);
    assert.deepEqual(
      envelopes().filter((x) => x.data.sessionKey === key),
      [],
    );
  });

  test("openclaw deliveries list --recent 20, list --status failed, show and replay: the real CLI prints the service's deliveries", async () => {
    const key = "agent:main:emit-cli";
    await turn(key, 'Qualified [stub:tool tool_call {"id":"webhooks_emit","args":{"type":"lead.qualified","data":{"score":70}}}]');
    const [ok] = await deliveries((x) => x.type === "lead.qualified" && x.data.sessionKey === key);
    for (let i = 0; i < 200 && down.received.filter((r) => JSON.parse(r.body).id === ok!.id).length === 0; i++) await sleep(50);
    const recent = await openclaw(["deliveries", "list", "--recent", "20"]);
    assert.equal(recent.code, 0, recent.stderr);
    assert.match(recent.stdout, /ID\s+EVENT\s+ENDPOINT\s+STATUS/);
    assert.match(recent.stdout, /lead\.qualified\s+crm\s+delivered/);
    const failed = await openclaw(["deliveries", "list", "--status", "failed", "--json"]);
    assert.equal(failed.code, 0, failed.stderr);
    const rows = JSON.parse(failed.stdout) as { id: string; status: string; endpoint: string; lastStatus: number }[];
    assert.ok(rows.length >= 1 && rows.every((d) => d.status === "failed" && d.endpoint === "legacy-crm" && d.lastStatus === 500), failed.stdout);
    const id = rows[0]!.id;
    const show = await openclaw(["deliveries", "show", id]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /legacy-crm\s+failed, 1 attempt/);
    const before = down.received.length;
    const replay = await openclaw(["deliveries", "replay", id]);
    assert.equal(replay.code, 0, replay.stderr);
    assert.match(replay.stdout, /replay of .* started/);
    for (let i = 0; i < 200 && down.received.length === before; i++) await sleep(50);
    assert.equal(down.received.length, before + 1, "the replayed attempt reached the endpoint");
    assert.equal(down.received.at(-1)!.headers["webhook-id"], id, "same webhook-id");
  });

  test("openclaw deliveries: a wrong token exits 4, an unreachable service exits 3, each with a message that says so", async () => {
    const wrong = await openclaw(["deliveries", "list"], { adminToken: "wrong-token" });
    assert.equal(wrong.code, 4, wrong.stdout + wrong.stderr);
    assert.match(wrong.stderr, /refused the admin token \(401\)/);
    // The same Gateway config with the service's URL pointing at a closed port.
    const home = mkdtempSync(join(tmpdir(), "ocwh-cli-"));
    try {
      const cfg = JSON.parse(readFileSync(join(gw.dir, "home", ".openclaw", "openclaw.json"), "utf8"));
      cfg.plugins.entries["webhooks-bridge"].config.service.url = `http://127.0.0.1:${await freePort()}`;
      mkdirSync(join(home, ".openclaw"));
      writeFileSync(join(home, ".openclaw", "openclaw.json"), JSON.stringify(cfg));
      const away = await openclaw(["deliveries", "list"], { home });
      assert.equal(away.code, 3, away.stdout + away.stderr);
      assert.match(away.stderr, /cannot reach the webhook service at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
