import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Agent, request } from "undici";
import { parse as parseYaml } from "yaml";
import { startServiceProcess, type ServiceProcess } from "../support/process.js";
import { startReceiver } from "../support/receiver.js";
import { freePort, startRedis } from "../support/redis.js";
import { until } from "../support/until.js";

/**
 * Issue #18's lanes, as a user sees them: an endpoint's trouble (a dead receiver's retries, a slow
 * receiver's full share, a storm) stays in its lane (src/egress/lanes.ts). The service runs as its
 * own process with a throwaway Redis; publishes go over HTTP at fixed times (open loop), and a
 * latency is the publish's send time to the receiver's arrival. Figures print as
 * `[scenario] figure` lines, as in reliability.test.ts.
 */
const PUBLISH = "publish-token-0123456789";
const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const record = (scenario: string, figure: string) => console.log(`  [${scenario}] ${figure}`);
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * q))] ?? NaN;
};

/** Keep-alive connections the publishes share (a request waits for a free one: its wait counts in its latency). */
const publisher = new Agent({ connections: 64 });

/** POSTs one event; resolves to the status (0 when the request failed). */
async function publish(url: string, type: string, id: string, data: unknown): Promise<number> {
  try {
    const res = await request(`${url}/v1/events`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${PUBLISH}` },
      body: JSON.stringify({ type, id, data }),
      dispatcher: publisher,
    });
    await res.body.dump();
    return res.statusCode;
  } catch {
    return 0;
  }
}

/**
 * Publishes at `rate` a second for `seconds`, each at its own time whether the ones before have
 * been answered or not (open loop); `sent` gets each id's send time. Resolves with the statuses.
 */
async function paced(url: string, o: { rate: number; seconds: number; type: string; prefix: string; sent?: Map<string, number> }) {
  const n = Math.round(o.rate * o.seconds);
  const t0 = performance.now();
  const pending: Promise<number>[] = [];
  for (let i = 0; i < n; i++) {
    const wait = t0 + (i * 1000) / o.rate - performance.now();
    if (wait > 1) await sleep(wait);
    const id = `${o.prefix}-${i}`;
    o.sent?.set(id, Date.now());
    pending.push(publish(url, o.type, id, { i }));
  }
  return Promise.all(pending);
}

/** The receiver-side latency of each id in `sent` that arrived (first arrival). */
function latencies(rx: Awaited<ReturnType<typeof startReceiver>>, sent: Map<string, number>): number[] {
  const first = new Map<string, number>();
  for (const r of rx.received) {
    const id = JSON.parse(r.body).id as string;
    if (sent.has(id) && !first.has(id)) first.set(id, r.at);
  }
  return [...first].map(([id, at]) => at - sent.get(id)!);
}

const histogram = (statuses: number[]) => {
  const counts: Record<number, number> = {};
  for (const s of statuses) counts[s] = (counts[s] ?? 0) + 1;
  return JSON.stringify(counts);
};

/** The sum of a metric's series for one endpoint (every outcome, say), from the service's /metrics. */
const metric = async (url: string, name: string, endpoint: string) => {
  const text = await (await fetch(`${url}/metrics`)).text();
  const lines = [...text.matchAll(new RegExp(`^openclaw_webhooks_${name}\\{[^}]*endpoint="${endpoint}"[^}]*\\} (\\S+)$`, "gm"))];
  return lines.length ? lines.reduce((n, m) => n + Number(m[1]), 0) : Number.NaN;
};

describe("reliability: lanes", () => {
  test("fairness: 10,000 deliveries waiting for a dead endpoint and a 5 s endpoint's full share leave a healthy endpoint's p99 within 2×", async () => {
    const redis = await startRedis();
    const healthy = await startReceiver({ secret: WHSEC });
    const slow = await startReceiver({ secret: WHSEC });
    slow.setFallback({ status: 204, delayMs: 5_000 });
    const deadPort = await freePort(); // nothing listens: every attempt is refused
    let svc: ServiceProcess | undefined;
    try {
      svc = await startServiceProcess({
        redis: { url: redis.url, prefix: redis.prefix() },
        limits: { rateLimit: { windowMs: 60_000, maxRequests: 1_000_000 }, maxInFlight: 1_000 },
        webhooks: {
          publishToken: PUBLISH,
          allowPrivateCidrs: ["127.0.0.0/8"],
          // The breaker at its most patient (1,000 failures before it opens): a thousand attempts
          // fail and wait for their retry before the dead endpoint's lane is held.
          circuitBreaker: { failureThreshold: 1_000 },
          endpoints: [
            { name: "healthy", url: healthy.url, secret: WHSEC, events: ["order.*"] },
            { name: "dead", url: `http://127.0.0.1:${deadPort}/hook`, secret: WHSEC, events: ["dead.*"], retry: { schedule: Array(12).fill("3s") } },
            { name: "slow", url: slow.url, secret: WHSEC, events: ["slow.*"], concurrency: 4, timeoutMs: 10_000 },
          ],
        },
      });
      const url = svc.url;
      // An unmeasured warm-up, then alone: the healthy endpoint's steady stream.
      await paced(url, { rate: 40, seconds: 5, type: "order.created", prefix: "warm" });
      const alone = new Map<string, number>();
      await paced(url, { rate: 40, seconds: 15, type: "order.created", prefix: "alone", sent: alone });
      await until(() => latencies(healthy, alone).length === alone.size, 10_000);
      const p99Alone = quantile(latencies(healthy, alone), 0.99);

      // 10,000 deliveries to the dead endpoint (attempted until its breaker opened, then waiting
      // for their retry or their first attempt), and the slow endpoint given more than its 4
      // slots can take in the time measured.
      const statuses = await paced(url, { rate: 1_000, seconds: 10, type: "dead.letter", prefix: "dead" });
      assert.equal(statuses.filter((s) => s === 202).length, 10_000, `every dead-endpoint event accepted (${histogram(statuses)})`);
      await until(async () => (await metric(url, "deliveries_total", "dead")) >= 1_000, 60_000);
      await paced(url, { rate: 20, seconds: 5, type: "slow.job", prefix: "slow" });
      await until(() => slow.maxActive === 4, 10_000);

      // Together: the same stream, while the dead endpoint's retries come due every 3 s.
      const deadBefore = await metric(url, "deliveries_total", "dead");
      const together = new Map<string, number>();
      await paced(url, { rate: 40, seconds: 15, type: "order.created", prefix: "together", sent: together });
      await until(() => latencies(healthy, together).length === together.size, 20_000);
      const deadAttempts = (await metric(url, "deliveries_total", "dead")) - deadBefore;
      const deadBacklog = await metric(url, "endpoint_backlog", "dead");
      const p99Together = quantile(latencies(healthy, together), 0.99);
      record(
        "fairness",
        `healthy p99 ${p99Alone.toFixed(0)} ms alone → ${p99Together.toFixed(0)} ms beside ${deadBacklog} deliveries waiting for a dead endpoint (${deadBefore} attempts failed before its breaker opened, ${deadAttempts} while measured) and a 5 s endpoint at its 4 slots`,
      );
      assert.equal(deadBacklog, 10_000, "the dead endpoint's 10,000 deliveries all wait");
      assert.ok(slow.maxActive <= 4, "the slow endpoint kept to its concurrency");
      assert.ok(p99Together <= 2 * Math.max(p99Alone, 5), `healthy p99 ${p99Together} ms within 2× of ${p99Alone} ms alone`);
    } finally {
      await svc?.stop();
      await healthy.close();
      await slow.close();
      await redis.dispose();
    }
  });

  test("storm: 100× the steady rate to one endpoint for 60 s; the others keep their p99, the alert fires, the backlog drains at the endpoint's rate", async () => {
    const STEADY = 2; // events/s to the storm endpoint before and after
    const STORM = 100 * STEADY;
    const RATE = 150; // the storm endpoint's rateLimit.perSecond: the backlog grows by 50/s
    const CALM = 20; // events/s to the two calm endpoints (each gets them all): enough samples for a steady p99
    const STORM_SECONDS = 60;
    const redis = await startRedis();
    // The storm's receiver counts arrivals (this process also generates the load: its own CPU
    // would add to every latency it measures); the calm ones verify every signature.
    const rxs = await Promise.all([startReceiver(), startReceiver({ secret: WHSEC }), startReceiver({ secret: WHSEC })]);
    const [stormRx, calmA, calmB] = rxs as [(typeof rxs)[0], (typeof rxs)[0], (typeof rxs)[0]];
    let svc: ServiceProcess | undefined;
    let prom: Awaited<ReturnType<typeof startPrometheus>> | undefined;
    try {
      svc = await startServiceProcess({
        redis: { url: redis.url, prefix: redis.prefix() },
        limits: { rateLimit: { windowMs: 60_000, maxRequests: 1_000_000 }, maxInFlight: 1_000 },
        webhooks: {
          publishToken: PUBLISH,
          allowPrivateCidrs: ["127.0.0.0/8"],
          endpoints: [
            { name: "storm", url: stormRx.url, secret: WHSEC, events: ["storm.*"], rateLimit: { perSecond: RATE }, concurrency: 50 },
            { name: "calm-a", url: calmA.url, secret: WHSEC, events: ["calm.*"] },
            { name: "calm-b", url: calmB.url, secret: WHSEC, events: ["calm.*"] },
          ],
        },
      });
      const url = svc.url;
      prom = await startPrometheus(svc.port);
      const steady = (seconds: number, prefix: string, sent: Map<string, number>) =>
        Promise.all([
          paced(url, { rate: CALM, seconds, type: "calm.tick", prefix, sent }),
          paced(url, { rate: STEADY, seconds, type: "storm.tick", prefix: `${prefix}-s` }),
        ]);
      await steady(5, "warm", new Map()); // unmeasured
      const before = new Map<string, number>();
      await steady(30, "before", before);
      await sleep(500);
      const p99Before = quantile([...latencies(calmA, before), ...latencies(calmB, before)], 0.99);

      // The storm, with the calm endpoints' steady stream beside it; /metrics scraped each second.
      const during = new Map<string, number>();
      const peak = { backlog: 0, oldest: 0 };
      let scraping = true;
      const scraper = (async () => {
        while (scraping) {
          peak.backlog = Math.max(peak.backlog, await metric(url, "endpoint_backlog", "storm"));
          peak.oldest = Math.max(peak.oldest, await metric(url, "endpoint_oldest_pending_seconds", "storm"));
          await sleep(1_000);
        }
      })();
      const loop = monitorEventLoopDelay({ resolution: 5 });
      loop.enable();
      const cpu0 = cpuTicks(svc.child.pid!);
      const stormStart = Date.now();
      const stormSent = new Map<string, number>();
      const [stormStatuses] = await Promise.all([
        paced(url, { rate: STORM, seconds: STORM_SECONDS, type: "storm.burst", prefix: "burst", sent: stormSent }),
        paced(url, { rate: CALM, seconds: STORM_SECONDS, type: "calm.tick", prefix: "during", sent: during }),
      ]);
      assert.equal(stormStatuses.filter((s) => s === 202).length, stormSent.size, `every storm event accepted (${histogram(stormStatuses)})`);
      const stormCpu = ((cpuTicks(svc.child.pid!) - cpu0) * 1_000) / (Date.now() - stormStart); // % of one core (100 ticks a second)
      loop.disable();
      const alerts = await prom.firingOrPending("OpenclawWebhooksEndpointBacklog");
      // Drained: every storm event delivered, within what the rate implies (+20%).
      const implied = (stormSent.size / RATE) * 1000;
      await until(() => latencies(stormRx, stormSent).length === stormSent.size, implied * 1.2 + 30_000);
      const drainedMs = Math.max(...stormRx.received.filter((r) => stormSent.has(JSON.parse(r.body).id)).map((r) => r.at)) - stormStart;
      scraping = false;
      await scraper;
      await until(async () => (await metric(url, "endpoint_backlog", "storm")) === 0, 10_000);
      const p99During = quantile([...latencies(calmA, during), ...latencies(calmB, during)], 0.99);
      record(
        "storm",
        `${stormSent.size} events in ${STORM_SECONDS} s (${STORM}/s, 100× steady) to an endpoint limited to ${RATE}/s: backlog peaked at ${peak.backlog} (oldest ${peak.oldest.toFixed(1)} s), drained ${(drainedMs / 1000).toFixed(1)} s after the storm began (rate implies ${(implied / 1000).toFixed(1)} s); calm endpoints' p99 ${p99Before.toFixed(0)} → ${p99During.toFixed(0)} ms (p50 ${quantile([...latencies(calmA, before), ...latencies(calmB, before)], 0.5).toFixed(0)} → ${quantile([...latencies(calmA, during), ...latencies(calmB, during)], 0.5).toFixed(0)} ms); alert ${alerts.join(", ") || "none"} (service CPU ${stormCpu.toFixed(0)}% of a core, this process's loop delay p99 ${(loop.percentile(99) / 1e6).toFixed(0)} ms)`,
      );
      assert.ok(peak.backlog > 1_000, `the backlog gauge rose (${peak.backlog})`);
      assert.deepEqual(alerts, ["storm"], "the backlog alert fired for the storm endpoint alone");
      assert.ok(drainedMs <= implied * 1.2, `drained in ${drainedMs} ms, within 120% of ${implied.toFixed(0)} ms`);
      assert.ok(p99During <= 2 * Math.max(p99Before, 5), `calm p99 ${p99During} ms within 2× of ${p99Before} ms`);
    } finally {
      await prom?.stop();
      await svc?.stop();
      for (const r of rxs) await r.close();
      await redis.dispose();
    }
  });
});

/** A process's CPU time so far, in clock ticks (1/100 s). */
function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return Number(f[11]) + Number(f[12]);
}

/**
 * A real Prometheus (Debian's `prometheus`) scraping the service every second and evaluating the
 * shipped rules (config/alerts.yml) every second: what an operator's alerting would see.
 */
async function startPrometheus(servicePort: number) {
  const dir = mkdtempSync(join(tmpdir(), "ocwh-prom-"));
  const rules = parseYaml(readFileSync(new URL("../../config/alerts.yml", import.meta.url), "utf8"));
  writeFileSync(join(dir, "alerts.yml"), JSON.stringify(rules));
  writeFileSync(
    join(dir, "prometheus.yml"),
    JSON.stringify({
      global: { scrape_interval: "1s", evaluation_interval: "1s" },
      rule_files: [join(dir, "alerts.yml")],
      scrape_configs: [{ job_name: "openclaw-webhooks", static_configs: [{ targets: [`127.0.0.1:${servicePort}`] }] }],
    }),
  );
  const port = await freePort();
  const child = spawn(
    "prometheus",
    [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`],
    { stdio: "ignore" },
  );
  const api = `http://127.0.0.1:${port}/api/v1`;
  await until(
    () =>
      fetch(`${api}/status/runtimeinfo`).then(
        (r) => r.ok,
        () => false,
      ),
    30_000,
  );
  return {
    /** The endpoints for which the alert is pending or firing now. */
    async firingOrPending(alert: string): Promise<string[]> {
      const body = (await (await fetch(`${api}/alerts`)).json()) as { data: { alerts: { labels: Record<string, string>; state: string }[] } };
      return body.data.alerts.filter((a) => a.labels.alertname === alert).map((a) => a.labels.endpoint ?? "");
    },
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once("exit", r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
