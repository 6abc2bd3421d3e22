import assert from "node:assert/strict";
import { test } from "node:test";
import { durationSchema, parseDuration } from "./duration.js";

test("durations: milliseconds or unit strings", () => {
  assert.equal(parseDuration(250), 250);
  assert.equal(parseDuration("200ms"), 200);
  assert.equal(parseDuration("30s"), 30_000);
  assert.equal(parseDuration("5m"), 300_000);
  assert.equal(parseDuration("1.5s"), 1_500);
  assert.equal(parseDuration("2h"), 7_200_000);
  assert.equal(parseDuration("1d"), 86_400_000);
  assert.equal(parseDuration("10"), 10);
  for (const bad of ["", "soon", "5 minutes", "-1s", "1e3s"]) assert.equal(parseDuration(bad), undefined, bad);
  assert.equal(parseDuration(-5), undefined);
  assert.equal(durationSchema.parse("30s"), 30_000);
  assert.match(durationSchema.safeParse("soon").error!.issues[0]!.message, /not a duration/);
});
