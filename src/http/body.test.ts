import assert from "node:assert/strict";
import { test } from "node:test";
import { AppError } from "../errors.js";
import { createMemoryPressure } from "../util/memory.js";
import { jsonDepthExceeds, MAX_JSON_DEPTH, parseJsonBody, readBody } from "./body.js";

const b = (s: string) => Buffer.from(s, "utf8");

test("depth counts objects and arrays outside strings; escaped quotes keep a string open", () => {
  assert.equal(jsonDepthExceeds(b('{"a":[{"b":[]}]}'), 4), false);
  assert.equal(jsonDepthExceeds(b('{"a":[{"b":[[]]}]}'), 4), true);
  assert.equal(jsonDepthExceeds(b(JSON.stringify({ s: "[[[[[[{{{{" })), 1), false);
  // `"\"[[["` is one string: the escaped quote does not end it.
  assert.equal(jsonDepthExceeds(b(JSON.stringify({ s: '"[[[[[', t: "\\" })), 1), false);
  assert.equal(jsonDepthExceeds(b('{"s":"\\\\"}[[['), 2), true, "an escaped backslash ends before the quote");
  assert.equal(jsonDepthExceeds(b(JSON.stringify({ "é[": "ü{😀", x: [[]] })), 3), false);
  // Siblings do not add up: depth is how deep, not how many.
  assert.equal(jsonDepthExceeds(b(JSON.stringify(Array.from({ length: 1_000 }, () => [[1]]))), 3), false);
});

test("parseJsonBody: too deep is 400 naming the limit; the limit itself parses", () => {
  const at = "[".repeat(MAX_JSON_DEPTH) + "]".repeat(MAX_JSON_DEPTH);
  assert.equal(JSON.stringify(parseJsonBody(b(at))), at);
  const over = `[${at}]`;
  assert.throws(
    () => parseJsonBody(b(over)),
    (e) => e instanceof AppError && e.status === 400 && /nested more than 64 levels deep/.test(e.message),
  );
  assert.throws(
    () => parseJsonBody(b("{")),
    (e) => e instanceof AppError && e.message === "invalid request body",
  );
});

test("the scan is linear: a 256 KiB body of brackets is judged in well under a request's budget", () => {
  const deep = b("[".repeat(128 * 1024) + "]".repeat(128 * 1024));
  const wide = b(`[${"[1],".repeat(65_000)}[1]]`);
  const started = performance.now();
  for (let i = 0; i < 20; i++) {
    assert.equal(jsonDepthExceeds(deep, MAX_JSON_DEPTH), true);
    assert.equal(jsonDepthExceeds(wide, MAX_JSON_DEPTH), false);
  }
  const ms = (performance.now() - started) / 20;
  assert.ok(ms < 50, `${ms.toFixed(2)} ms per pair`);
});

test("memory pressure: while the heap is near its limit a body is refused (503 overloaded, Retry-After), and read again once it is not", async () => {
  let used = 90;
  const pressure = createMemoryPressure({ read: () => ({ used_heap_size: used, heap_size_limit: 100 }) });
  const request = () => new Request("http://x/", { method: "POST", body: "{}", headers: { "content-length": "2" } });
  await assert.rejects(
    readBody(undefined, request(), { maxBytes: 1_000, timeoutMs: 1_000 }, () => pressure(0)),
    (e) => e instanceof AppError && e.status === 503 && e.code === "overloaded" && e.opts.retryAfterS === 1,
  );
  used = 50;
  assert.equal(pressure(50), true, "read at most every 100 ms: the last reading holds");
  const body = await readBody(undefined, request(), { maxBytes: 1_000, timeoutMs: 1_000 }, () => pressure(200));
  assert.equal(body.toString(), "{}");
  // The process's own gauge reads the real heap: far from its limit in a test.
  assert.equal(createMemoryPressure()(), false);
});
