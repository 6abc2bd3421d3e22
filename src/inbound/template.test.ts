import assert from "node:assert/strict";
import { test } from "node:test";
import { renderTemplate } from "../util/template.js";
import { templateContext } from "./routes.js";

const at = new Date("2026-11-22T12:00:00.000Z");
const ctx = templateContext(
  {
    title: "Disk full",
    severity: "high",
    items: [{ name: "first" }, { name: "second" }],
    meta: { region: "eu" },
    emoji: "🔥 東京",
    n: 0,
    ok: false,
    none: null,
  },
  { "x-event-type": "alert", "content-type": "application/json" },
  { kind: "ops" },
  "/webhooks/inbound/alert",
  at,
);

test("the seed's alert template", () => {
  assert.equal(renderTemplate("Alert received: {{body.title}} - Severity: {{body.severity}}", ctx), "Alert received: Disk full - Severity: high");
});

test("hooks.mappings forms: {{payload.x}}, {{x}}, headers, query, path, now", () => {
  assert.equal(
    renderTemplate("{{payload.title}}|{{title}}|{{headers.x-event-type}}|{{query.kind}}|{{path}}|{{now}}", ctx),
    "Disk full|Disk full|alert|ops|/webhooks/inbound/alert|2026-11-22T12:00:00.000Z",
  );
});

test("arrays, objects, falsy values, unicode", () => {
  assert.equal(renderTemplate("{{body.items[1].name}} {{body.items[0]}}", ctx), 'second {"name":"first"}');
  assert.equal(renderTemplate("{{body.meta}}", ctx), '{"region":"eu"}');
  assert.equal(renderTemplate("{{body.items}}", ctx), '[{"name":"first"},{"name":"second"}]');
  assert.equal(renderTemplate("{{body.n}} {{body.ok}} [{{body.none}}]", ctx), "0 false []");
  assert.equal(renderTemplate("{{body.emoji}} ✓", ctx), "🔥 東京 ✓");
});

test("missing paths render empty; reserved names win over body fields", () => {
  assert.equal(renderTemplate("[{{body.nope}}][{{body.items[9].name}}][{{query.missing}}][{{headers.x-none}}]", ctx), "[][][][]");
  const shadow = templateContext({ path: "from-body", headers: "x" }, {}, {}, "/real", at);
  assert.equal(renderTemplate("{{path}} {{body.path}}", shadow), "/real from-body");
  assert.equal(renderTemplate("{{title}}", templateContext(["array", "body"], {}, {}, "/p", at)), "");
});
