import assert from "node:assert/strict";
import { test } from "node:test";
import { endpointSchema, matchesEvent, passesFilter, webhooksSchema } from "./endpoints.js";

const base = { name: "main-webhook", url: "https://example.test/hooks", secret: "whsec_abc", events: ["message.*"] };

test("endpoint defaults: 5 s timeout, both signing schemes, enabled", () => {
  const e = endpointSchema.parse(base);
  assert.equal(e.timeoutMs, 5_000);
  assert.deepEqual(e.signing, ["openclaw", "standard"]);
  assert.equal(e.enabled, true);
  assert.equal(e.retry, undefined);
});

test("retry in either form, durations as strings", () => {
  assert.deepEqual(endpointSchema.parse({ ...base, retry: { schedule: ["30s", "5m", 1000] } }).retry, { schedule: [30_000, 300_000, 1000] });
  assert.deepEqual(endpointSchema.parse({ ...base, retry: { maxAttempts: 3, backoffMs: "1s" } }).retry, { maxAttempts: 3, backoffMs: 1000 });
  assert.equal(endpointSchema.safeParse({ ...base, retry: { schedule: ["soon"] } }).success, false);
});

test("refused: reserved headers, bad URLs, bad patterns, both X-OpenClaw-Signature schemes, duplicate names", () => {
  for (const h of ["webhook-id", "Content-Type", "host", "X-OpenClaw-Signature"]) {
    assert.equal(endpointSchema.safeParse({ ...base, headers: { [h]: "x" } }).success, false, h);
  }
  assert.equal(endpointSchema.safeParse({ ...base, headers: { Authorization: "Bearer ${TOKEN}" } }).success, true);
  assert.equal(endpointSchema.safeParse({ ...base, url: "ftp://example.test/" }).success, false);
  assert.equal(endpointSchema.safeParse({ ...base, events: ["message.*.x"] }).success, false);
  assert.equal(endpointSchema.safeParse({ ...base, signing: ["openclaw", "legacy-body"] }).success, false);
  assert.equal(webhooksSchema.safeParse({ endpoints: [base, base] }).success, false);
});

test("subscriptions: exact, prefix, everything", () => {
  assert.ok(matchesEvent(["message.*"], "message.sent"));
  assert.ok(!matchesEvent(["message.*"], "messages.sent"));
  assert.ok(!matchesEvent(["message.*"], "message"));
  assert.ok(matchesEvent(["lead.qualified"], "lead.qualified"));
  assert.ok(!matchesEvent(["lead.qualified"], "lead.qualified.extra"));
  assert.ok(matchesEvent(["*"], "anything.at.all"));
});

test("agentIds filter", () => {
  assert.ok(passesFilter({}, { agentId: "x" }));
  assert.ok(passesFilter({ filter: { agentIds: ["a", "b"] } }, { agentId: "b" }));
  assert.ok(!passesFilter({ filter: { agentIds: ["a"] } }, { agentId: "b" }));
  assert.ok(!passesFilter({ filter: { agentIds: ["a"] } }, {}));
});
