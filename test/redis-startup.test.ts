import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { configFrom } from "../src/config/load.js";
import { closeDeps, createDeps } from "../src/deps.js";
import { createLogger } from "../src/log.js";
import { ask } from "./support/redis-node.js";
import { startRedisCluster, type TestRedisCluster } from "./support/redis-cluster.js";
import { startRedisSentinel, type TestRedisSentinel } from "./support/redis-sentinel.js";
import { startRedis, type TestRedis } from "./support/redis.js";

/**
 * Issue #19: the configured Redis engine is checked at startup. A config that names the wrong
 * engine, or a server that may evict keys, stops the service with an error naming the config key,
 * instead of a service that fails its first script (CROSSSLOT, MOVED) or loses queued deliveries
 * under memory pressure. Passwords come as SecretRefs.
 */
const log = createLogger({ level: "silent" });
const start = async (redis: Record<string, unknown>, env: Record<string, string> = {}) => {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    const deps = await createDeps(configFrom({ log: { level: "silent" }, redis: { prefix: "startup:", ...redis } as never }), { log });
    await closeDeps(deps);
    return "started";
  } finally {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  }
};

let single: TestRedis;
let cluster: TestRedisCluster;
let sentinel: TestRedisSentinel;
before(async () => {
  [single, cluster, sentinel] = await Promise.all([startRedis(), startRedisCluster(), startRedisSentinel()]);
});
after(async () => {
  await Promise.all([single?.dispose(), cluster?.dispose(), sentinel?.dispose()]);
});

describe("the Redis engine is the one the config names", () => {
  test("each engine starts with its own config", async () => {
    assert.equal(await start({ url: single.url }), "started");
    assert.equal(await start({ cluster: { nodes: cluster.urls.slice(0, 1) } }), "started", "one node is enough to find the rest");
    assert.equal(await start({ sentinel: { sentinels: sentinel.sentinels, name: sentinel.name } }), "started");
  });

  test("a Cluster node behind redis.url is refused, naming the key and the fix", async () => {
    await assert.rejects(start({ url: cluster.urls[0]! }), {
      name: "StartupError",
      message: /^redis\.url: this Redis is a Cluster node.*redis\.cluster\.nodes/,
    });
  });

  test("a sentinel behind redis.url is refused", async () => {
    await assert.rejects(start({ url: `redis://${sentinel.sentinels[0]}` }), {
      name: "StartupError",
      message: /^redis\.url: this is a Redis sentinel.*redis\.sentinel/,
    });
  });

  test("a plain Redis under redis.cluster.nodes is refused", async () => {
    await assert.rejects(start({ cluster: { nodes: [single.url] } }), {
      name: "StartupError",
      message: /^redis\.cluster\.nodes: 127\.0\.0\.1:\d+ is not a Cluster node \(redis_mode:standalone\)/,
    });
  });

  test("a wrong master name under redis.sentinel is refused, naming the key", async () => {
    await assert.rejects(start({ sentinel: { sentinels: sentinel.sentinels, name: "nosuchmaster" } }), {
      name: "StartupError",
      message: /^redis\.sentinel\.sentinels: /,
    });
  });

  test("config: at most one of url, cluster and sentinel", () => {
    assert.throws(
      () => configFrom({ redis: { url: single.url, cluster: { nodes: cluster.urls } } as never }),
      /redis\.url: give one of url, cluster and sentinel/,
    );
    assert.throws(() => configFrom({ redis: { cluster: { nodes: ["127.0.0.1:7000"] } } as never }), /redis\.cluster\.nodes\.0: must be redis:\/\/host:port/);
    assert.throws(() => configFrom({ redis: { url: single.url, prefix: "{x}:" } as never }), /redis\.prefix: must not contain \{ or \}/);
  });
});

describe("maxmemory-policy is checked on every server", () => {
  test("allkeys-* on one Cluster replica is refused, naming the key and the server", async () => {
    const masters = new Set((await cluster.masters()).map((m) => m.port));
    const replica = cluster.nodes.find((n) => !masters.has(n.port))!;
    await ask(replica.port, ["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    try {
      await assert.rejects(start({ cluster: { nodes: cluster.urls.slice(0, 1) } }), {
        name: "StartupError",
        message: new RegExp(`^redis\\.cluster\\.nodes: 127\\.0\\.0\\.1:${replica.port} has maxmemory-policy allkeys-lru; it must be noeviction`),
      });
    } finally {
      await ask(replica.port, ["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    }
  });

  test("allkeys-* on the Sentinel replica is refused: it becomes the primary in a failover", async () => {
    const master = await sentinel.master();
    const replica = sentinel.servers.find((s) => `127.0.0.1:${s.port}` !== master)!;
    await ask(replica.port, ["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]);
    try {
      await assert.rejects(start({ sentinel: { sentinels: sentinel.sentinels, name: sentinel.name } }), {
        name: "StartupError",
        message: new RegExp(`^redis\\.sentinel\\.sentinels: 127\\.0\\.0\\.1:${replica.port} \\(replica\\) has maxmemory-policy allkeys-random`),
      });
    } finally {
      await ask(replica.port, ["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    }
  });
});

describe("passwords as SecretRefs", () => {
  test("redis.sentinel.password from the environment opens a primary that requires it; a wrong one is refused at startup", async () => {
    const password = "redis-pw-0123456789abcdef";
    for (const s of sentinel.servers) {
      await ask(s.port, ["CONFIG", "SET", "masterauth", password]);
      await ask(s.port, ["CONFIG", "SET", "requirepass", password]);
    }
    for (const addr of sentinel.sentinels) await ask(Number(addr.split(":")[1]), ["SENTINEL", "SET", sentinel.name, "auth-pass", password]);
    const ref = { source: "env", provider: "default", id: "OCWH_TEST_REDIS_PASSWORD" };
    const cfg = { sentinel: { sentinels: sentinel.sentinels, name: sentinel.name, password: ref } };
    assert.equal(await start(cfg, { OCWH_TEST_REDIS_PASSWORD: password }), "started");
    await assert.rejects(start(cfg, { OCWH_TEST_REDIS_PASSWORD: "not-the-password-123456" }), {
      name: "StartupError",
      message: /^redis\.sentinel\.sentinels: /,
    });
    await assert.rejects(start(cfg), { name: "StartupError", message: /^redis\.sentinel\.password: the secret did not resolve/ });
  });
});
