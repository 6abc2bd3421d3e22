import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Redis } from "ioredis";
import { createKeys } from "../src/redis-keys.js";
import { startReceiver } from "./support/receiver.js";
import { freePort, startRedis } from "./support/redis.js";
import { until } from "./support/until.js";

const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PUBLISH = "publish-token-0123456789";

/** `npm start`'s entry with a config file, on its own port; resolves once it listens. */
async function startProcess(configPath: string, port: number): Promise<ChildProcess> {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), LOG_LEVEL: "info" };
  for (const k of ["REDIS_URL", "OPENCLAW_GATEWAY_URL", "OPENCLAW_GATEWAY_TOKEN"]) delete env[k];
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "--config", configPath], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  await until(() => out.includes("listening") || child.exitCode !== null, 20_000);
  if (child.exitCode !== null) throw new Error(`service exited: ${out}`);
  return child;
}

test("SIGTERM during a slow delivery lets that attempt finish and be recorded once; a restart does not send it again", async () => {
  const redis = await startRedis();
  const rx = await startReceiver({ secret: WHSEC });
  rx.next({ status: 200, delayMs: 1_500, body: "slow but fine" });
  const prefix = redis.prefix();
  const dir = mkdtempSync(join(tmpdir(), "ocwh-shutdown-"));
  const configPath = join(dir, "config.json5");
  writeFileSync(
    configPath,
    JSON.stringify({
      server: { host: "127.0.0.1" },
      redis: { url: redis.url, prefix },
      webhooks: {
        publishToken: PUBLISH,
        allowPrivateCidrs: ["127.0.0.0/8"],
        endpoints: [{ name: "slow", url: rx.url, secret: WHSEC, events: ["*"], timeoutMs: 5_000 }],
      },
    }),
  );
  const port = await freePort();
  let child = await startProcess(configPath, port);
  const probe = new Redis(redis.url);
  try {
    const res = await fetch(`http://127.0.0.1:${port}/v1/events`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${PUBLISH}` },
      body: JSON.stringify({ type: "job.done", data: {}, id: "job-1" }),
    });
    assert.equal(res.status, 202);
    await until(() => rx.received.length === 1); // the attempt is in flight (the receiver takes 1.5 s)
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const t0 = Date.now();
    child.kill("SIGTERM");
    assert.equal(await exited, 0, "exit 0");
    assert.ok(Date.now() - t0 >= 1_000, "it waited for the attempt");
    const id = rx.received[0]!.headers["webhook-id"] as string;
    const rec = await probe.hgetall(createKeys(prefix).delivery.record(id));
    assert.equal(rec.status, "delivered");
    assert.equal(rec.attempts, "1");
    assert.equal(JSON.parse(rec.a1!).responseBody, "slow but fine");

    child = await startProcess(configPath, port);
    await new Promise((r) => setTimeout(r, 2_000));
    assert.equal(rx.received.length, 1, "not sent again after the restart");
  } finally {
    child.kill("SIGKILL");
    probe.disconnect();
    await rx.close();
    await redis.dispose();
  }
});
