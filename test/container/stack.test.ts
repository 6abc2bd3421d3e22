import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse } from "yaml";
import { freePort, startRedis, type TestRedis } from "../support/redis.js";
import { until } from "../support/until.js";
import { buildImage, ensureBaseImage, imageSize, logs, mb, removeContainer, requirePodman, runContainer } from "../support/podman.js";

/**
 * Issue #20, part 2: what docker-compose.yml deploys, verified as far as this machine allows.
 * - Prometheus: `promtool check config` and `check rules` on the files the stack mounts, laid out
 *   as the container sees them.
 * - The Gateway: deploy/gateway/Dockerfile built with Podman (stand-in base image), run on a free
 *   loopback port (host networking; the image's own CMD binds `lan`, which is not used here), the
 *   bridge plugin loaded, and the service image connected to it.
 * - Grafana and the alert rules: every metric name they use is one the running service exports.
 * Images other than the stand-in base cannot be pulled here, so Redis, Prometheus and Grafana do not
 * run in containers: Redis is the host's redis-server, the others are checked through their files.
 */
const ROOT = resolve(import.meta.dirname, "../..");
const SERVICE_TAG = "localhost/openclaw-webhooks:test";
const GATEWAY_TAG = "localhost/openclaw-webhooks-gateway:test";
const GW_NAME = `ocwh-stack-gateway-${process.pid}`;
const SVC_NAME = `ocwh-stack-service-${process.pid}`;
const GW_TOKEN = "gw-stack-token-0123456789abcdef";
const ADMIN = "admin-stack-token-0123456789";
const compose = parse(readFileSync(join(ROOT, "docker-compose.yml"), "utf8"));
const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

describe("Prometheus files the stack mounts (promtool)", () => {
  test("promtool check config and check rules pass on the mounted layout", () => {
    const r = spawnSync("promtool", ["--version"], { encoding: "utf8" });
    assert.equal(r.status, 0, "promtool is missing: apt-get install prometheus (.ci/run does this)");
    const dir = mkdtempSync(join(tmpdir(), "ocwh-promtool-"));
    try {
      let configPath = "";
      const rules: string[] = [];
      for (const v of compose.services.prometheus.volumes as string[]) {
        const [host, target] = v.split(":") as [string, string];
        if (!host.startsWith(".")) continue;
        const dest = join(dir, target);
        mkdirSync(dirname(dest), { recursive: true });
        cpSync(join(ROOT, host), dest, { recursive: true });
        if (target === "/etc/prometheus/prometheus.yml") configPath = dest;
      }
      assert.ok(configPath, "the stack mounts /etc/prometheus/prometheus.yml");
      const prom = parse(readFileSync(configPath, "utf8")) as { rule_files: string[] };
      for (const f of prom.rule_files) rules.push(join(dirname(configPath), f));
      assert.ok(rules.length > 0, "rule_files is set");
      const cfg = execFileSync("promtool", ["check", "config", configPath], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
      assert.match(cfg, /SUCCESS: 1 rule files found/);
      const out = execFileSync("promtool", ["check", "rules", ...rules], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
      const n = Number(/SUCCESS: (\d+) rules found/.exec(out)?.[1]);
      assert.ok(n >= 5, out);
      console.log(`# promtool: config valid, ${n} alert rules`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("promtool test rules: every alert fires on the series that should fire it, and not on its neighbours (config/alerts.test.yml)", () => {
    const r = spawnSync("promtool", ["test", "rules", "alerts.test.yml"], { cwd: join(ROOT, "config"), encoding: "utf8" });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /SUCCESS/);
    const tested = new Set([...readFileSync(join(ROOT, "config/alerts.test.yml"), "utf8").matchAll(/alertname: (\w+)/g)].map((m) => m[1]));
    const defined = [...readFileSync(join(ROOT, "config/alerts.yml"), "utf8").matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
    assert.deepEqual(
      defined.filter((a) => !tested.has(a)),
      [],
      "alerts without a unit test",
    );
    console.log(`# promtool test rules: ${defined.length} alerts, each tested`);
  });
});

describe("the Gateway image and the service connected to it", () => {
  let redis: TestRedis;
  let gwPort: number;
  let svcPort: number;
  let cfgDir: string;

  before(async () => {
    requirePodman();
    await ensureBaseImage();
    const gwBuild = await buildImage(GATEWAY_TAG, "deploy/gateway/Dockerfile");
    console.log(`# podman build of deploy/gateway/Dockerfile: ${gwBuild.toFixed(1)} s; image ${mb(await imageSize(GATEWAY_TAG))}`);
    const svcBuild = await buildImage(SERVICE_TAG);
    console.log(`# podman build of Dockerfile: ${svcBuild.toFixed(1)} s; image ${mb(await imageSize(SERVICE_TAG))}`);
    redis = await startRedis({ args: ["--maxmemory-policy", "noeviction"] });
    gwPort = await freePort();
    svcPort = await freePort();
    // The image's own openclaw.json plus two settings for a machine without outbound network: with
    // the model catalog refresh or telemetry on, the Gateway stalled after "spawn broker ready" here
    // (>10 min, the resolver does not fail fast). A deployment with network keeps both defaults.
    cfgDir = mkdtempSync(join(tmpdir(), "ocwh-gwcfg-"));
    chmodSync(cfgDir, 0o777);
    const cfg = JSON.parse(readFileSync(join(ROOT, "deploy/gateway/openclaw.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(
      join(cfgDir, "openclaw.json"),
      JSON.stringify({ ...cfg, models: { catalogRefresh: { enabled: false } }, telemetry: { enabled: false } }, null, 2),
    );
    chmodSync(join(cfgDir, "openclaw.json"), 0o666);
  });

  after(async () => {
    await removeContainer(SVC_NAME);
    await removeContainer(GW_NAME);
    await redis?.dispose();
    if (cfgDir) rmSync(cfgDir, { recursive: true, force: true });
  });

  test("the Gateway container becomes ready and loads the bridge plugin (13 methods)", async () => {
    const t = Date.now();
    await runContainer(GW_NAME, GATEWAY_TAG, {
      env: {
        OPENCLAW_GATEWAY_TOKEN: GW_TOKEN,
        OPENCLAW_WEBHOOKS_URL: `http://127.0.0.1:${svcPort}`,
        OPENCLAW_WEBHOOKS_ADMIN_TOKEN: ADMIN,
        OPENCLAW_CONFIG_PATH: "/cfg/openclaw.json",
      },
      volumes: [`${cfgDir}:/cfg`],
      // The image's config (deploy/gateway/openclaw.json) with the bind on loopback: host networking.
      cmd: ["gateway", "run", "--bind", "loopback", "--port", String(gwPort)],
    });
    let log = "";
    await until(async () => {
      log = stripAnsi(await logs(GW_NAME));
      if (/exited|stopped/i.test((await inspectState(GW_NAME)).Status)) throw new Error(`Gateway container stopped:\n${log.slice(-3000)}`);
      return /\[gateway\] ready\b/.test(log);
    }, 120_000).catch((err) => {
      throw new Error(`${(err as Error).message}\n${log.slice(-3000)}`);
    });
    console.log(`# Gateway container ready in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    assert.match(log, /\[webhooks-bridge\] registered 13 methods/);
    const health = await fetch(`http://127.0.0.1:${gwPort}/healthz`);
    assert.equal(health.status, 200);
  });

  test("the service container connects to it: /readyz reports the gateway connected", async () => {
    // The stack's own config (config/example.json5, mounted as compose mounts it) with the secrets
    // it needs from the environment, as compose passes them.
    await runContainer(SVC_NAME, SERVICE_TAG, {
      env: {
        PORT: String(svcPort),
        OPENCLAW_WEBHOOKS_CONFIG: compose.services.webhooks.environment.OPENCLAW_WEBHOOKS_CONFIG,
        REDIS_URL: redis.url,
        OPENCLAW_GATEWAY_URL: `ws://127.0.0.1:${gwPort}`,
        OPENCLAW_GATEWAY_TOKEN: GW_TOKEN,
        ADMIN_TOKEN: ADMIN,
        PUBLISH_TOKEN: "publish-stack-0123456789",
        ZAPIER_WEBHOOK_SECRET: "zapier-stack-0123456789",
        AUDIT_WEBHOOK_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        CI_TOKEN: "ci-stack-0123456789",
      },
      volumes: [`${join(ROOT, "config")}:/app/config:ro`],
    });
    let body: { ok?: boolean; checks?: Record<string, boolean> } = {};
    await until(async () => {
      const r = await fetch(`http://127.0.0.1:${svcPort}/readyz`).catch(() => undefined);
      if (r) body = (await r.json()) as typeof body;
      return r?.status === 200;
    }, 60_000).catch(async (err) => {
      throw new Error(`${(err as Error).message}: ${JSON.stringify(body)}\n${(await logs(SVC_NAME)).slice(-3000)}`);
    });
    assert.equal(body.ok, true);
    assert.equal(body.checks?.gateway, true);
    assert.equal(body.checks?.redis, true);
    const metrics = await (await fetch(`http://127.0.0.1:${svcPort}/metrics`)).text();
    assert.match(metrics, /^openclaw_webhooks_gateway_connected 1$/m);
  });

  test("every metric the Grafana dashboard and the alert rules use is one the running service exports", async () => {
    const text = await (await fetch(`http://127.0.0.1:${svcPort}/metrics`)).text();
    const exported = new Set<string>();
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      const [, name, type] = m as unknown as [string, string, string];
      exported.add(name);
      if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) exported.add(name + s);
      if (type === "summary") for (const s of ["_sum", "_count"]) exported.add(name + s);
    }
    for (const m of text.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/gm)) exported.add(m[1]!);
    // `up` is Prometheus's own series for every scrape target.
    const known = (name: string) => exported.has(name) || name === "up";
    const used = (expr: string) => [...expr.matchAll(/\b(openclaw_webhooks_[a-zA-Z0-9_]+|up)\b(?=\s*[{[)]|\s*$|\s*[=!<>]|\s*\))/g)].map((m) => m[1]!);

    const dashboard = JSON.parse(readFileSync(join(ROOT, "deploy/grafana/dashboards/openclaw-webhooks.json"), "utf8")) as {
      panels: { title: string; type: string; targets?: { expr: string }[] }[];
    };
    const problems: string[] = [];
    let queries = 0;
    for (const p of dashboard.panels.filter((x) => x.type !== "row")) {
      assert.ok(p.targets?.length, `panel "${p.title}" has queries`);
      for (const t of p.targets!) {
        queries++;
        const names = used(t.expr);
        if (names.length === 0) problems.push(`panel "${p.title}": no metric in ${t.expr}`);
        for (const n of names) if (!known(n)) problems.push(`panel "${p.title}": ${n}`);
      }
    }
    const rules = parse(readFileSync(join(ROOT, "config/alerts.yml"), "utf8")) as { groups: { rules: { alert: string; expr: string }[] }[] };
    let alerts = 0;
    for (const g of rules.groups)
      for (const r of g.rules) {
        alerts++;
        const names = used(r.expr);
        if (names.length === 0) problems.push(`alert ${r.alert}: no metric in ${r.expr}`);
        for (const n of names) if (!known(n)) problems.push(`alert ${r.alert}: ${n}`);
      }
    assert.deepEqual(problems, [], "metric names the service does not export");
    console.log(`# ${queries} dashboard queries and ${alerts} alert rules use only exported metrics (${exported.size} series names scraped)`);
  });

  test("SIGTERM: the service exits 0, then the Gateway exits 0", async () => {
    for (const name of [SVC_NAME, GW_NAME]) {
      const t = Date.now();
      await runPodmanStop(name);
      const state = await inspectState(name);
      console.log(`# podman stop ${name.replace(/-\d+$/, "")}: ${((Date.now() - t) / 1000).toFixed(1)} s, exit code ${state.ExitCode}`);
      assert.equal(state.ExitCode, 0, stripAnsi(await logs(name)).slice(-2000));
    }
  });
});

async function inspectState(name: string): Promise<{ Status: string; ExitCode: number }> {
  const { podman } = await import("../support/podman.js");
  return JSON.parse((await podman(["inspect", name, "--format", "{{json .State}}"])).stdout) as { Status: string; ExitCode: number };
}

async function runPodmanStop(name: string): Promise<void> {
  const { podman } = await import("../support/podman.js");
  await podman(["stop", "-t", "30", name], { timeoutMs: 60_000 });
}
