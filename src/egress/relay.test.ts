import assert from "node:assert/strict";
import { test } from "node:test";
import { createLogger } from "../log.js";
import { isTransient } from "./failure.js";
import type { MappedEvent } from "./gateway-events.js";
import { createRelay } from "./relay.js";

const log = createLogger({ level: "silent" });
const ev = (id: string): MappedEvent => ({ type: "tool.called", data: {}, id, source: "gateway" });
const until = async (cond: () => boolean, ms = 5_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
};

test("a buffered event that keeps failing does not hold up the ones behind it; it is parked after its strikes", async () => {
  const stored: string[] = [];
  const parked: { id: string; reason: string }[] = [];
  const relay = createRelay(
    async (e) => {
      if (e.id === "bad") throw new Error("Connection is closed."); // looks transient, is not
      stored.push(e.id);
    },
    { log, retryBaseMs: 5, retryMaxMs: 20, maxStrikes: 3, park: async (e, reason) => void parked.push({ id: e.id, reason }) },
  );
  relay.emit(ev("bad"));
  for (let i = 0; i < 10; i++) {
    relay.emit(ev(`ok-${i}`));
    await new Promise((r) => setTimeout(r, 15));
  }
  await until(() => stored.length === 10 && parked.length === 1);
  assert.deepEqual(
    stored,
    Array.from({ length: 10 }, (_, i) => `ok-${i}`),
  );
  assert.equal(parked[0]!.id, "bad");
  assert.match(parked[0]!.reason, /failed 3 times while other events were stored: Connection is closed\./);
  assert.equal(relay.pending, 0);
  await relay.close(100);
});

test("Redis away: everything waits (nothing parked), in a bounded buffer, and goes out once it is back", async () => {
  let up = false;
  let calls = 0;
  const stored: string[] = [];
  let dropped = 0;
  const parked: string[] = [];
  const relay = createRelay(
    async (e) => {
      calls++;
      if (!up) throw new Error("Stream isn't writeable and enableOfflineQueue options is false");
      stored.push(e.id);
    },
    { log, retryBaseMs: 5, retryMaxMs: 10, maxBuffered: 5, maxStrikes: 1, onDrop: (n) => (dropped += n), park: async (e) => void parked.push(e.id) },
  );
  for (let i = 0; i < 8; i++) relay.emit(ev(`e-${i}`));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(relay.pending, 5);
  assert.equal(dropped, 3, "the oldest beyond the buffer are dropped and counted");
  const passes = calls;
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(calls - passes < 40, "a pass stops after two failures in a row");
  up = true;
  await until(() => relay.pending === 0);
  assert.deepEqual(stored.sort(), ["e-3", "e-4", "e-5", "e-6", "e-7"]);
  assert.deepEqual(parked, [], "no strikes while nothing could be stored");
  await relay.close(100);
});

test("a publish that throws synchronously is buffered and retried, not lost and not thrown at the emitter", async () => {
  let n = 0;
  const stored: string[] = [];
  const publish = ((e: MappedEvent) => {
    if (n++ < 2) throw new TypeError("boom");
    stored.push(e.id);
    return Promise.resolve();
  }) as (e: MappedEvent) => Promise<unknown>;
  const relay = createRelay(publish, { log, retryBaseMs: 5, retryMaxMs: 10 });
  assert.doesNotThrow(() => relay.emit(ev("a")));
  await until(() => stored.length === 1);
  assert.deepEqual(stored, ["a"]);
  await relay.close(100);
});

test("failures: Redis unreachable or not taking writes is transient; a refusal of the event is not", () => {
  const err = (message: string, extra: object = {}) => Object.assign(new Error(message), extra);
  for (const e of [
    err("Stream isn't writeable and enableOfflineQueue options is false"),
    err("Connection is closed."),
    err("x", { name: "MaxRetriesPerRequestError" }),
    err("connect ECONNREFUSED 127.0.0.1:1", { code: "ECONNREFUSED" }),
    err("LOADING Redis is loading the dataset in memory"),
    err("OOM command not allowed when used memory > 'maxmemory'. script: abc"),
    new Error("wrapped", { cause: err("read ECONNRESET", { code: "ECONNRESET" }) }),
    // A Cluster in a failover (ioredis's words), and Sentinel without a primary yet.
    err("Too many Cluster redirections. Last error: Error: Connection is closed."),
    err("CLUSTERDOWN The cluster is down"),
    // A redirection ioredis could not follow inside an auto-pipelined batch (Pipeline.js).
    err("MOVED 14915 127.0.0.1:45515"),
    err("ASK 3999 127.0.0.1:6381"),
    err("Cluster isn't ready and enableOfflineQueue options is false"),
    err("Failed to refresh slots cache."),
    err("All sentinels are unreachable. Retrying from scratch after 10ms."),
  ]) {
    assert.equal(isTransient(e), true, e.message);
  }
  for (const e of [
    err("Custom Id cannot contain :"),
    err("WRONGTYPE Operation against a key holding the wrong kind of value script: abc"),
    new TypeError("Do not know how to serialize a BigInt"),
    err("ERR user_script:1: Script attempted to access nonexistent global variable"),
    err("CROSSSLOT Keys in request don't hash to the same slot"),
  ]) {
    assert.equal(isTransient(e), false, e.message);
  }
});
