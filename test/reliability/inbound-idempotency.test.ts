import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Webhook } from "standardwebhooks";
import { startFakeGateway } from "../support/fake-gateway.js";
import { startServiceProcess, type ServiceProcess } from "../support/process.js";
import { startRedis } from "../support/redis.js";
import { post } from "../support/service.js";
import { until } from "../support/until.js";

const GW_TOKEN = "gw-token-0123456789";
const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const DELIVERIES = 40;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Issue #16 as a sender sees it: deliveries sent three times at once to two replicas, retried
 * until one copy gets a 2xx (Retry-After honoured, capped at 300 ms to keep the run short), while
 * the Gateway is slow, sometimes slow and then failing, and one replica is SIGKILLed mid-load.
 * A delivery acknowledged with a 2xx whose run never started would be a run lost.
 */
describe("reliability: inbound idempotency", () => {
  test("duplicates, a slow and failing Gateway and a SIGKILLed replica: every acknowledged delivery started exactly one run", async () => {
    const redis = await startRedis();
    const gw = await startFakeGateway({ token: GW_TOKEN });
    const config = {
      redis: { url: redis.url, prefix: redis.prefix() },
      gateway: { url: gw.url, token: GW_TOKEN },
      limits: { rateLimit: { windowMs: 60_000, maxRequests: 100_000 }, maxInFlight: 100 },
      idempotency: { leaseMs: 1_000, waitMs: 100 },
      webhooks: { inbound: { endpoints: { alert: { agentId: "ops", template: "Alert {{body.n}}", auth: { scheme: "standard-webhooks", secret: WHSEC } } } } },
    };
    const replicas: ServiceProcess[] = [];
    try {
      replicas.push(await startServiceProcess(config), await startServiceProcess(config));
      // The first agent calls: slow and then failing, or admitted and answered late, in turn.
      for (let i = 0; i < 16; i++)
        gw.script("agent", i % 2 === 0 ? { delayMs: 400, error: { code: "UNAVAILABLE", message: "provider down" } } : { answerDelayMs: 300 });
      let requests = 0;
      let inProgress = 0;
      let replayed = 0;
      let killed = false;
      const acknowledged = new Map<number, string>();
      const send = async (n: number, replica: number) => {
        requests++;
        const id = `msg_rel_${n}`;
        const text = JSON.stringify({ n });
        const at = new Date();
        const headers = {
          "webhook-id": id,
          "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
          "webhook-signature": new Webhook(WHSEC).sign(id, at, text),
        };
        const r = await post(`${replicas[replica % 2]!.url}/webhooks/inbound/alert`, text, { headers }).catch(() => undefined);
        if (r?.status === 409) inProgress++;
        if (r?.headers.get("idempotent-replayed") === "true") replayed++;
        return r;
      };
      const deliver = async (n: number) => {
        for (let attempt = 0; attempt < 40; attempt++) {
          // The first attempt is three copies at once, on both replicas (a sender that retried early).
          const copies = attempt === 0 ? [0, 1, 0] : [attempt + n];
          const answers = await Promise.all(copies.map((replica) => send(n, killed ? 0 : replica)));
          const ok = answers.find((r) => r && r.status >= 200 && r.status < 300);
          if (ok) return void acknowledged.set(n, ok.json.runId as string);
          const retryAfter = Math.max(...answers.map((r) => Number(r?.headers.get("retry-after") ?? 0)));
          await sleep(Math.min(300, Math.max(50, retryAfter * 1000)));
        }
      };
      const next = { n: 0 };
      const worker = async () => {
        while (next.n < DELIVERIES) await deliver(next.n++);
      };
      const load = Promise.all(Array.from({ length: 8 }, worker));
      await until(() => gw.frames.filter((f) => f.method === "agent").length >= 20, 30_000);
      killed = true;
      await replicas[1]!.stop("SIGKILL");
      await load;

      // The run a delivery starts has the delivery's key as its id (the Gateway's rule).
      const lost = [...acknowledged.keys()].filter((n) => !gw.startedRuns.has(`inbound:alert:msg_rel_${n}`)).length;
      const figure = `${DELIVERIES} deliveries, ${requests - DELIVERIES} duplicates sent (${inProgress} answered 409 in progress, ${replayed} replayed), runs started ${gw.runsStarted()}, runs lost ${lost}, one replica SIGKILLed mid-load`;
      console.log(`  [inbound idempotency] ${figure}`);
      assert.equal(acknowledged.size, DELIVERIES, "every delivery acknowledged in the end");
      assert.equal(lost, 0, "no sender told done for a run that never started");
      assert.equal(gw.runsStarted(), DELIVERIES, "one run per delivery");
      for (const [n, runId] of acknowledged) assert.equal(runId, `inbound:alert:msg_rel_${n}`, "each answer names its delivery's run");
    } finally {
      for (const r of replicas) await r.stop("SIGKILL");
      await gw.stop();
      await redis.dispose();
    }
  });
});
