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
 * The shard of an endpoint: a jump consistent hash of its name (Lamping and Veach, 2014), so that
 * growing n from 3 to 4 moves a quarter of the endpoints' lanes, not three quarters as `mod n`
 * would, and adding or removing an endpoint moves no other. Written here: it is ten lines, and no
 * maintained package offers it for strings.
 */
export function shardOf(endpoint: string, n: number): number {
  let key = createHash("sha256").update(endpoint).digest().readBigUInt64BE(0);
  let b = -1;
  let j = 0;
  while (j < n) {
    b = j;
    key = (key * 2862933555777941757n + 1n) & 0xffff_ffff_ffff_ffffn;
    j = Math.floor((b + 1) * (2 ** 31 / (Number(key >> 33n) + 1)));
  }
  return b;
}

/** BullMQ's prefix for an endpoint's lane: the service's BullMQ prefix and the shard's hash tag. */
export const lanePrefix = (bullPrefix: string, endpoint: string, shards: number) => `${bullPrefix}:{${shardTag(shardOf(endpoint, shards), shards)}}`;

/** The slot a key hashes to (for the guide's figures and tests). */
export const slotOf = (key: string) => calculateSlot(key);
