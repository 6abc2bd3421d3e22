import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { createLogger } from "../src/log.js";
import { startReceiver } from "./support/receiver.js";
import { startRedis, type TestRedis } from "./support/redis.js";
import { post, startService } from "./support/service.js";
import { until } from "./support/until.js";

const SECRET = `whsec_${randomBytes(24).toString("base64")}`;
const ADMIN = "admin-token-0123456789";
const PUBLISH = "publish-token-0123456789";
/** A Slack-style URL: the path and the query are the credential. */
const PATH = "/services/T0001/B0002/SlackSecretPath0123";
const QUERY = "?token=tok-SECRET-42";

/**
 * An endpoint's URL can hold its credential (Slack's path, `?token=`): events and logs name an
 * endpoint by its name and origin only; the admin API, behind the admin token, may show it whole.
 */
describe("endpoint URLs stay out of events and logs", () => {
  let redis: TestRedis;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis.dispose());

  for (const how of ["410 Gone", "Svix's rule (disableAfter)"] as const) {
    test(`${how}: endpoint.disabled and the warn log carry the name and origin, never the path or query`, async () => {
      const lines: string[] = [];
      const sink = new Writable({
        write(chunk, _enc, cb) {
          lines.push(...chunk.toString().split("\n").filter(Boolean));
          cb();
        },
      });
      const slack = await startReceiver({ secret: SECRET });
      const ops = await startReceiver({ secret: SECRET });
      slack.setFallback(how === "410 Gone" ? { status: 410 } : { status: 502 });
      const fullUrl = `${slack.url}${PATH}${QUERY}`;
      const svc = await startService(
        {
          redis: { url: redis.url, prefix: redis.prefix() },
          admin: { token: ADMIN },
          webhooks: {
            publishToken: PUBLISH,
            allowPrivateCidrs: ["127.0.0.0/8"],
            disableAfter: "300ms",
            circuitBreaker: { failureThreshold: 100 },
            endpoints: [
              { name: "slack", url: fullUrl, secret: SECRET, events: ["job.*"], retry: { schedule: ["400ms"] } },
              { name: "ops", url: ops.url, secret: SECRET, events: ["endpoint.disabled"] },
            ],
          },
        },
        { log: createLogger({ level: "trace", destination: sink }) },
      );
      await svc.deps.egress!.startWorker();
      try {
        assert.equal((await post(`${svc.url}/v1/events`, { type: "job.done", data: {} }, { secret: PUBLISH })).status, 202);
        await until(() => ops.received.length === 1, 10_000);
        const ev = JSON.parse(ops.received[0]!.body);
        assert.equal(ev.type, "endpoint.disabled");
        assert.equal(ev.data.endpoint, "slack");
        assert.equal(ev.data.origin, slack.url, "scheme://host:port");
        assert.equal(ev.data.url, undefined);
        assert.ok(!ops.received[0]!.body.includes("/services") && !ops.received[0]!.body.includes("tok-SECRET"), ops.received[0]!.body);

        const warn = lines.map((l) => JSON.parse(l)).find((l) => l.msg === "endpoint disabled");
        assert.ok(warn, "the warn line is there");
        assert.equal(warn.level, 40);
        assert.deepEqual([warn.endpoint, warn.origin], ["slack", slack.url]);

        // The admin API is the operator's: the whole URL, and a reason without it.
        const admin = await fetch(`${svc.url}/admin/api/endpoints`, { headers: { authorization: `Bearer ${ADMIN}` } }).then((r) => r.json() as Promise<any>);
        const row = admin.result.endpoints.find((e: { name: string }) => e.name === "slack");
        assert.equal(row.url, fullUrl);
        assert.equal(row.enabled, false);
        assert.ok(!row.disabled.reason.includes("/services"), row.disabled.reason);
        assert.equal((await fetch(`${svc.url}/admin/api/endpoints`)).status, 401);

        await new Promise((r) => setTimeout(r, 200));
        const leaks = lines.filter((l) => l.includes("SlackSecretPath") || l.includes("tok-SECRET"));
        assert.deepEqual(leaks, [], "no log line, at any level, holds the path or the query");
      } finally {
        await svc.close();
        await slack.close();
        await ops.close();
      }
    });
  }
});
