import { endpointOfDelivery, eventKeyPart } from "./egress/ids.js";
import { inboundEndpointOfRun } from "./idempotency/keys.js";
import { keyPart } from "./util/key-part.js";

/**
 * Every key this service writes in Redis, in one place (BullMQ's `queue-keys.ts` style). Every
 * name starts with `redis.prefix`. Parts that come from outside (client IPs, ids, names) go
 * through `keyPart` / `eventKeyPart`, so no input can reach into another key's name.
 *
 * Redis Cluster refuses (CROSSSLOT) a script, MULTI or multi-key command whose keys lie in more
 * than one hash slot, and hashes only the part of a key inside its first `{…}` (the hash tag)
 * when there is one. So every group of keys used together carries one tag (column "tag"; "–"
 * for keys only ever used alone). Endpoint names are `[A-Za-z0-9][A-Za-z0-9._-]*` (no braces), and
 * the delivery record takes its endpoint's tag from the delivery id (egress/ids.ts
 * `endpointOfDelivery`), so everything of one endpoint is on one slot: finish-batch.lua and the log's
 * MULTIs touch one slot. test/key-slots.test.ts checks each group.
 *
 * | family                                    | tag              | type                       | TTL                                                                                      | written by |
 * |-------------------------------------------|------------------|----------------------------|------------------------------------------------------------------------------------------|------------|
 * | window:{route path|ip}                    | route path|ip    | hash (window index: count) | the window + 1 s                                                                         | limits/lua/acquire-batch.lua |
 * | inflight:{route path|ip}                  | route path|ip    | zset                       | leaseMs after the last acquire                                                           | limits/lua/acquire-batch.lua, release |
 * | authfail:{ip}                             | ip               | string                     | limits.authFailures.windowMs                                                             | limits/lua/auth-fail-1.lua |
 * | session:{hash}                            | hash             | string                     | 12 h (the session)                                                                       | admin/sessions.ts |
 * | idem:<use>:<n>:<scope>:<key>              | –                | string                     | lease (30 s) while running, then the window (24 h)                                       | idempotency/lua/* |
 * | inbound-run:{endpoint}:<runId>            | inbound endpoint | string                     | 24 h                                                                                     | inbound/runs.ts: a run id `inbound:<endpoint>:…` (kept as it is by keyPart) |
 * | inbound-run:{<runId>}                     | run id           | string                     | 24 h                                                                                     | inbound/runs.ts: any other run id (set alone) |
 * | inbound-runs:{endpoint}                   | inbound endpoint | list (≤ 50)                | 24 h                                                                                     | inbound/runs.ts |
 * | event:<id>                                | –                | string                     | webhooks.retention                                                                       | egress/scripts.ts storeEvent (SET NX; lua/store-each.lua for a turn's events on one Redis) |
 * | delivery:{endpoint}:<deliveryId>          | endpoint         | hash                       | webhooks.retention                                                                       | record-batch.lua, finish-batch.lua, log.ts markFailed |
 * | deliveries:{endpoint}:all                 | endpoint         | zset                       | none; entries past the retention trimmed every min(retention, 60 s) (engine.ts)          | record-batch.lua |
 * | deliveries:{endpoint}:<status>            | endpoint         | zset                       | none; trimmed as above                                                                   | record-batch.lua, finish-batch.lua, log.ts |
 * | endpoint:{name}:state                     | endpoint         | hash                       | none; one per configured endpoint (breaker, disabled marker; a removed endpoint's stays) | record-batch.lua (reads), probe-1.lua, finish-batch.lua, endpoint-health.ts |
 * | endpoint:{name}:stats:<minute>            | endpoint         | hash                       | 2 h                                                                                      | finish-batch.lua |
 * | replay:<deliveryId>                       | –                | string                     | 2 × the endpoint timeout + 60 s                                                          | egress/replay.ts |
 * | parked:{parked}:items, parked:{parked}:at | parked           | hash, zset                 | webhooks.retention (refreshed)                                                           | egress/lua/park-2.lua, parked.ts remove |
 * | bull:{<shard>}:deliveries.<endpoint>:*    | shard `d<k>`     | BullMQ's                   | one lane per endpoint (egress/lanes.ts, shard by egress/shards.ts); completed jobs ≤ min(1 h, retention) / 10,000, failed for the retention | BullMQ (queue prefix `bull:{<shard>}`) |
 * | bull:deliveries:*                         | –                | BullMQ's                   | the single queue before lanes: drained at startup, then empty                            | BullMQ |
 *
 * The layout before the tags (`endpoint:<name>:state`, `deliveries:<name>:*`, `delivery:<id>`,
 * `parked:items` / `parked:at`, `inbound-run:<runId>`, `inbound-runs:<endpoint>`) is moved to this
 * one by egress/migrate-layout.ts.
 */
export function createKeys(prefix: string) {
  return {
    limits: {
      /** `key` is the route's path and the client (`<path>|<ip>`): one tag per route and client, both keys on it. */
      window: (key: string) => `${prefix}window:{${key}}`,
      inflight: (key: string) => `${prefix}inflight:{${key}}`,
    },
    authFailures: (client: string) => `${prefix}authfail:{${keyPart(client)}}`,
    /** `hash` is already a digest of the session id (sessions.ts keeps no usable cookie in Redis). */
    session: (hash: string) => `${prefix}session:{${hash}}`,
    idempotency: (key: string) => `${prefix}idem:${key}`,
    inbound: {
      run: (runId: string) => inboundRunKey(prefix, keyPart(runId)),
      recent: (endpoint: string) => `${prefix}inbound-runs:{${keyPart(endpoint)}}`,
    },
    /** Event ids come from outside: the key holds them only when they are plain (egress/ids.ts). */
    event: (id: string) => `${prefix}event:${eventKeyPart(id)}`,
    delivery: {
      /** On the tag of the endpoint the id names; an id that names none (never written) gets `{}`, which is no tag. */
      record: (deliveryId: string) => `${prefix}delivery:{${endpointOfDelivery(deliveryId) ?? ""}}:${deliveryId}`,
      byEndpoint: (endpoint: string) => `${prefix}deliveries:{${endpoint}}:all`,
      byStatus: (endpoint: string, status: string) => `${prefix}deliveries:{${endpoint}}:${status}`,
    },
    endpoint: {
      state: (name: string) => `${prefix}endpoint:{${name}}:state`,
      stats: (name: string, minute: number) => `${prefix}endpoint:{${name}}:stats:${minute}`,
    },
    replay: (deliveryId: string) => `${prefix}replay:${deliveryId}`,
    parked: { items: `${prefix}parked:{parked}:items`, at: `${prefix}parked:{parked}:at` },
    /** BullMQ's own prefix: it names its keys `<this>:deliveries:…`. */
    bullPrefix: `${prefix}bull`,
  };
}

/**
 * A run's key from its id's key part (`keyPart(runId)`, what the layout before tags used): on its
 * inbound endpoint's tag when the part is a run id that names one (`inbound:<endpoint>:…`, what
 * inbound/routes.ts asks the Gateway for), so that the run and its endpoint's list are set in one
 * MULTI; otherwise (a run id the Gateway chose, or one too long or odd to be kept as it is) on a
 * tag of its own. Decided from the part alone, so the migration can move a key it only knows by name.
 */
export function inboundRunKey(prefix: string, part: string): string {
  const endpoint = inboundEndpointOfRun(part);
  return endpoint ? `${prefix}inbound-run:{${endpoint}}:${part}` : `${prefix}inbound-run:{${part}}`;
}

/** What Redis Cluster hashes of a key: the inside of its first `{…}` when that is not empty, else the whole key. */
export function hashTag(key: string): string {
  const open = key.indexOf("{");
  if (open === -1) return key;
  const close = key.indexOf("}", open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

export type RedisKeys = ReturnType<typeof createKeys>;
