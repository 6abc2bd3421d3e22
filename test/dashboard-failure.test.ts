import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { after, before, test } from "node:test";
import { chromium, type Browser, type Page } from "playwright-core";
import { startReceiver } from "./support/receiver.js";
import { startRedis, type TestRedis } from "./support/redis.js";
import { post, startService, type TestService } from "./support/service.js";
import { until } from "./support/until.js";

// Issue #20 part 4, "a dashboard that explains a failure", in headless Chromium: a failing
// endpoint's delivery opened, its attempts and the receiver's answer shown, a filter applied, a
// bulk replay's count shown before confirming, the inbound page; screenshots in .tmp/test-output.

const ADMIN = "admin-token-0123456789";
const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const INBOUND_TOKEN = "ci-token-0123456789";
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const OUT = ".tmp/test-output";
let redis: TestRedis;
let svc: TestService;
let crm: Awaited<ReturnType<typeof startReceiver>>;
let billing: Awaited<ReturnType<typeof startReceiver>>;
let browser: Browser;
let page: Page;

before(async () => {
  redis = await startRedis();
  crm = await startReceiver({ secret: WHSEC });
  billing = await startReceiver({ secret: WHSEC });
  billing.setFallback({ status: 500, headers: { "x-request-id": "req-77" }, body: "upstream exploded: ledger locked" });
  svc = await startService({
    redis: { url: redis.url, prefix: redis.prefix() },
    admin: { token: ADMIN },
    webhooks: {
      allowPrivateCidrs: ["127.0.0.0/8"],
      circuitBreaker: { failureThreshold: 1_000, cooldownMs: 30_000, maxCooldownMs: 60_000 },
      endpoints: [
        { name: "crm", url: crm.url, secret: WHSEC, events: ["lead.*"] },
        {
          name: "billing",
          url: `${billing.url}/hooks`,
          secret: WHSEC,
          events: ["invoice.*"],
          retry: { schedule: [] },
          headers: { authorization: "Bearer billing-api-key-123" },
        },
      ],
      inbound: { endpoints: { deploy: { agentId: "devops-agent", template: "deploy {{body.repo}}", auth: { scheme: "token", secret: INBOUND_TOKEN } } } },
    },
  } as never);
  await svc.deps.egress!.startWorker();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  mkdirSync(OUT, { recursive: true });
});
after(async () => {
  await page?.close();
  await browser?.close();
  await svc?.close();
  await crm?.close();
  await billing?.close();
  await redis?.dispose();
});

const rows = (status?: string) => page.locator(`#deliveries tbody tr${status ? `[data-status="${status}"]` : ""}`);

test("a failing endpoint explained: its delivery's attempts and answer, a filter, bulk replay counted before it runs, inbound runs", async () => {
  // Two deliveries that succeed, three to an endpoint answering 500 (one attempt each).
  await svc.deps.egress!.publish({ type: "lead.created", data: { n: 1 } });
  await svc.deps.egress!.publish({ type: "lead.created", data: { n: 2 } });
  const invoices = [];
  for (let i = 0; i < 3; i++) invoices.push(await svc.deps.egress!.publish({ type: "invoice.failed", data: { i } }));
  const failedIds = invoices.map((o) => o.deliveries[0]!);
  await until(async () => (await Promise.all(failedIds.map((id) => svc.deps.egress!.log.state(id)))).every((s) => s?.status === "failed"));
  const run = await post(`${svc.url}/webhooks/inbound/deploy`, { repo: "my-app" }, { secret: INBOUND_TOKEN });
  assert.equal(run.status, 202, run.text);

  await page.goto(`${svc.url}/dashboard`);
  await page.fill("#token", ADMIN);
  await page.click("button[type=submit]");

  // The endpoints with their last hour: billing 0% of 3 attempts, crm 100% of 2.
  await page.waitForSelector('#endpoints tr[data-endpoint="billing"] td.rate:text-is("0.0% of 3")', { timeout: 15_000 });
  await page.waitForSelector('#endpoints tr[data-endpoint="crm"] td.rate:text-is("100.0% of 2")', { timeout: 15_000 });
  assert.match((await page.textContent('#endpoints tr[data-endpoint="billing"] td.latency')) ?? "", /^≤\d+ \/ ≤\d+ ms$/);
  await until(async () => (await rows().count()) === 5, 10_000);

  // A filter applied: failed only, then by event type, then an endpoint; the list changes each time.
  await page.selectOption("#f-status", "failed");
  await page.click("#f-apply");
  await until(async () => (await rows().count()) === 3 && (await rows("failed").count()) === 3, 10_000);
  assert.equal(await page.textContent("#list-title"), "Filtered deliveries");
  assert.equal(await page.textContent("#list-note"), "3 deliveries match.");
  await page.selectOption("#f-status", "");
  await page.fill("#f-type", "lead.created");
  await page.click("#f-apply");
  await until(async () => (await rows().count()) === 2 && (await rows("delivered").count()) === 2, 10_000);
  await page.fill("#f-type", "");
  await page.selectOption("#f-endpoint", "billing");
  await page.fill("#f-since", "1h");
  await page.click("#f-apply");
  await until(async () => (await rows().count()) === 3, 10_000);
  await page.screenshot({ path: `${OUT}/dashboard-failure-filtered.png`, fullPage: true });

  // Search: an event id lists its deliveries.
  await page.fill("#find-id", invoices[1]!.id);
  await page.click("#find");
  await page.waitForSelector(`#list-title:text-is("Deliveries of event ${invoices[1]!.id}")`);
  assert.equal(await rows().count(), 1);

  // The failing delivery opened: its attempt, what was sent (signature and credential masked)
  // and what the receiver answered.
  await page.click(`#deliveries tr[data-id="${failedIds[1]}"] a`);
  await page.waitForSelector('#d-attempts .attempt[data-attempt="1"]');
  const attempt = (await page.textContent('#d-attempts .attempt[data-attempt="1"]')) ?? "";
  assert.match(attempt, /#1 · scheduled · .* · HTTP 500 · \d+ ms http_status HTTP 500/);
  assert.match(attempt, /Response: HTTP 500/);
  assert.equal(await page.textContent("#d-attempts .res-body"), "upstream exploded: ledger locked");
  const resHeaders = (await page.textContent("#d-attempts .res-headers")) ?? "";
  assert.match(resHeaders, /x-request-idreq-77/);
  const reqHeaders = (await page.textContent("#d-attempts .req-headers")) ?? "";
  assert.match(reqHeaders, /webhook-signaturev1,…\(masked\)/);
  assert.match(reqHeaders, /authorizationBearer …\(masked\)/);
  assert.match(reqHeaders, new RegExp(`webhook-id${failedIds[1]}`));
  assert.ok(!reqHeaders.includes("billing-api-key-123"));
  assert.match((await page.textContent("#d-summary")) ?? "", /Statusfailed/);
  await page.screenshot({ path: `${OUT}/dashboard-failure-delivery.png`, fullPage: true });

  // Bulk replay: the dry run's count first, nothing sent until confirmed.
  await page.click("#nav-deliveries");
  await page.selectOption("#bulk-endpoint", "billing");
  await page.fill("#bulk-since", "1h");
  const sentBefore = billing.received.length;
  await page.click("#bulk-preview");
  await page.waitForSelector("#bulk-result:not(.hidden)");
  assert.match((await page.textContent("#bulk-count")) ?? "", /^Will resend 3 failed deliveries of billing \(failed since .+\)\.$/);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(billing.received.length, sentBefore, "nothing is resent before confirming");
  await page.screenshot({ path: `${OUT}/dashboard-failure-bulk-replay.png`, fullPage: true });
  billing.setFallback({ status: 200, body: "ok" });
  await page.click("#bulk-confirm");
  await page.waitForSelector('#bulk-done:text-is("Resent 3 deliveries.")');
  await until(() => billing.received.length === sentBefore + 3);
  await until(async () => (await Promise.all(failedIds.map((id) => svc.deps.egress!.log.state(id)))).every((s) => s?.status === "delivered"));
  // Live: the replayed deliveries show as delivered without a reload.
  await page.click("#f-clear");
  await page.waitForSelector(`#deliveries tr[data-id="${failedIds[0]}"][data-status="delivered"]`, { timeout: 10_000 });

  // The opened delivery now shows its second (manual) attempt and the 200.
  await page.goto(`${svc.url}/dashboard#/delivery/${encodeURIComponent(failedIds[1]!)}`);
  await page.waitForSelector('#d-attempts .attempt[data-attempt="2"]');
  assert.match((await page.textContent('#d-attempts .attempt[data-attempt="2"]')) ?? "", /#2 · manual · .* · HTTP 200/);

  // Inbound endpoints and their recent runs.
  await page.click("#nav-inbound");
  await page.waitForSelector('#inbound-endpoints tr[data-endpoint="deploy"]');
  assert.match((await page.textContent('#inbound-endpoints tr[data-endpoint="deploy"]')) ?? "", /deploy\/webhooks\/inbound\/deployagentdevops-agenttoken/);
  await page.waitForSelector(`#inbound-runs tr[data-run="${run.json.runId}"][data-status="ok"]`, { timeout: 10_000 });
  assert.match((await page.textContent(`#inbound-runs tr[data-run="${run.json.runId}"]`)) ?? "", /inbound_completed_/);
  await page.screenshot({ path: `${OUT}/dashboard-failure-inbound.png`, fullPage: true });
});
