import assert from "node:assert/strict";
import { test } from "node:test";
import { renderDeep, renderTemplate } from "./template.js";

const ctx = {
  timestamp: "2026-11-22T12:00:00Z",
  data: { error: { message: "boom" }, count: 3, tags: ["a", "b"] },
  body: { title: "Disk full", items: [{ name: "first" }] },
  headers: { "x-event-type": "alert" },
};

test("paths, indexes, header names with dashes", () => {
  assert.equal(renderTemplate("Alert: {{body.title}} at {{timestamp}}", ctx), "Alert: Disk full at 2026-11-22T12:00:00Z");
  assert.equal(renderTemplate("{{body.items[0].name}} / {{headers.x-event-type}}", ctx), "first / alert");
  assert.equal(renderTemplate("{{ data.error.message }}", ctx), "boom");
});

test("missing values render empty, objects as JSON, numbers as text", () => {
  assert.equal(renderTemplate("[{{body.nope}}][{{body.items[5].name}}]", ctx), "[][]");
  assert.equal(renderTemplate("{{data.tags}}", ctx), '["a","b"]');
  assert.equal(renderTemplate("{{data.count}}", ctx), "3");
});

test("prototype properties are never read", () => {
  assert.equal(renderTemplate("[{{constructor}}][{{body.__proto__}}][{{data.toString}}]", ctx), "[][][]");
});

test("renderDeep: the seed's Slack transform; a lone token keeps its type", () => {
  const out = renderDeep({ text: "Error: {{data.error.message}} at {{timestamp}}", n: "{{data.count}}", all: "{{data.tags}}", keep: 5 }, ctx);
  assert.deepEqual(out, { text: "Error: boom at 2026-11-22T12:00:00Z", n: 3, all: ["a", "b"], keep: 5 });
});
