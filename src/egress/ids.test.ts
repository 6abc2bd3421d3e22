import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { keyPart } from "../util/key-part.js";
import { deliveryId, endpointOfDelivery, eventIdProblem, isDeliveryId, isParkedId, parkedId } from "./ids.js";

/** Characters that break naive ids: separators, unicode, controls, lone surrogates. */
const char = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom("a", "Z", "0", "-", ".", "_", ":", "/", " ", "~", "é", "中", "😀") },
  { weight: 2, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.constantFrom("\u0000", "\n", "\u001b", "\u007f", "\u0085") },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)) },
);
const anyId = fc.oneof(fc.string({ unit: char, maxLength: 30 }), fc.string({ unit: char, minLength: 120, maxLength: 320 }));
const endpointName = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);

test("delivery ids: deterministic, injective over (event, endpoint), printable ASCII without ':' and never an integer", () => {
  fc.assert(
    fc.property(anyId, anyId, endpointName, endpointName, (e1, e2, n1, n2) => {
      const a = deliveryId(e1, n1);
      const b = deliveryId(e2, n2);
      assert.equal(a, deliveryId(e1, n1));
      assert.equal(a === b, e1 === e2 && n1 === n2);
      for (const id of [a, b]) {
        assert.ok(isDeliveryId(id), id);
        assert.match(id, /^[\x21-\x7e]+$/);
        assert.ok(!id.includes(":"));
        assert.notEqual(`${parseInt(id, 10)}`, id, "BullMQ refuses integer job ids");
        assert.ok(id.endsWith(`_${id === a ? n1 : n2}`), "the endpoint stays visible");
      }
    }),
    { numRuns: 2_000 },
  );
  // The pair the old `dlv_<event>_<endpoint>` form could not tell apart.
  assert.notEqual(deliveryId("a_b", "c"), deliveryId("a", "b_c"));
  assert.equal(deliveryId("gw_msg_run-1", "crm"), "dlv_gw_msg_run-1_crm", "plain ids keep their readable form");
  assert.match(deliveryId("manual:job-1:1700000000000:1", "crm"), /^dlvh_[0-9a-f]{32}_crm$/);
});

test("endpointOfDelivery: the endpoint every delivery id names, whatever `_` the event id or the endpoint holds", () => {
  fc.assert(
    fc.property(anyId, endpointName, (e, n) => assert.equal(endpointOfDelivery(deliveryId(e, n)), n)),
    { numRuns: 2_000 },
  );
  // Readable ids: the event may hold `_`, the endpoint does not (everything after the last `_`).
  assert.equal(endpointOfDelivery("dlv_gw_msg_run-1_crm"), "crm");
  assert.equal(endpointOfDelivery(deliveryId("a_b_.c", "x.y-z")), "x.y-z");
  // Hashed ids: the hash has no `_`, the endpoint may (everything after the second `_`).
  assert.equal(endpointOfDelivery(deliveryId("a", "b_c")), "b_c");
  assert.equal(endpointOfDelivery(deliveryId("a:b", "crm_eu.2")), "crm_eu.2");
  assert.equal(endpointOfDelivery(deliveryId("a", "_x_")), undefined, "not an endpoint name, so not a delivery id either");
  for (const notOne of ["dlv_x", "dlv__x", "dlv_a_", "dlvh_abc", "dlvh__x", "dlvh_abc_", "dlv_a_-x", "dl_a_b", "", "dlv_a_b{c}"]) {
    assert.equal(endpointOfDelivery(notOne), undefined, notOne);
    assert.equal(isDeliveryId(notOne), false, notOne);
  }
});

test("key parts and parked ids: injective, plain ids unchanged, no control characters", () => {
  fc.assert(
    fc.property(anyId, anyId, (a, b) => {
      assert.equal(keyPart(a) === keyPart(b), a === b);
      assert.match(keyPart(a), /^[A-Za-z0-9._:~-]{1,128}$/);
      assert.ok(isParkedId(parkedId(a)));
      assert.equal(parkedId(a) === parkedId(b), a === b);
    }),
    { numRuns: 2_000 },
  );
  assert.equal(keyPart("lead-7"), "lead-7");
  assert.equal(keyPart("manual:job:1"), "manual:job:1");
  // "\ud800" and "\ufffd" are one string in UTF-8; they must not share a key.
  assert.notEqual(keyPart("\ud800"), keyPart("\ufffd"));
  assert.notEqual(keyPart(""), keyPart("~"));
});

test("POST /v1/events id rules: 1 to 256 code points, no control characters, no lone surrogates", () => {
  assert.equal(eventIdProblem("lead-7"), undefined);
  assert.equal(eventIdProblem("manual:job-1:1700000000000:1"), undefined);
  assert.equal(eventIdProblem("order 7 / ünïcødé 😀"), undefined);
  assert.equal(eventIdProblem("😀".repeat(256)), undefined, "code points, not UTF-16 units");
  assert.equal(eventIdProblem(""), "must not be empty");
  assert.equal(eventIdProblem("x".repeat(257)), "must be at most 256 characters");
  assert.match(eventIdProblem("a\nb")!, /control characters \(U\+000A\)/);
  assert.match(eventIdProblem("a\u0085")!, /control characters \(U\+0085\)/);
  assert.match(eventIdProblem("a\ud800b")!, /unpaired surrogate/);
});
