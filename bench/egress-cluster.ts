/**
 * `npm run bench:cluster`: how the deliveries' Redis work divides over a Redis Cluster's masters.
 *
 * A real cluster on loopback (three masters, each with a replica: test/support/redis-cluster.ts),
 * the egress on it with `redis.shards: 3`, and BENCH_ENDPOINTS endpoints (12) on a loopback
 * receiver, each event going to one endpoint in turn. While BENCH_EVENTS events (6,000) are
 * published (50 in flight) and delivered, each master's `total_commands_processed` is sampled; the
 * table prints each master's commands per second, its share, and which endpoints' lanes and keys
 * it holds. Target (issue #19): no master carries more than half.
 *
 * An endpoint's lane is on its shard's master (shards.ts), its breaker, records and indexes on its
 * own name's slot (redis-keys.ts), each event on its id's slot: with a handful of endpoints the
 * split follows where their names hash, so this runs a dozen.
 */
import type { AddressInfo } from "node:net";
import { configFrom } from "../src/config/load.js";
import { createEgress } from "../src/egress/engine.js";
import { placeLanes, shardTag, slotOf } from "../src/egress/shards.js";
import { createLogger } from "../src/log.js";
import { createRedisConnector, openEgressConnections } from "../src/redis.js";
import { createSecretResolver } from "../src/secrets/resolve.js";
import { ask, parseInfo } from "../test/support/redis-node.js";
import { startRedisCluster } from "../test/support/redis-cluster.js";
import { createMiniHttpServer } from "./mini-http.js";

const N = Number(process.env.BENCH_EVENTS ?? 6_000);
const E = Number(process.env.BENCH_ENDPOINTS ?? 12);
const SHARDS = 3;
const INFLIGHT = 50;

const cluster = await startRedisCluster();
let received = 0;
let onReceived: (() => void) | undefined;
const rx = createMiniHttpServer((_head, sock) => {
  received++;
  sock.write("HTTP/1.1 204 No Content\r\nconnection: keep-alive\r\n\r\n");
  onReceived?.();
});
await new Promise<void>((r) => rx.listen(0, "127.0.0.1", r));
const port = (rx.address() as AddressInfo).port;

try {
  const names = Array.from({ length: E }, (_, i) => `endpoint-${i}`);
  const config = configFrom({
    redis: { cluster: { nodes: cluster.urls }, prefix: "bench:", shards: SHARDS },
    webhooks: {
      allowPrivateCidrs: ["127.0.0.0/8"],
      endpoints: names.map((name) => ({
        name,
        url: `http://127.0.0.1:${port}/${name}`,
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        events: [`bench.${name}`],
        concurrency: 50,
      })),
    },
  });
  const secrets = createSecretResolver({ providers: {} });
  const egress = await createEgress({
    config,
    secrets,
    log: createLogger({ level: "silent" }),
    connections: await openEgressConnections((await createRedisConnector(config.redis, secrets))!),
  });
  await egress.startWorker();

  const masters = await cluster.masters();
  const masterOfSlot = async (slot: number) => (await cluster.masterOf(slot)).port;
  const holds = new Map<number, { lanes: string[]; keys: string[] }>(masters.map((m) => [m.port, { lanes: [], keys: [] }]));
  const placed = placeLanes(names, SHARDS);
  for (const n of names) {
    holds.get(await masterOfSlot(slotOf(`{${shardTag(placed.get(n)!, SHARDS)}}`)))!.lanes.push(n.replace("endpoint-", "e"));
    holds.get(await masterOfSlot(slotOf(`{${n}}`)))!.keys.push(n.replace("endpoint-", "e"));
  }
  const commands = async () =>
    new Map(await Promise.all(masters.map(async (m) => [m.port, Number(parseInfo(await ask(m.port, ["INFO", "stats"])).total_commands_processed)] as const)));

  const before = await commands();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: INFLIGHT }, async () => {
      while (next < N) {
        const i = next++;
        await egress.publish({ type: `bench.${names[i % E]}`, data: { i } });
      }
    }),
  );
  await new Promise<void>((resolve) => {
    const end = Date.now() + 120_000;
    onReceived = () => (received >= N || Date.now() > end) && resolve();
    onReceived();
    setTimeout(resolve, 120_000).unref();
  });
  const seconds = (performance.now() - t0) / 1000;
  const after = await commands();
  await egress.close();

  const total = [...after].reduce((s, [p, c]) => s + c - before.get(p)!, 0);
  console.log(`\n${received}/${N} delivered to ${E} endpoints over ${SHARDS} shards in ${seconds.toFixed(1)} s (${(received / seconds).toFixed(0)}/s)\n`);
  console.log("master  commands/s  share  lanes of                      keys of");
  let worst = 0;
  for (const m of masters) {
    const n = after.get(m.port)! - before.get(m.port)!;
    worst = Math.max(worst, n / total);
    const h = holds.get(m.port)!;
    console.log(
      `${String(m.port).padEnd(7)} ${(n / seconds).toFixed(0).padStart(10)}  ${((100 * n) / total).toFixed(0).padStart(4)}%  ${h.lanes.join(",").padEnd(29)} ${h.keys.join(",")}`,
    );
  }
  console.log(`\nbusiest master: ${(100 * worst).toFixed(0)}% of the commands (target: at most 50%)`);
  if (received < N) throw new Error(`only ${received} of ${N} delivered`);
  process.exitCode = worst <= 0.5 ? 0 : 1;
} finally {
  rx.close();
  await cluster.dispose();
}
