import assert from "node:assert/strict";
import { test } from "node:test";
import { AppError } from "../errors.js";
import { jsonDepthExceeds, MAX_JSON_DEPTH, parseJsonBody } from "./body.js";

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
