import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_RETRY, maxAttempts, retryDelay } from "./backoff.js";

const mid = () => 0.5;

test("default schedule: 30 s, 5 m, 30 m, then failed", () => {
  assert.equal(maxAttempts(DEFAULT_RETRY), 4);
  assert.deepEqual(
    [2, 3, 4].map((n) => retryDelay(DEFAULT_RETRY, n, { random: mid })),
    [30_000, 300_000, 1_800_000],
  );
  assert.equal(retryDelay(DEFAULT_RETRY, 5, { random: mid }), undefined);
});

test("exponential: backoffMs × 2^(n-2) up to maxAttempts", () => {
  const p = { kind: "exponential", maxAttempts: 3, backoffMs: 1000 } as const;
  assert.deepEqual(
    [2, 3].map((n) => retryDelay(p, n, { random: mid })),
    [1000, 2000],
  );
  assert.equal(retryDelay(p, 4), undefined);
});

test("jitter stays within ±20%", () => {
  for (let i = 0; i < 200; i++) {
    const d = retryDelay(DEFAULT_RETRY, 2)!;
    assert.ok(d >= 24_000 && d <= 36_000, String(d));
  }
  assert.equal(retryDelay(DEFAULT_RETRY, 2, { random: () => 0 }), 24_000);
  assert.equal(retryDelay(DEFAULT_RETRY, 2, { random: () => 1 }), 36_000);
});

test("Retry-After moves the next attempt back, clamped to twice the scheduled delay", () => {
  assert.equal(retryDelay(DEFAULT_RETRY, 2, { random: mid, retryAfterMs: 45_000 }), 45_000);
  assert.equal(retryDelay(DEFAULT_RETRY, 2, { random: mid, retryAfterMs: 3_600_000 }), 60_000);
  assert.equal(retryDelay(DEFAULT_RETRY, 2, { random: mid, retryAfterMs: 1_000 }), 30_000, "never earlier than scheduled");
});
