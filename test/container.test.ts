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
  assert.match(dockerfile, /CMD \["node", "dist\/main\.js"\]/);
});

test("compose: Redis with AOF and noeviction, two replicas on one Redis with the example config, Prometheus scraping them", () => {
  const { redis, webhooks, prometheus } = compose.services;
  const flags = (redis.command as string[]).join(" ");
  assert.match(flags, /--appendonly yes/);
  assert.match(flags, /--maxmemory-policy noeviction/);
  assert.ok(redis.volumes.some((v: string) => v.endsWith(":/data")));
  assert.ok(redis.healthcheck);

  assert.equal(webhooks.build, ".");
  assert.equal(webhooks.deploy.replicas, 2);
  assert.equal(webhooks.depends_on.redis.condition, "service_healthy");
  assert.equal(webhooks.environment.REDIS_URL, "redis://redis:6379");
  assert.ok(webhooks.volumes.includes("./config:/app/config:ro"));
  const cfgPath = webhooks.environment.OPENCLAW_WEBHOOKS_CONFIG as string;
  const local = cfgPath.replace("/app/config/", "config/");
  assert.ok(existsSync(local), `${cfgPath} is mounted from ${local}`);
  assert.ok(webhooks.ports.some((p: string) => p.endsWith(":8787")));
  assert.ok(webhooks.stop_grace_period);

  assert.match(prometheus.image, /^prom\/prometheus/);
  assert.ok(prometheus.volumes.includes("./config/prometheus.yml:/etc/prometheus/prometheus.yml:ro"));
  const prom = parse(readFileSync("config/prometheus.yml", "utf8"));
  const job = prom.scrape_configs[0];
  assert.equal(job.metrics_path, "/metrics");
  assert.deepEqual(job.dns_sd_configs[0].names, ["webhooks"]);
  assert.equal(job.dns_sd_configs[0].port, 8787);
});

test("the example config the stack mounts is valid, and every env secret it needs is set by compose", () => {
  const raw = JSON5.parse(readFileSync("config/example.json5", "utf8"));
  const config = buildConfig(raw, {}, "config/example.json5");
  assert.equal(config.redis.url, compose.services.webhooks.environment.REDIS_URL);
  const envIds = [...readFileSync("config/example.json5", "utf8").matchAll(/source: "env", provider: "default", id: "(\w+)"/g)].map((m) => m[1]!);
  assert.ok(envIds.length >= 4);
  for (const id of envIds) assert.ok(id in compose.services.webhooks.environment, `compose sets ${id}`);
});
