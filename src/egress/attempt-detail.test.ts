import assert from "node:assert/strict";
import { test } from "node:test";
import { bodyExcerpt, keepResponseHeaders, maskRequestHeaders, maskValue, RESPONSE_BODY_KEPT } from "./attempt-detail.js";
import { latencyBucket, LATENCY_BOUNDS_MS } from "./stats.js";

test("maskValue keeps a known scheme and nothing of the secret", () => {
  assert.equal(maskValue("v1,abc+/= v1,def=="), "v1,…(masked) v1,…(masked)");
  assert.equal(maskValue("sha256=0123abcd"), "sha256=…(masked)");
  assert.equal(maskValue("Bearer sk_live_123"), "Bearer …(masked)");
  assert.equal(maskValue("Basic dXNlcjpwYXNz"), "Basic …(masked)");
  // An unknown first word is not a scheme: a token that happens to contain "=" or "," keeps nothing.
  assert.equal(maskValue("ABCDEFGH=rest"), "…(masked)");
  assert.equal(maskValue("t=1700000000,v1=abc"), "…(masked)");
  assert.equal(maskValue("two secret words"), "…(masked)");
  assert.equal(maskValue(""), "…(masked)");
});

test("request headers: credential names and values from the environment are masked, the rest kept", () => {
  const out = maskRequestHeaders(
    { "x-api-key": "k1", "X-Auth-Token": "t1", cookie: "a=b", "x-client-secret": "s", "x-plain": "ok", "x-region": "eu-1", "webhook-id": "dlv_1" },
    new Set(["x-region"]),
  );
  assert.deepEqual(out, {
    "x-api-key": "…(masked)",
    "X-Auth-Token": "…(masked)",
    cookie: "…(masked)",
    "x-client-secret": "…(masked)",
    "x-plain": "ok",
    "x-region": "…(masked)",
    "webhook-id": "dlv_1",
  });
});

test("response headers are bounded: 32 at most, 2 KiB in all, values cut at 256", () => {
  const many: Record<string, string> = {};
  for (let i = 0; i < 100; i++) many[`x-h${i}`] = "v".repeat(300);
  const out = keepResponseHeaders(many);
  assert.ok(Object.keys(out).length <= 33);
  assert.ok(JSON.stringify(out).length < 2_600, `${JSON.stringify(out).length}`);
  assert.equal(out["x-h0"], `${"v".repeat(256)}…`);
  assert.match(out["…"]!, /^\d+ more header\(s\) not kept$/);
  assert.deepEqual(keepResponseHeaders({ "set-cookie": ["a=1", "b=2"], "x-ok": "1", gone: undefined }), { "set-cookie": "…(masked)", "x-ok": "1" });
});

test("body excerpt: 1 KiB, not splitting a character", () => {
  assert.deepEqual(bodyExcerpt(Buffer.from("short")), { text: "short", truncated: false });
  const euro = bodyExcerpt(Buffer.from("€".repeat(400))); // 3 bytes each: the cut falls inside one
  assert.equal(euro.truncated, true);
  assert.equal(euro.text, "€".repeat(341));
  assert.ok(Buffer.byteLength(euro.text) <= RESPONSE_BODY_KEPT);
});

test("latency buckets", () => {
  assert.equal(latencyBucket(0), 0);
  assert.equal(latencyBucket(10), 0);
  assert.equal(latencyBucket(11), 1);
  assert.equal(latencyBucket(30_000), LATENCY_BOUNDS_MS.length - 1);
  assert.equal(latencyBucket(30_001), LATENCY_BOUNDS_MS.length);
});
