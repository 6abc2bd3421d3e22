import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { after, before, test } from "node:test";
import { chromium, type Browser } from "playwright-core";
import { startReceiver } from "./support/receiver.js";
import { startRedis, type TestRedis } from "./support/redis.js";
import { startService, type TestService } from "./support/service.js";

const ADMIN = "admin-token-0123456789";
const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
let redis: TestRedis;
let svc: TestService;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let browser: Browser;

before(async () => {
  redis = await startRedis();
  rx = await startReceiver({ secret: WHSEC });
  svc = await startService({
    redis: { url: redis.url, prefix: redis.prefix() },
    admin: { token: ADMIN },
    webhooks: { allowPrivateCidrs: ["127.0.0.0/8"], endpoints: [{ name: "crm", url: rx.url, secret: WHSEC, events: ["lead.*"] }] },
  });
  await svc.deps.egress!.startWorker();
  // Debian's chromium, driven by playwright-core (no browser download).
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
});
after(async () => {
  await browser?.close();
  await svc?.close();
  await rx?.close();
  await redis?.dispose();
});

test("dashboard in headless Chromium: sign in, a delivery appears live, replay it; screenshot saved", async () => {
  const page = await browser.newPage();
  try {
    // Without a session: the login form, and the API refuses the page's calls.
    await page.goto(`${svc.url}/dashboard`);
    await page.fill("#token", "wrong-token");
    await page.click("button[type=submit]");
    await page.waitForSelector("text=That token was not accepted.");
    await page.fill("#token", ADMIN);
    await page.click("button[type=submit]");
    await page.waitForSelector("#endpoints tbody tr");
    assert.match((await page.textContent("#endpoints tbody")) ?? "", /crm\s*enabled\s*closed/);
    const cookies = await page.context().cookies();
    assert.ok(cookies.some((c) => c.name === "ocwh_admin" && c.httpOnly && c.sameSite === "Strict" && c.value !== ADMIN));

    // A delivery published now shows up without a reload (server-sent events).
    const out = await svc.deps.egress!.publish({ type: "lead.qualified", data: { score: 91 } });
    const id = out.deliveries[0]!;
    const row = `#deliveries tr[data-id="${id}"][data-status="delivered"]`;
    await page.waitForSelector(row, { timeout: 10_000 });
    assert.match((await page.textContent(row)) ?? "", /lead\.qualified\s*crm\s*delivered\s*1\s*200/);
    assert.equal(await page.locator("#chart rect.bar").count(), 1, "latency chart drawn");

    // Replay from the page: one more attempt, logged as manual, seen live.
    const before = rx.received.length;
    await page.click(`${row} button`);
    await page.waitForSelector(`#deliveries tr[data-id="${id}"] td:nth-child(5):text-is("2")`, { timeout: 10_000 });
    assert.equal(rx.received.length, before + 1);
    const rec = await svc.deps.egress!.log.get(id);
    assert.equal(rec!.attemptLog.at(-1)!.trigger, "manual");

    mkdirSync(".tmp/test-output", { recursive: true });
    await page.screenshot({ path: ".tmp/test-output/dashboard.png", fullPage: true });
  } finally {
    await page.close();
  }
});

test("the dashboard's session cannot make changes without its header, and nothing works without admin.token", async () => {
  const res = await fetch(`${svc.url}/admin/api/deliveries/x/replay`, { method: "POST", headers: { cookie: "ocwh_admin=forged" } });
  assert.equal(res.status, 401);
  const events = await fetch(`${svc.url}/dashboard/events`);
  assert.equal(events.status, 401);
  const bare = await startService({});
  try {
    assert.equal((await fetch(`${bare.url}/dashboard/events`)).status, 404);
    assert.equal((await fetch(`${bare.url}/admin/api/routes`)).status, 404);
  } finally {
    await bare.close();
  }
});
