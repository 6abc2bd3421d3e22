import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { Webhook } from "standardwebhooks";
import { createLogger } from "../src/log.js";
import { startReceiver } from "./support/receiver.js";
import { useRedisAndGateway } from "./support/shared.js";
import { post, SECRET_A, SECRET_B, startService, twoRoutes } from "./support/service.js";
import { until } from "./support/until.js";

const GW_TOKEN = "gw-token-SECRET-0123456789";
const PUBLISH = "publish-token-SECRET-0123456789";
const ADMIN = "admin-token-SECRET-0123456789";
const CI = "ci-token-SECRET-0123456789";
const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WRONG = "wrong-token-SECRET-0123456789";
const shared = useRedisAndGateway(GW_TOKEN);

test("every log line at trace level, across ingress, inbound, publish, admin, egress and failures, holds no secret, token or signature", async () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...chunk.toString().split("\n").filter(Boolean));
      cb();
    },
  });
  const rx = await startReceiver({ secret: WHSEC });
  rx.next({ status: 500, body: "receiver error" });
  const svc = await startService(
    {
      redis: { url: shared.redis.url, prefix: shared.redis.prefix() },
      gateway: { url: shared.gw.url, token: GW_TOKEN },
      admin: { token: ADMIN },
      routes: twoRoutes(),
      webhooks: {
        publishToken: PUBLISH,
        allowPrivateCidrs: ["127.0.0.0/8"],
        endpoints: [{ name: "crm", url: rx.url, secret: WHSEC, events: ["*"], retry: { schedule: ["100ms"] }, headers: { authorization: `Bearer ${CI}` } }],
        inbound: {
          endpoints: {
            deploy: { template: "{{body.repo}} {{headers.authorization}}", auth: { scheme: "token", secret: CI } },
            alert: { template: "{{body.title}}", auth: { scheme: "standard-webhooks", secret: WHSEC } },
          },
        },
      },
    },
    { log: createLogger({ level: "trace", destination: sink }) },
  );
  await svc.deps.egress!.startWorker();
  let sig = "";
  try {
    await post(`${svc.url}/hooks/a`, { action: "create_flow", goal: "g" }, { secret: SECRET_A });
    await post(`${svc.url}/hooks/b`, { action: "create_flow", goal: "g" }, { secret: WRONG });
    await post(`${svc.url}/hooks/a`, { action: "create_flow", goal: "g" }, { headers: { "x-openclaw-webhook-secret": WRONG } });
    await post(`${svc.url}/v1/events`, { type: "lead.qualified", data: { n: 1 } }, { secret: PUBLISH });
    await post(`${svc.url}/v1/events`, { type: "lead.qualified", data: {} }, { secret: WRONG });
    await post(`${svc.url}/webhooks/inbound/deploy`, { repo: "my-app" }, { secret: CI });
    await post(`${svc.url}/webhooks/inbound/deploy`, { repo: "my-app" }, { secret: WRONG });
    const text = JSON.stringify({ title: "t" });
    const at = new Date();
    sig = new Webhook(WHSEC).sign("msg_1", at, text);
    await post(`${svc.url}/webhooks/inbound/alert`, text, {
      headers: { "webhook-id": "msg_1", "webhook-timestamp": String(Math.floor(at.getTime() / 1000)), "webhook-signature": sig },
    });
    await post(`${svc.url}/webhooks/inbound/alert`, text.replace("t", "x"), {
      headers: { "webhook-id": "msg_2", "webhook-timestamp": String(Math.floor(at.getTime() / 1000)), "webhook-signature": sig },
    });
    await fetch(`${svc.url}/admin/api/deliveries`, { headers: { authorization: `Bearer ${ADMIN}` } });
    await fetch(`${svc.url}/admin/api/deliveries`, { headers: { authorization: `Bearer ${WRONG}` } });
    await fetch(`${svc.url}/dashboard/login`, { method: "POST", body: `token=${WRONG}`, headers: { "content-type": "application/x-www-form-urlencoded" } });
    await until(() => rx.received.length >= 3, 10_000);
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    await svc.close();
    await rx.close();
  }
  assert.ok(lines.length >= 13, `captured ${lines.length} lines`);
  assert.ok(
    lines.some((l) => l.includes('"msg":"request"') && l.includes('"code":"unauthorized"')),
    "request lines are there",
  );
  const signatures = rx.received.flatMap((r) => [r.headers["webhook-signature"], r.headers["x-openclaw-signature"]].map(String));
  const forbidden = [GW_TOKEN, PUBLISH, ADMIN, CI, WHSEC, WHSEC.slice(6), WRONG, SECRET_A, SECRET_B, sig, sig.slice(3), ...signatures, "Bearer "];
  for (const line of lines) {
    for (const f of forbidden) assert.ok(!line.includes(f), `a log line holds ${f.slice(0, 12)}…: ${line.slice(0, 300)}`);
  }
});
