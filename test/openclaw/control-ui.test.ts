import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { chromium, type Browser, type Page } from "playwright-core";
import { startReceiver } from "../support/receiver.js";
import { freePort, startRedis, type TestRedis } from "../support/redis.js";
import { startService, type TestService } from "../support/service.js";
import { createGatewayClient } from "../../src/gateway/client.js";
import { createLogger } from "../../src/log.js";
import { operatorClient, startRealGateway, type RealGateway } from "./real-gateway.js";

/**
 * The Webhooks page the bridge plugin contributes to the real Gateway's Control UI (issue #15,
 * part 3), opened in headless Chromium: the native page (lab setting on) with live updates and
 * Replay, and the read-only tab the Control UI hosts without the lab setting. Both are answered
 * by the service's admin API from the Gateway process.
 */
const SECRET = `whsec_${randomBytes(24).toString("base64")}`;
const PUBLISH = "publish-token-0123456789abcdef";
const ADMIN = "admin-token-0123456789abcdef";
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const OUT = ".tmp/test-output";

let redis: TestRedis;
let rx: Awaited<ReturnType<typeof startReceiver>>;
/** Always 500, one attempt: its deliveries fail with a reason. */
let down: Awaited<ReturnType<typeof startReceiver>>;
let service: TestService;
let servicePort: number;
/** Lab setting on: the native page. */
let native: RealGateway;
/** Lab setting off: the tab. */
let tab: RealGateway;
let browser: Browser;

async function startTheService(port: number) {
  service = await startService({
    server: { host: "127.0.0.1", port },
    redis: { url: redis.url, prefix: "ocwh-control-ui:" },
    admin: { token: ADMIN },
    webhooks: {
      publishToken: PUBLISH,
      allowPrivateCidrs: ["127.0.0.0/8"],
      endpoints: [
        // A token in the query string, as Slack-style URLs have: the page must not show it.
        { name: "crm", url: `${rx.url}/hook?token=query-secret-xyz`, secret: SECRET, events: ["lead.*"] },
        { name: "legacy-crm", url: down.url, secret: SECRET, events: ["lead.*"], retry: { maxAttempts: 1, backoffMs: 100 } },
      ],
    },
  } as never);
  await service.deps.egress!.startWorker();
}

before(async () => {
  redis = await startRedis();
  rx = await startReceiver({ secret: SECRET });
  down = await startReceiver({ secret: SECRET });
  down.setFallback({ status: 500, body: "down" });
  servicePort = await freePort();
  await startTheService(servicePort);
  const bridge = { service: { url: `http://127.0.0.1:${servicePort}`, adminToken: { source: "env", id: "OCWH_TEST_ADMIN_TOKEN" } } };
  const env = { OCWH_TEST_ADMIN_TOKEN: ADMIN };
  [native, tab] = await Promise.all([
    startRealGateway({ bridge, env, gateway: { controlUi: { experimental: { customPlugins: true } } } }),
    startRealGateway({ bridge, env }),
  ]);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
  mkdirSync(OUT, { recursive: true });
});

after(async () => {
  await browser?.close();
  await native?.dispose();
  await tab?.dispose();
  await service?.close();
  await rx?.close();
  await down?.close();
  await redis?.dispose();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function publish(data: Record<string, unknown>) {
  const res = await fetch(`http://127.0.0.1:${servicePort}/v1/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${PUBLISH}`, "content-type": "application/json" },
    body: JSON.stringify({ type: "lead.qualified", data }),
  });
  const text = await res.text();
  assert.equal(res.status, 202, text);
  return (JSON.parse(text) as { id: string }).id;
}
/** Until both endpoints have had their attempt for the event. */
async function settled(eventId: string) {
  for (let i = 0; i < 200; i++) {
    const ids = [...rx.received, ...down.received].map((r) => JSON.parse(r.body).id);
    if (ids.filter((x) => x === eventId).length >= 2) return;
    await sleep(50);
  }
  throw new Error(`event ${eventId} not attempted at both endpoints`);
}
/**
 * A browser tab signed in to the Control UI with the Gateway token (a loopback browser is paired
 * by itself) on the Webhooks page: the native page's address, or the tab's slug.
 */
async function webhooksPage(gw: RealGateway, path: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(`${gw.http}${path}#token=${gw.token}`);
  // The page is in the sidebar too.
  await page
    .locator("a", { hasText: /^\s*Webhooks\s*$/ })
    .first()
    .waitFor({ timeout: 30_000 });
  return page;
}
const NATIVE_PAGE = "/plugin?plugin=webhooks-bridge&id=webhooks";
const TAB_PAGE = "/webhooks";

describe("The Control UI's Webhooks page (real Gateway, headless Chromium)", () => {
  test("native page (Custom plugin UI on): status, response times and failure reasons, live; Replay sends the same webhook-id again", async () => {
    const first = await publish({ n: 1 });
    await settled(first);
    const page = await webhooksPage(native, NATIVE_PAGE);
    const rows = page.locator("#wb-deliveries tbody tr[data-id]");
    await rows.first().waitFor({ timeout: 20_000 });
    const failed = page.locator("#wb-deliveries tbody tr[data-id]", { hasText: "legacy-crm" }).first();
    assert.match(await failed.innerText(), /lead\.qualified\s+legacy-crm\s+failed\s+1\s+500\s+\d+\s+HTTP 500/);
    assert.match(
      await page.locator("#wb-deliveries tbody tr[data-id]", { hasText: "crm" }).filter({ hasText: "delivered" }).first().innerText(),
      /crm\s+delivered\s+1\s+200\s+\d+/,
    );
    const endpoints = await page.locator("#wb-endpoints").innerText();
    assert.match(endpoints, /crm\s+http:\/\/127\.0\.0\.1:\d+ · circuit closed/);
    assert.doesNotMatch(await page.content(), /query-secret-xyz|\/hook/, "an endpoint is shown by name and origin only");

    // Live: a delivery made after the page opened appears without a reload.
    const before = await rows.count();
    const second = await publish({ n: 2 });
    await settled(second);
    await page.waitForFunction((n) => (globalThis as any).document.querySelectorAll("#wb-deliveries tbody tr[data-id]").length >= n + 2, before, {
      timeout: 10_000,
    });

    // Replay the newest failed delivery from its button: one more attempt, same webhook-id.
    const id = (await failed.getAttribute("data-id"))!;
    const attemptsBefore = down.received.length;
    await page.locator(`button[data-replay="${id}"]`).click();
    await page.getByText(`replay of ${id} started`).waitFor({ timeout: 10_000 });
    for (let i = 0; i < 200 && down.received.length === attemptsBefore; i++) await sleep(50);
    assert.equal(down.received.length, attemptsBefore + 1, "the replayed attempt reached the endpoint");
    assert.equal(down.received.at(-1)!.headers["webhook-id"], id);
    // Its row now counts two attempts; opening it lists them.
    const row = page.locator(`#wb-deliveries tr[data-id="${id}"]`);
    await page.waitForFunction(
      (x) => (globalThis as any).document.querySelector(`#wb-deliveries tr[data-id="${x}"]`)?.querySelectorAll("td")[4]?.textContent === "2",
      id,
      { timeout: 10_000 },
    );
    await row.locator("td").first().click();
    await page.locator(".wb-attempts").getByText("#2").waitFor({ timeout: 10_000 });
    await page.screenshot({ path: `${OUT}/control-ui-native.png`, fullPage: true });
    await page.close();
  });

  test("the Gateway methods behind it: operator.read lists, replay needs operator.write, a bad id is a clear error", async () => {
    const reader = operatorClient(native);
    // The client logs what the Gateway said (its errors carry only the code).
    const said: string[] = [];
    const readOnly = createGatewayClient({
      url: native.url,
      token: async () => native.token,
      log: createLogger({ level: "warn", destination: { write: (line: string) => void said.push(line) } }),
      version: "test",
      scopes: ["operator.read"],
      callTimeoutMs: 30_000,
    });
    await reader.start();
    await readOnly.start();
    try {
      const snap = (await readOnly.call("webhooksBridge.list_deliveries", { status: "failed", limit: 5 })) as {
        deliveries: { status: string; id: string }[];
        endpoints: { name: string; origin: string }[];
      };
      assert.ok(snap.deliveries.length >= 1 && snap.deliveries.every((d) => d.status === "failed"));
      assert.deepEqual(snap.endpoints.map((e) => e.name).sort(), ["crm", "legacy-crm"]);
      assert.ok(
        snap.endpoints.every((e) => /^http:\/\/127\.0\.0\.1:\d+$/.test(e.origin)),
        JSON.stringify(snap.endpoints),
      );
      const id = snap.deliveries[0]!.id;
      const attempts = down.received.length;
      await assert.rejects(readOnly.call("webhooksBridge.replay_delivery", { id }), /\(INVALID_REQUEST\)|\(FORBIDDEN\)/);
      assert.match(said.join(""), /missing scope: operator\.write/);
      await sleep(500);
      assert.equal(down.received.length, attempts, "a read-only operator replays nothing");
      await assert.rejects(readOnly.call("webhooksBridge.get_delivery", { id: "dlv_nope" }), /\(NOT_FOUND\)/);
      assert.match(said.join(""), /not_found: no delivery dlv_nope/);
      await assert.rejects(readOnly.call("webhooksBridge.list_deliveries", { status: "lost" }), /\(INVALID_REQUEST\)/);
      assert.match(said.join(""), /the status is failed, delivered, pending/);
    } finally {
      await reader.close();
      await readOnly.close();
    }
  });

  test("tab (no lab setting): the Control UI frames a read-only page that refreshes itself and shows the replay command", async () => {
    const page = await webhooksPage(tab, TAB_PAGE);
    const frame = page.frameLocator("iframe.plugin-tab-embed__frame");
    await frame.locator("#deliveries tbody tr[data-id]").first().waitFor({ timeout: 20_000 });
    const failedRow = frame.locator("#deliveries tbody tr.failed").first();
    assert.match(await failedRow.innerText(), /lead\.qualified\s+legacy-crm\s+failed\s+\d+\s+500\s+\d+\s+HTTP 500\s+openclaw deliveries replay dlv_/);
    assert.doesNotMatch(await frame.locator("body").innerHTML(), /query-secret-xyz/);
    // It refreshes by itself: an event published now shows up in the frame.
    const id = await publish({ n: 3 });
    await settled(id);
    await frame.locator(`#deliveries tr[data-id^="dlv_${id}"]`).first().waitFor({ timeout: 15_000 });
    await page.screenshot({ path: `${OUT}/control-ui-tab.png`, fullPage: true });
    await page.close();
    // The route behind it is the Gateway's: no token, 401; a POST with the token, 405 (it is read-only).
    const path = `${tab.http}/plugins/webhooks-bridge/deliveries/`;
    assert.equal((await fetch(path)).status, 401);
    const post = await fetch(path, { method: "POST", headers: { authorization: `Bearer ${tab.token}` } });
    assert.equal(post.status, 405);
    assert.match(await post.text(), /openclaw deliveries replay/);
  });

  test("the service away: both pages say so instead of showing stale rows, and recover when it is back", async () => {
    await service.close();
    const page = await webhooksPage(native, NATIVE_PAGE);
    await page
      .locator("#wb-error")
      .getByText(/cannot reach the webhook service at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/)
      .waitFor({ timeout: 15_000 });
    const html = await (await fetch(`${tab.http}/plugins/webhooks-bridge/deliveries/`, { headers: { authorization: `Bearer ${tab.token}` } })).text();
    assert.match(html, /id="error">cannot reach the webhook service/);
    await startTheService(servicePort);
    await page.locator("#wb-error").waitFor({ state: "hidden", timeout: 15_000 });
    assert.ok((await page.locator("#wb-deliveries tbody tr[data-id]").count()) >= 1);
    await page.close();
  });
});
