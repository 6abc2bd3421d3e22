import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Webhook } from "standardwebhooks";
import { createGatewayMapper } from "../src/egress/gateway-events.js";
import { catalogueValidator, newAjv } from "./support/catalogue.js";
import { FIXTURES, loadFixture } from "./support/gateway-fixtures.js";
import { startReceiver } from "./support/receiver.js";
import { useRedisAndGateway } from "./support/shared.js";
import { startService, type TestService } from "./support/service.js";
import { until } from "./support/until.js";
import { SERVICE_EVENT_TYPES } from "./support/event-types.js";

/**
 * `/openapi.json` (issue #20): a valid OpenAPI 3.1 document of every surface this deployment
 * serves, every route answering what it describes (each operation exercised over a real socket
 * with and without its credential, every answer validated against the document's own schema),
 * and the outgoing event catalogue holding for what is really delivered.
 */
const GW_TOKEN = "gw-token-0123456789abcdef";
const ROUTE_SECRET = "route-secret-0123456789abcdef";
const TOKEN = "inbound-token-0123456789abcdef";
const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const GITHUB = "github-secret-0123456789abcdef";
const STRIPE = "whsec_stripe-secret-0123456789abcdef";
const HMAC = "hmac-secret-0123456789abcdef";
const PUBLISH = "publish-token-0123456789abcdef";
const ADMIN = "admin-token-0123456789abcdef";
const ENDPOINT_SECRET = "whsec_c2VjcmV0LWZvci10aGUtb3BlbmFwaS10ZXN0";

const shared = useRedisAndGateway(GW_TOKEN);
let svc: TestService;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let gone: Awaited<ReturnType<typeof startReceiver>>;
let doc: any;
let seq = 0;
const uid = () => `oa-${process.pid}-${++seq}`;

describe("the API description", () => {
  before(async () => {
    rx = await startReceiver({ secret: ENDPOINT_SECRET });
    gone = await startReceiver();
    gone.setFallback({ status: 410, body: "gone" });
    svc = await startService({
      redis: { url: shared.redis.url, prefix: `oa-${process.pid}:` },
      gateway: { url: shared.gw.url, token: GW_TOKEN },
      admin: { token: ADMIN },
      server: { host: "127.0.0.1", port: 0, trustedProxies: ["127.0.0.1"] },
      routes: { a: { path: "/hooks/a", sessionKey: "agent:main:hook:a", secret: ROUTE_SECRET } },
      webhooks: {
        publishToken: PUBLISH,
        allowPrivateCidrs: ["127.0.0.0/8"],
        endpoints: [
          { name: "crm", url: rx.url, secret: ENDPOINT_SECRET, events: ["*"] },
          // Answers 410: disabled after one attempt, with an endpoint.disabled event to `crm`.
          { name: "gone", url: gone.url, secret: ENDPOINT_SECRET, events: ["gone.*"], retry: { schedule: [] } },
        ],
        inbound: {
          endpoints: {
            tok: { template: "Alert {{body.title}}", auth: { scheme: "token", secret: TOKEN } },
            sw: { template: "Alert {{body.title}}", auth: { scheme: "standard-webhooks", secret: WHSEC } },
            gh: { template: "Push to {{body.repository.full_name}}", auth: { scheme: "github", secret: GITHUB } },
            stripe: { template: "Stripe {{body.type}}", auth: { scheme: "stripe", secret: STRIPE } },
            hm: { template: "Alert {{body.title}}", auth: { scheme: "hmac", secret: HMAC, header: "x-signature", prefix: "sha256=" } },
            wake: { action: "wake", template: "Wake {{body.title}}", auth: { scheme: "token", secret: TOKEN } },
          },
        },
      },
    } as never);
    await svc.deps.egress!.startWorker();
    const res = await fetch(`${svc.url}/openapi.json`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
    doc = await res.json();
  });
  after(async () => {
    await svc?.close();
    await rx?.close();
    await gone?.close();
  });
  register();
});

/** Credentials and signatures for each security scheme and inbound endpoint, as a caller sends them. */
function credentials(path: string, op: any, body: string): Record<string, string> {
  const schemes = (op.security ?? []).flatMap((s: object) => Object.keys(s));
  const bearer: Record<string, string> = { taskflowSecret: ROUTE_SECRET, publishToken: PUBLISH, adminToken: ADMIN, inboundToken: TOKEN };
  for (const s of schemes) if (bearer[s]) return { authorization: `Bearer ${bearer[s]}`, "webhook-id": uid() };
  const name = path.split("/").at(-1)!;
  const t = Math.floor(Date.now() / 1000);
  switch (name) {
    case "sw": {
      const id = uid();
      return { "webhook-id": id, "webhook-timestamp": String(t), "webhook-signature": new Webhook(WHSEC).sign(id, new Date(t * 1000), body) };
    }
    case "gh":
      return { "x-github-delivery": uid(), "x-hub-signature-256": `sha256=${createHmac("sha256", GITHUB).update(body).digest("hex")}` };
    case "stripe":
      return { "stripe-signature": `t=${t},v1=${createHmac("sha256", STRIPE).update(`${t}.${body}`).digest("hex")}` };
    case "hm":
      return { "webhook-id": uid(), "x-signature": `sha256=${createHmac("sha256", HMAC).update(body).digest("hex")}` };
  }
  return {};
}

/** Every operation in the document, in an order that leaves the state usable (disable before enable). */
function operations(): { path: string; method: string; op: any }[] {
  const out = Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => ({ path, method, op })),
  );
  const rank = (p: string) => (p.endsWith("/disable") ? 0 : p.endsWith("/enable") ? 1 : p === "/dashboard/logout" ? 3 : 2);
  return out.sort((a, b) => rank(a.path) - rank(b.path));
}

function responseValidator() {
  const ajv = newAjv();
  ajv.addSchema({ $id: "doc", ...doc });
  const ptr = (...parts: string[]) => parts.map((p) => p.replace(/~/g, "~0").replace(/\//g, "~1")).join("/");
  return (path: string, method: string, status: number, body: unknown): string[] => {
    const v = ajv.compile({ $ref: `doc#/${ptr("paths", path, method, "responses", String(status), "content", "application/json", "schema")}` });
    return v(body) ? [] : (v.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message}`);
  };
}

/** Sends one request and checks the answer against the operation's documented responses. */
async function exercise(
  check: ReturnType<typeof responseValidator>,
  path: string,
  method: string,
  op: any,
  opts: { auth: boolean; body?: string; media?: string; cookie?: string },
) {
  const media = opts.media ?? Object.keys(op.requestBody?.content ?? {})[0] ?? "application/json";
  const example = op.requestBody?.content?.[media]?.example;
  const body =
    opts.body ??
    (media === "application/x-www-form-urlencoded" ? `token=${encodeURIComponent(ADMIN)}` : example !== undefined ? JSON.stringify(example) : undefined);
  // Required query parameters get a real value (a delivery id for `id`).
  const query = new URLSearchParams(
    (op.parameters ?? []).filter((p: any) => p.in === "query" && p.required).map((p: any) => [p.name, PARAMS[`${path}?${p.name}`] ?? "x"]),
  );
  const url = svc.url + path.replace("{name}", "crm").replace("{id}", PARAMS[path] ?? "unknown-id") + (query.size ? `?${query}` : "");
  const ctrl = new AbortController();
  const res = await fetch(url, {
    method: method.toUpperCase(),
    headers: {
      "x-forwarded-for": `198.18.0.${++seq % 250}`,
      ...(body !== undefined ? { "content-type": media } : {}),
      ...(opts.auth ? credentials(path, op, body ?? "") : {}),
      ...(opts.cookie ? { cookie: opts.cookie } : {}),
    },
    ...(body !== undefined ? { body } : {}),
    redirect: "manual",
    signal: ctrl.signal,
  });
  const where = `${method.toUpperCase()} ${path} (${opts.auth ? "with" : "without"} credentials) → ${res.status}`;
  const documented = op.responses[String(res.status)];
  const type = res.headers.get("content-type") ?? "";
  if (type.startsWith("text/event-stream")) ctrl.abort();
  const text = type.startsWith("text/event-stream") ? "" : await res.text();
  assert.ok(documented, `${where} is not a documented answer: ${text.slice(0, 300)}`);
  const content = documented.content as Record<string, unknown> | undefined;
  if (content) {
    const mediaBack = Object.keys(content).find((m) => type.startsWith(m));
    assert.ok(mediaBack, `${where}: content-type ${type} is not one of ${Object.keys(content).join(", ")}`);
    if (mediaBack === "application/json") assert.deepEqual(check(path, method, res.status, JSON.parse(text)), [], `${where}: ${text.slice(0, 400)}`);
  }
  return { status: res.status, text, headers: res.headers };
}

const PARAMS: Record<string, string> = {};

function register() {
  describe("/openapi.json", () => {
    test("is a valid OpenAPI 3.1 document (validated by @seriousme/openapi-schema-validator), and every schema in it compiles as JSON Schema 2020-12", async () => {
      assert.equal(doc.openapi, "3.1.0");
      const result = await new Validator().validate(structuredClone(doc));
      assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2)?.slice(0, 2_000));
      const ajv = newAjv();
      ajv.addSchema({ $id: "doc", ...doc });
      for (const name of Object.keys(doc.components.schemas)) ajv.compile({ $ref: `doc#/components/schemas/${name}` });
      console.log(
        `# openapi: ${Object.keys(doc.paths).length} paths, ${operations().length} operations, ${Object.keys(doc.webhooks).length} webhooks, ${Object.keys(doc.components.schemas).length} schemas`,
      );
    });

    test("describes exactly the routes the service serves: every route in the document, every documented path served", () => {
      const param = (p: string) => p.replace(/:([A-Za-z]+)/g, "{$1}").replace(/(.)\/$/, "$1");
      const served = new Map<string, Set<string>>();
      for (const r of svc.app.routes) {
        // Middleware (`use`, and the stages before a route's handler) takes `next`; handlers do not.
        if (r.path.includes("*") || r.handler.length >= 2) continue;
        const set = served.get(param(r.path)) ?? new Set<string>();
        set.add(r.method.toLowerCase());
        served.set(param(r.path), set);
      }
      const documented = new Map(Object.entries(doc.paths as Record<string, object>).map(([p, item]) => [p, new Set(Object.keys(item))]));
      assert.deepEqual([...served.keys()].sort(), [...documented.keys()].sort());
      for (const [path, methods] of served) {
        for (const m of methods) {
          if (m === "all") assert.deepEqual([...documented.get(path)!], ["post"], `${path} answers POST only (405 otherwise), as documented`);
          else assert.ok(documented.get(path)!.has(m), `${m.toUpperCase()} ${path} is documented`);
        }
      }
    });

    test("every TaskFlow action, the publish body and the admin queries are the schemas the routes validate with", () => {
      const taskflow = doc.components.schemas.TaskFlowAction;
      const actions = taskflow.oneOf.map((s: any) => s.properties.action.const).sort();
      assert.deepEqual(actions, [
        "cancel_flow",
        "create_flow",
        "fail_flow",
        "find_latest_flow",
        "finish_flow",
        "get_flow",
        "get_task_summary",
        "list_flows",
        "request_cancel",
        "resolve_flow",
        "resume_flow",
        "run_task",
        "set_waiting",
      ]);
      const publish = doc.paths["/v1/events"].post.requestBody.content["application/json"].schema;
      assert.deepEqual(publish.required, ["type"]);
      assert.equal(publish.additionalProperties, false);
      const q = doc.paths["/admin/api/deliveries"].get.parameters.map((p: any) => p.name).sort();
      assert.deepEqual(q, ["endpoint", "eventType", "limit", "since", "status", "until"]);
    });

    test("every operation answers what it describes: its example with credentials, without them, and with a body it refuses", async () => {
      const check = responseValidator();
      // A real delivery id for the delivery routes.
      const pub = await fetch(`${svc.url}/v1/events`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${PUBLISH}` },
        body: JSON.stringify({ type: "lead.qualified", data: {} }),
      });
      const eventId = ((await pub.json()) as { id: string }).id;
      await until(async () => rx.received.some((r) => JSON.parse(r.body).id === eventId), 10_000);
      const list = (await (await fetch(`${svc.url}/admin/api/deliveries?limit=1`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as any;
      PARAMS["/admin/api/deliveries/{id}"] = PARAMS["/admin/api/deliveries/{id}/replay"] = PARAMS["/admin/api/find?id"] = list.result.deliveries[0].id;
      const ok = new Set<string>();
      let requests = 0;
      for (const { path, method, op } of operations()) {
        const good = await exercise(check, path, method, op, { auth: true });
        requests++;
        if (good.status < 400) ok.add(`${method} ${path}`);
        if (op.security?.length) {
          const bad = await exercise(check, path, method, op, { auth: false });
          requests++;
          assert.equal(bad.status, 401, `${method} ${path} without credentials`);
        }
        const json = op.requestBody?.content?.["application/json"]?.schema;
        if ((json && json.additionalProperties === false) || json?.$ref) {
          const refused = await exercise(check, path, method, op, { auth: true, body: JSON.stringify({ unexpected: true }) });
          requests++;
          assert.equal(refused.status, 400, `${method} ${path} with a body it does not take`);
        }
      }
      // Only the parked-event routes have nothing to act on here (nothing is parked): their 404 is documented and checked above.
      const without = operations()
        .map(({ path, method }) => `${method} ${path}`)
        .filter((k) => !ok.has(k));
      assert.deepEqual(without, ["get /admin/api/parked/{id}", "post /admin/api/parked/{id}/replay", "post /admin/api/parked/{id}/discard"]);
      console.log(`# openapi: ${operations().length} operations exercised, ${requests} requests, every answer documented and valid`);
    });
  });

  describe("the outgoing event catalogue (the document's webhooks)", () => {
    test("lists every event type the service sends, with the delivery's signature headers", () => {
      const types = Object.keys(doc.webhooks);
      for (const t of [...SERVICE_EVENT_TYPES, "custom.triggered", "agent event", "published event"]) {
        assert.ok(types.includes(t), `${t} is in the catalogue`);
      }
      const headers = doc.webhooks["message.sent"].post.parameters.map((p: any) => p.name);
      for (const h of ["webhook-id", "webhook-timestamp", "webhook-signature", "x-openclaw-signature", "x-openclaw-timestamp"])
        assert.ok(headers.includes(h), h);
    });

    test("every event mapped from the frames the real Gateway 2026.9.6 sent (test/fixtures/gateway) meets its schema", () => {
      const v = catalogueValidator(doc);
      const seen = new Set<string>();
      for (const name of FIXTURES) {
        const map = createGatewayMapper();
        for (const f of loadFixture(name).frames) {
          for (const ev of map(f.event, f.payload)) {
            const envelope = { id: ev.id, type: ev.type, timestamp: new Date().toISOString(), instanceId: "i", data: ev.data };
            assert.deepEqual(v.problems(envelope), [], `${name}: ${ev.type} ${JSON.stringify(ev.data).slice(0, 300)}`);
            seen.add(ev.type);
          }
        }
      }
      assert.deepEqual([...seen].sort(), [
        "cron.finished",
        "error.occurred",
        "message.received",
        "message.sent",
        "session.created",
        "session.ended",
        "task.updated",
        "tool.called",
        "tool.completed",
      ]);
    });

    test("what is really delivered meets the catalogue: a test event, a published event, flow events, endpoint.disabled, inbound.completed", async () => {
      const v = catalogueValidator(doc);
      const admin = { authorization: `Bearer ${ADMIN}` };
      await fetch(`${svc.url}/admin/api/endpoints/crm/test`, { method: "POST", headers: admin });
      const publish = (type: string) =>
        fetch(`${svc.url}/v1/events`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${PUBLISH}` },
          body: JSON.stringify({ type, data: { n: 1 } }),
        });
      await publish("order.shipped");
      await publish("gone.away"); // to the 410 endpoint: disabled, endpoint.disabled to crm
      const route = (body: object) =>
        fetch(`${svc.url}/hooks/a`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${ROUTE_SECRET}` },
          body: JSON.stringify(body),
        });
      const created = (await (await route({ action: "create_flow", goal: "ship it", notifyPolicy: "state_changes" })).json()) as any;
      await route({ action: "finish_flow", flowId: created.result.flow.flowId, expectedRevision: created.result.flow.revision });
      // An inbound agent run: the fake Gateway ends it (as recorded), and inbound.completed follows.
      await (
        await fetch(`${svc.url}/webhooks/inbound/tok`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
          body: JSON.stringify({ title: "disk full" }),
        })
      ).json();
      const want = ["webhook.test", "order.shipped", "endpoint.disabled", "flow.created", "flow.finished", "inbound.completed"];
      await until(() => want.every((t) => rx.received.some((r) => JSON.parse(r.body).type === t)), 15_000);
      let checked = 0;
      for (const r of rx.received) {
        assert.equal(r.verified, true, "signed (standardwebhooks verifies it)");
        assert.deepEqual(v.problems(JSON.parse(r.body)), [], r.body.slice(0, 400));
        checked++;
      }
      assert.ok(checked >= want.length);
      // The catalogue can fail: a flow event without its flow does not pass.
      const bad = { ...JSON.parse(rx.received.find((r) => JSON.parse(r.body).type === "flow.finished")!.body) };
      delete bad.data.flow;
      assert.notDeepEqual(v.problems(bad), []);
    });
  });
}
