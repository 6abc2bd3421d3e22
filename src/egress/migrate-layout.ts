import { readFileSync } from "node:fs";
import { Cluster } from "ioredis";
import { scanKeys, type RedisClient } from "../redis.js";
import { createKeys, inboundRunKey } from "../redis-keys.js";
import { keyPart } from "../util/key-part.js";
import { endpointOfDelivery } from "./ids.js";
import { RECENT_RUNS_PER_ENDPOINT } from "../inbound/runs.js";
import { minuteOf, STATS_WINDOW_MINUTES } from "./stats.js";

type How = "keep" | "zset" | "counters" | "fields" | "disabled" | "list";
type Commands = { ocwhMigrateKey(from: string, to: string, how: How, max: number): Promise<0 | 1 | 2> };

/** What a migration did: keys renamed, and keys merged into a new one the service had already written. */
export type MigrationReport = { moved: number; merged: number };

const PAGE = 500;

/**
 * Moves the keys of the layout before hash tags (redis-keys.ts) to their names now, on a single
 * Redis (a Cluster never held the old layout: its scripts would have been refused; on one this
 * does nothing). Run it at startup before the egress starts: it is a few EXISTS when nothing old
 * is left, each key moves in one step (lua/migrate-2.lua: RENAMENX, or a merge when the new name
 * exists too), so replicas starting together and a run stopped half way are both fine. Old keys
 * that some not yet upgraded replica writes meanwhile move at a later start.
 *
 * Per configured endpoint: each delivery record the old `deliveries:<name>:all` index lists, then
 * the four indexes (the `all` index last: while it is there, the records are looked for again),
 * the state hash (breaker; a `disabled` marker is kept in a merge) and the stats buckets of the
 * last hour. Then the parked entries. Then, when an inbound endpoint still has its old list of
 * recent runs, every old run key (a SCAN: runs past the list's newest 50 may still be running),
 * and the lists last. Families of seconds (windows, leases) and those whose names did not change
 * are left alone.
 *
 * @param endpointNames the configured outgoing endpoints (`webhooks.endpoints[].name`)
 * @param inboundEndpointNames the configured inbound endpoints (`webhooks.inbound.endpoints`' names)
 */
export async function migrateKeyLayout(
  redis: RedisClient,
  prefix: string,
  endpointNames: readonly string[],
  inboundEndpointNames: readonly string[] = [],
): Promise<MigrationReport> {
  const report: MigrationReport = { moved: 0, merged: 0 };
  if (redis instanceof Cluster) return report;
  if (!("ocwhMigrateKey" in redis)) {
    redis.defineCommand("ocwhMigrateKey", { numberOfKeys: 2, lua: readFileSync(new URL("./lua/migrate-2.lua", import.meta.url), "utf8") });
  }
  const r = redis as unknown as Commands;
  const keys = createKeys(prefix);
  const move = async (from: string, to: string, how: How) => {
    const n = await r.ocwhMigrateKey(from, to, how, RECENT_RUNS_PER_ENDPOINT);
    if (n === 1) report.moved++;
    else if (n === 2) report.merged++;
    return n;
  };

  for (const name of endpointNames) {
    const old = {
      index: (status: string) => `${prefix}deliveries:${name}:${status}`,
      state: `${prefix}endpoint:${name}:state`,
      stats: (minute: number) => `${prefix}endpoint:${name}:stats:${minute}`,
    };
    const statuses = ["pending", "delivered", "failed"] as const;
    const found = await Promise.all([old.index("all"), ...statuses.map(old.index), old.state].map((k) => redis.exists(k)));
    if (!found.some((n) => n === 1)) continue;
    if (found[0]) {
      let cursor = "0";
      do {
        const [next, page] = await redis.zscan(old.index("all"), cursor, "COUNT", PAGE);
        cursor = next;
        const ids = page.filter((id, i) => i % 2 === 0 && endpointOfDelivery(id) === name);
        await Promise.all(ids.map((id) => move(`${prefix}delivery:${id}`, keys.delivery.record(id), "keep")));
      } while (cursor !== "0");
    }
    // A status index can outlive `all` (trimmed by last update, not by publish time): moved either way.
    for (const status of statuses) await move(old.index(status), keys.delivery.byStatus(name, status), "zset");
    await move(old.index("all"), keys.delivery.byEndpoint(name), "zset");
    await move(old.state, keys.endpoint.state(name), "disabled");
    // Buckets older than the window are never read again: they are left to expire.
    const now = minuteOf(Date.now());
    const minutes = Array.from({ length: STATS_WINDOW_MINUTES + 2 }, (_, i) => now + 1 - i);
    await Promise.all(minutes.map((m) => move(old.stats(m), keys.endpoint.stats(name, m), "counters")));
  }

  await move(`${prefix}parked:items`, keys.parked.items, "fields");
  await move(`${prefix}parked:at`, keys.parked.at, "zset");

  const oldLists = inboundEndpointNames.map((e) => ({ from: `${prefix}inbound-runs:${keyPart(e)}`, to: keys.inbound.recent(e) }));
  const listed = await Promise.all(oldLists.map((l) => redis.exists(l.from)));
  if (listed.some((n) => n === 1)) {
    // Old run keys are `inbound-run:<key part>`; new ones have a `{` right after the family.
    const family = `${prefix}inbound-run:`;
    const found = await scanKeys(redis, `${globEscape(family)}[^{]*`);
    for (let i = 0; i < found.length; i += PAGE) {
      await Promise.all(found.slice(i, i + PAGE).map((key) => move(key, inboundRunKey(prefix, key.slice(family.length)), "keep")));
    }
    for (const l of oldLists) await move(l.from, l.to, "list");
  }
  return report;
}

/** A literal for a SCAN MATCH pattern. */
const globEscape = (s: string) => s.replace(/[*?[\]\\]/g, "\\$&");
