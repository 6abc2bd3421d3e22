import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { parse } from "yaml";
import JSON5 from "json5";
import { buildConfig } from "../src/config/load.js";

/** Docker cannot run on these machines: the wiring is checked by reading the files. */
const dockerfile = readFileSync("Dockerfile", "utf8");
const compose = parse(readFileSync("docker-compose.yml", "utf8"));

test("Dockerfile: Node 24 slim, production dependencies only, non-root, HEALTHCHECK on /healthz, assets built", () => {
  const froms = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);
  assert.ok(froms.length >= 1 && froms.every((f) => /^node:24[-.\w]*slim/.test(f!)), `images: ${froms.join(", ")}`);
  assert.match(dockerfile, /npm prune --omit=dev/);
  assert.match(dockerfile, /^USER node$/m);
  assert.match(dockerfile, /^HEALTHCHECK[\s\S]*\/healthz/m);
  assert.match(dockerfile, /^EXPOSE 8787$/m);
  assert.match(dockerfile, /npm run build/);
  // The build copies the Lua scripts next to the compiled code (dist/limits/lua, dist/egress/lua).
  const copy = readFileSync("scripts/copy-assets.mjs", "utf8");
  assert.match(copy, /src\/limits\/lua/);
  assert.match(copy, /src\/egress\/lua/);
  assert.match(dockerfile, /CMD \["node", ("--[a-z-]+(=\d+)?", )*"dist\/main\.js"\]/);
});

test("compose: the Gateway (bridge plugin, token auth), Redis with AOF and noeviction, two replicas pointed at the Gateway, Prometheus with alert rules, Grafana", () => {
  const { gateway, redis, webhooks, prometheus, grafana } = compose.services;
  assert.deepEqual(Object.keys(compose.services).sort(), ["gateway", "grafana", "prometheus", "redis", "webhooks"]);

  // The Gateway: built from deploy/gateway/Dockerfile (pinned OpenClaw), token from the environment.
  assert.equal(gateway.build.context, ".");
  assert.equal(gateway.build.dockerfile, "deploy/gateway/Dockerfile");
  const gwDockerfile = readFileSync("deploy/gateway/Dockerfile", "utf8");
  assert.match(gwDockerfile, /^FROM node:24-bookworm-slim$/m);
  assert.match(gwDockerfile, /^ARG OPENCLAW_VERSION=2026\.9\.6$/m);
  assert.match(gwDockerfile, /npm install -g [^\n]*"openclaw@\$\{OPENCLAW_VERSION\}"/);
  assert.match(gwDockerfile, /^COPY [^\n]*gateway-plugin \/opt\/openclaw-webhooks\/gateway-plugin$/m);
  assert.match(gwDockerfile, /^USER node$/m);
  assert.match(gwDockerfile, /^HEALTHCHECK /m);
  const gwConfig = JSON.parse(readFileSync("deploy/gateway/openclaw.json", "utf8"));
  assert.deepEqual(gwConfig.gateway.auth, { mode: "token", token: "${OPENCLAW_GATEWAY_TOKEN}" });
  assert.deepEqual(gwConfig.plugins.load.paths, ["/opt/openclaw-webhooks/gateway-plugin"]);
  assert.equal(gwConfig.plugins.entries["webhooks-bridge"].enabled, true);
  assert.match(gateway.environment.OPENCLAW_GATEWAY_TOKEN, /^\$\{OPENCLAW_GATEWAY_TOKEN:\?/);
  assert.ok(gateway.volumes.some((v: string) => v.endsWith(":/home/node/.openclaw")));

  const flags = (redis.command as string[]).join(" ");
  assert.match(flags, /--appendonly yes/);
  assert.match(flags, /--maxmemory-policy noeviction/);
  assert.ok(redis.volumes.some((v: string) => v.endsWith(":/data")));
  assert.ok(redis.healthcheck);

  assert.equal(webhooks.build, ".");
  assert.equal(webhooks.deploy.replicas, 2);
  assert.equal(webhooks.depends_on.redis.condition, "service_healthy");
  assert.equal(webhooks.depends_on.gateway.condition, "service_healthy");
  assert.equal(webhooks.environment.REDIS_URL, "redis://redis:6379");
  assert.equal(webhooks.environment.OPENCLAW_GATEWAY_URL, "ws://gateway:18789");
  assert.equal(webhooks.environment.OPENCLAW_GATEWAY_TOKEN, gateway.environment.OPENCLAW_GATEWAY_TOKEN);
  assert.ok(webhooks.volumes.includes("./config:/app/config:ro"));
  const cfgPath = webhooks.environment.OPENCLAW_WEBHOOKS_CONFIG as string;
  const local = cfgPath.replace("/app/config/", "config/");
  assert.ok(existsSync(local), `${cfgPath} is mounted from ${local}`);
  assert.ok(webhooks.ports.some((p: string) => p.endsWith(":8787")));
  assert.ok(webhooks.stop_grace_period);

  assert.match(prometheus.image, /^prom\/prometheus:v/);
  assert.ok(prometheus.volumes.includes("./config/prometheus.yml:/etc/prometheus/prometheus.yml:ro"));
  assert.ok(prometheus.volumes.includes("./config/alerts.yml:/etc/prometheus/alerts.yml:ro"));
  const prom = parse(readFileSync("config/prometheus.yml", "utf8"));
  assert.deepEqual(prom.rule_files, ["alerts.yml"]);
  const job = prom.scrape_configs[0];
  assert.equal(job.metrics_path, "/metrics");
  assert.deepEqual(job.dns_sd_configs[0].names, ["webhooks"]);
  assert.equal(job.dns_sd_configs[0].port, 8787);

  assert.match(grafana.image, /^grafana\/grafana:\d/);
  assert.ok(grafana.volumes.includes("./deploy/grafana/provisioning:/etc/grafana/provisioning:ro"));
  const dsFile = parse(readFileSync("deploy/grafana/provisioning/datasources/prometheus.yml", "utf8"));
  assert.equal(dsFile.datasources[0].url, "http://prometheus:9090");
  const provider = parse(readFileSync("deploy/grafana/provisioning/dashboards/openclaw-webhooks.yml", "utf8"));
  const dashMount = grafana.volumes.find((v: string) => v.startsWith("./deploy/grafana/dashboards:"));
  assert.equal(provider.providers[0].options.path, dashMount.split(":")[1]);
  const dashboard = JSON.parse(readFileSync("deploy/grafana/dashboards/openclaw-webhooks.json", "utf8"));
  for (const p of dashboard.panels.filter((x: { type: string }) => x.type !== "row")) assert.equal(p.datasource.uid, dsFile.datasources[0].uid, p.title);
});

test("compose: every file or folder a service builds from or mounts exists, and every secret it needs is required", () => {
  const missing: string[] = [];
  for (const [name, svc] of Object.entries(
    compose.services as Record<string, { build?: string | { context: string; dockerfile?: string }; volumes?: string[]; environment?: Record<string, string> }>,
  )) {
    if (svc.build) {
      const b = typeof svc.build === "string" ? { context: svc.build } : svc.build;
      if (!existsSync(b.context)) missing.push(`${name}: build context ${b.context}`);
      const df = b.dockerfile ?? "Dockerfile";
      if (!existsSync(`${b.context}/${df}`)) missing.push(`${name}: ${df}`);
    }
    for (const v of svc.volumes ?? []) {
      const host = v.split(":")[0]!;
      if (host.startsWith(".") || host.startsWith("/")) {
        if (!existsSync(host)) missing.push(`${name}: ${host}`);
      } else assert.ok(host in (compose.volumes ?? {}), `${name}: named volume ${host} is declared`);
    }
    for (const [k, val] of Object.entries(svc.environment ?? {})) {
      if (/TOKEN|SECRET|PASSWORD/.test(k) && typeof val === "string" && val.startsWith("${"))
        assert.match(val, /:\?/, `${name}.${k} must be set, not defaulted`);
    }
  }
  assert.deepEqual(missing, []);
  // Files the images copy in.
  for (const f of ["gateway-plugin/openclaw.plugin.json", "gateway-plugin/index.js", "deploy/gateway/openclaw.json"]) assert.ok(existsSync(f), f);
});

test("the example config the stack mounts is valid, and every env secret it needs is set by compose", () => {
  const raw = JSON5.parse(readFileSync("config/example.json5", "utf8"));
  const config = buildConfig(raw, {}, "config/example.json5");
  assert.equal(config.redis.url, compose.services.webhooks.environment.REDIS_URL);
  const envIds = [...readFileSync("config/example.json5", "utf8").matchAll(/source: "env", provider: "default", id: "(\w+)"/g)].map((m) => m[1]!);
  assert.ok(envIds.length >= 4);
  for (const id of envIds) assert.ok(id in compose.services.webhooks.environment, `compose sets ${id}`);
});
