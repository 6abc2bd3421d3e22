import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { freePort } from "./support/redis.js";

/**
 * What a newcomer gets from `npm start` on a fresh machine: no Redis, no Gateway, the embedded
 * defaults (config/default.json5), and the seed's curl answered by the demo route.
 */
test("npm start's entry serves the demo route on its embedded defaults, and stops cleanly on SIGTERM", async () => {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port) };
  for (const k of ["REDIS_URL", "OPENCLAW_GATEWAY_URL", "OPENCLAW_GATEWAY_TOKEN", "OPENCLAW_WEBHOOKS_CONFIG"]) delete env[k];
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 15_000);
      child.stdout.on("data", () => {
        if (out.includes("listening")) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    const startup = JSON.parse(out.split("\n").find((l) => l.includes("listening"))!);
    assert.equal(startup.limits, "memory (single replica)");
    assert.equal(startup.gateway, "embedded");
    assert.ok(!out.includes("demo-route-secret"), "the startup summary never prints a secret");

    const res = await fetch(`http://127.0.0.1:${port}/plugins/webhooks/demo`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer demo-route-secret" },
      body: JSON.stringify({ action: "create_flow", goal: "Review inbound queue" }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as any;
    assert.equal(body.ok, true);
    assert.equal(body.routeId, "demo");
    assert.equal(body.result.created, true);
    assert.equal(body.result.flow.goal, "Review inbound queue");
    assert.equal(body.result.flow.controllerId, "webhooks/demo");
    // The README's inbound example on the same defaults: seed 002's deploy, with its demo token.
    const deploy = (token: string) =>
      fetch(`http://127.0.0.1:${port}/webhooks/inbound/deploy`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
        body: JSON.stringify({ repo: "my-app", branch: "main", status: "succeeded", commit: "abc123" }),
      });
    const run = await deploy("demo-inbound-token");
    assert.equal(run.status, 202);
    assert.match(((await run.json()) as any).runId, /^inbound:deploy:/);
    assert.equal((await deploy("wrong")).status, 401);
    assert.ok(!out.includes("demo-inbound-token"), "no token in the logs");
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);

    child.kill("SIGTERM");
    const code = await new Promise((r) => child.once("exit", r));
    assert.equal(code, 0);
  } finally {
    child.kill("SIGKILL");
  }
});
