import { createHash } from "node:crypto";
import { createRequire } from "node:module";

/**
 * Redis Cluster's key slot: CRC16 of the key's hash tag (ioredis's own dependency, which routes
 * every command by it). It ships no types, hence the require.
 */
const calculateSlot: (key: string) => number = createRequire(import.meta.url)("cluster-key-slot");

const SLOTS = 16_384;

/**
 * Shards: the delivery queues (lanes.ts) are spread over `redis.shards` hash tags, by endpoint. A
 * BullMQ queue and every key its scripts touch must hash to one slot, so each lane's keys carry
 * its shard's tag; on a Cluster a shard is then on one master.
 *
 * The tag of shard i of n is the first `d<k>` (k = 0, 1, …) whose slot falls in the i-th n-th of
 * the slot space. A cluster created by `redis-cli --cluster create` (and the managed services)
 * gives each master an equal run of slots, so with n = the number of masters each shard lands on
 * its own master, instead of wherever n arbitrary names happen to hash (three names hash onto three
 * distinct masters of three only 2 times in 9). On one Redis the tags change nothing.
 */
export function shardTag(i: number, n: number): string {
  const known = tags.get(`${i}/${n}`);
  if (known) return known;
  const lo = Math.floor((i * SLOTS) / n);
  const hi = Math.floor(((i + 1) * SLOTS) / n);
  for (let k = 0; ; k++) {
    const slot = calculateSlot(`d${k}`);
    if (slot >= lo && slot < hi) {
      tags.set(`${i}/${n}`, `d${k}`);
      return `d${k}`;
    }
  }
}
const tags = new Map<string, string>();

/**
 * Which shard each endpoint's lane is on: consistent hashing with bounded loads (Mirrokni, Thorup
 * and Zadimoghaddam, 2018). Endpoints are taken in the order of their names' hashes; each goes to
 * its preferred shard (`shardOf`) unless that shard already holds ⌈endpoints / n⌉ lanes, then to
 * the next one. So every shard gets its share of lanes (a dozen endpoints hashed freely over three
 * shards left one with none), and adding an endpoint or a shard moves few lanes, where dealing
 * them out in name order would move most. Every replica computes the same placement from the same
 * config; a lane that moves is drained into its new place (engine.ts), losing nothing.
 */
export function placeLanes(endpoints: readonly string[], n: number): Map<string, number> {
  const cap = Math.ceil(endpoints.length / n);
  const load = new Array<number>(n).fill(0);
  const placed = new Map<string, number>();
  const order = [...new Set(endpoints)].map((e) => ({ e, h: hashOf(e) })).sort((a, b) => (a.h < b.h ? -1 : a.h > b.h ? 1 : 0));
  for (const { e, h } of order) {
    let s = shardOf(h, n);
    while (load[s]! >= cap) s = (s + 1) % n;
    load[s]!++;
    placed.set(e, s);
  }
  return placed;
}

const hashOf = (endpoint: string) => createHash("sha256").update(endpoint).digest().readBigUInt64BE(0);

/**
 * An endpoint's preferred shard: a jump consistent hash of its name (Lamping and Veach, 2014), so
 * that growing n from 3 to 4 changes a quarter of the preferences, not three quarters as `mod n`
 * would. Written here: it is ten lines, and no maintained package offers it.
 */
export function shardOf(key: string | bigint, n: number): number {
  let k = typeof key === "bigint" ? key : hashOf(key);
  let b = -1;
  let j = 0;
  while (j < n) {
    b = j;
    k = (k * 2862933555777941757n + 1n) & 0xffff_ffff_ffff_ffffn;
    j = Math.floor((b + 1) * (2 ** 31 / (Number(k >> 33n) + 1)));
  }
  return b;
}

/** BullMQ's prefix for a lane on shard `shard` of `n`: the service's BullMQ prefix and the shard's hash tag. */
export const lanePrefix = (bullPrefix: string, shard: number, n: number) => `${bullPrefix}:{${shardTag(shard, n)}}`;

/** The slot a key hashes to (for the guide's figures and tests). */
export const slotOf = (key: string) => calculateSlot(key);
