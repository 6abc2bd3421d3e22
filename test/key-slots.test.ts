import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import slotOf from "cluster-key-slot";
import { deliveryId } from "../src/egress/ids.js";
import { minuteOf } from "../src/egress/stats.js";
import { inboundGatewayKey } from "../src/idempotency/keys.js";
import { createKeys, hashTag } from "../src/redis-keys.js";

/**
 * Redis Cluster refuses a script, MULTI or multi-key command whose keys lie in more than one hash
 * slot. Each group below is the keys one of them touches (src/redis-keys.ts names them), for
 * awkward inputs: every group must be one slot, and each of its keys must carry a hash tag (so a
 * dropped tag fails here even where two untagged keys happen to share a slot).
 */

const PREFIXES = ["", "ocwh:", "test-0b5e:", "a.b_c-d:"];
/** Endpoint names: `_` and `.` included (the readable delivery id form is only for names without `_`). */
const ENDPOINTS = ["crm", "a", "A9", "a_b", "crm.eu-2", "x_y.z", "_".padStart(64, "n"), "n".repeat(64)];
/** Event ids: with `_` (the readable form splits at the last one), hashed ones, unicode, a lone surrogate. */
const EVENTS = [
  "lead-7",
  "gw_msg_run-1",
  "a_b_c",
  "_",
  "__",
  "a.b",
  "-_-",
  "manual:job:1:1700000000000",
  "order 7 / ünï 😀",
  "\ud800",
  "x".repeat(300),
  "e{1}",
];
const STATUSES = ["pending", "delivered", "failed"] as const;

function oneSlot(what: string, keys: string[]) {
  for (const k of keys) assert.notEqual(hashTag(k), k, `${what}: ${k} has no hash tag`);
  const slots = new Set(keys.map((k) => slotOf(k)));
  assert.equal(slots.size, 1, `${what}: ${keys.join(" ")} span slots ${[...slots].join(", ")}`);
}

test("hashTag says what Redis hashes: the slot of a key is the slot of its tag", () => {
  for (const k of ["a{b}c", "{b}", "a{b", "a}b{c}", "a{}b{c}", "{}", "{{b}}", "a{b}{c}", "plain"]) assert.equal(slotOf(k), slotOf(hashTag(k)), k);
  assert.equal(hashTag("a{}b{c}"), "a{}b{c}", "an empty first tag is no tag");
  assert.equal(hashTag("x{{b}}"), "{b");
});

test("the delivery scripts and the log's MULTIs: one slot per delivery, both id forms, with the endpoint's tag", () => {
  const at = Date.UTC(2026, 0, 1, 12, 34);
  for (const prefix of PREFIXES) {
    const k = createKeys(prefix);
    for (const name of ENDPOINTS) {
      // The log's trim (one MULTI over an endpoint's indexes).
      oneSlot(`trim ${name}`, [k.delivery.byEndpoint(name), ...STATUSES.map((s) => k.delivery.byStatus(name, s))]);
      for (const event of EVENTS) {
        const id = deliveryId(event, name);
        const record = k.delivery.record(id);
        if (prefix === "") assert.equal(hashTag(record), name, `${id} is on its endpoint's tag`);
        // finish-batch.lua: state, record, the two status indexes, the stats bucket.
        for (const from of STATUSES)
          for (const to of STATUSES)
            oneSlot(`finish ${id}`, [
              k.endpoint.state(name),
              record,
              k.delivery.byStatus(name, from),
              k.delivery.byStatus(name, to),
              k.endpoint.stats(name, minuteOf(at)),
            ]);
        // markFailed (one MULTI): the record and the three status indexes.
        oneSlot(`markFailed ${id}`, [record, ...STATUSES.map((s) => k.delivery.byStatus(name, s))]);
        // record-batch.lua: one endpoint's part of a publish.
        oneSlot(`publish ${id}`, [k.endpoint.state(name), record, k.delivery.byEndpoint(name), k.delivery.byStatus(name, "pending")]);
      }
    }
  }
});

test("parked events: park-2.lua and remove's MULTI touch one slot", () => {
  for (const prefix of PREFIXES) {
    const { items, at } = createKeys(prefix).parked;
    assert.ok(items.startsWith(prefix) && at.startsWith(prefix), "under the prefix");
    oneSlot("park", [items, at]);
  }
});

test("inbound runs: a run the service names (inbound:<endpoint>:…) is on its endpoint's list's slot; any other run id has a tag of its own", () => {
  const inbound = ["deploy", "gh", "a_b", "ci.main-2", "n".repeat(64)];
  const senderIds = ["msg_2Lx7", "evt_1.2", "b7c0-11ee", "a:b:c", "x".repeat(100), "with space", "ünï", "y".repeat(300)];
  for (const prefix of PREFIXES) {
    const k = createKeys(prefix);
    for (const e of inbound) {
      const readable = [...senderIds.map((d) => inboundGatewayKey(e, d)), `inbound:${e}:${randomUUID()}`].filter(
        // What redis-keys.ts keeps as it is (keyPart: plain, at most 128) and names its endpoint.
        (id) => id.startsWith(`inbound:${e}:`) && id.length <= 128 && /^[A-Za-z0-9._:-]+$/.test(id),
      );
      assert.ok(readable.length >= 4);
      for (const runId of readable) {
        // runs.ts `started`: SET run + LPUSH/LTRIM/PEXPIRE list, one MULTI.
        oneSlot(`run ${runId}`, [k.inbound.run(runId), k.inbound.recent(e)]);
        assert.equal(hashTag(k.inbound.run(runId)), hashTag(k.inbound.recent(e)), "runs.ts takes the one-MULTI path");
      }
    }
    // Hashed Gateway keys, run ids the Gateway chose: each key alone, with a tag (runs.ts sets it on its own).
    for (const runId of [inboundGatewayKey("deploy", "y".repeat(300)), randomUUID(), "inbound:{x}:y", "ünï"]) {
      const key = k.inbound.run(runId);
      assert.notEqual(hashTag(key), key, runId);
      if (prefix === "") assert.notEqual(hashTag(key), hashTag(k.inbound.recent("deploy")), runId);
    }
  }
});

test("limits: acquire-batch.lua's two keys (one route and client per call) share a slot", () => {
  const routes = ["/plugins/webhooks/demo", "/hooks/a", "/webhooks/inbound/a_b", "/odd}path", "/odd{path", "/"];
  const clients = ["127.0.0.1", "::1", "2001:db8::1", "unknown"];
  for (const prefix of PREFIXES) {
    const k = createKeys(prefix);
    for (const r of routes) for (const ip of clients) oneSlot(`acquire ${r}|${ip}`, [k.limits.window(`${r}|${ip}`), k.limits.inflight(`${r}|${ip}`)]);
  }
});

test("different endpoints spread over slots (the tag is the endpoint, not one for everything)", () => {
  const k = createKeys("ocwh:");
  const slots = new Set(Array.from({ length: 50 }, (_, i) => slotOf(k.endpoint.state(`endpoint-${i}`))));
  assert.ok(slots.size > 40, `${slots.size} slots for 50 endpoints`);
});
