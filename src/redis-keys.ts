import { eventKeyPart } from "./egress/ids.js";
import { keyPart } from "./util/key-part.js";

/**
 * Every key this service writes in Redis, in one place (BullMQ's `queue-keys.ts` style). Every
 * name starts with `redis.prefix`. Parts that come from outside (client IPs, ids, names) go
 * through `keyPart` / `eventKeyPart`, so no input can reach into another key's name. `{…}` marks a
 * hash tag where a script touches a key with its partner.
 *
 * | family                          | type        | TTL                                   | written by |
 * |---------------------------------|-------------|---------------------------------------|------------|
 * | window:{route path|ip}:<index>  | string      | the window + 1 s                      | limits/lua/acquire-batch.lua |
 * | inflight:{route path|ip}        | zset        | leaseMs after the last acquire        | limits/lua/acquire-batch.lua, release |
 * | authfail:{ip}                   | string      | limits.authFailures.windowMs          | limits/lua/auth-fail-1.lua |
 * | session:{hash}                  | string      | 12 h (the session)                    | admin/sessions.ts |
 * | idem:<scope>:<route>:<key>      | string      | lease (30 s) while running, then the window (24 h) | idempotency/lua/* |
 * | inbound-run:<runId>             | string      | 24 h                                  | inbound/runs.ts |
 * | inbound-runs:<endpoint>         | list (≤ 50) | 24 h                                  | inbound/runs.ts |
 * | event:<id>                      | string      | webhooks.retention                    | egress/lua/publish.lua |
 * | delivery:<deliveryId>           | hash        | webhooks.retention                    | publish.lua, finish-5.lua, log.ts markFailed |
 * | deliveries:<endpoint>:all       | zset        | none; entries past the retention trimmed every min(retention, 60 s) (engine.ts) | publish.lua |
 * | deliveries:<endpoint>:<status>  | zset        | none; trimmed as above                | publish.lua, finish-5.lua, log.ts |
 * | endpoint:<name>:state           | hash        | none; one per configured endpoint (breaker, disabled marker; a removed endpoint's stays) | probe-1.lua, finish-5.lua, endpoint-health.ts |
 * | endpoint:<name>:stats:<minute>  | hash        | 2 h                                   | finish-5.lua |
 * | replay:<deliveryId>             | string      | 2 × the endpoint timeout + 60 s       | egress/replay.ts |
 * | parked:items, parked:at         | hash, zset  | webhooks.retention (refreshed)        | egress/lua/park-2.lua |
 * | bull:deliveries.<endpoint>:*    | BullMQ's    | one lane per endpoint (egress/lanes.ts); completed jobs ≤ min(1 h, retention) / 10,000, failed for the retention | BullMQ (queue prefix `bull`) |
 * | bull:deliveries:*               | BullMQ's    | the single queue before lanes: drained at startup, then empty | BullMQ |
 */
export function createKeys(prefix: string) {
  return {
    limits: {
      /** The script appends `:<window index>`. */
      window: (tag: string) => `${prefix}window:${tag}`,
      inflight: (tag: string) => `${prefix}inflight:${tag}`,
    },
    authFailures: (client: string) => `${prefix}authfail:{${keyPart(client)}}`,
    /** `hash` is already a digest of the session id (sessions.ts keeps no usable cookie in Redis). */
    session: (hash: string) => `${prefix}session:{${hash}}`,
    idempotency: (key: string) => `${prefix}idem:${key}`,
    inbound: {
      run: (runId: string) => `${prefix}inbound-run:${keyPart(runId)}`,
      recent: (endpoint: string) => `${prefix}inbound-runs:${keyPart(endpoint)}`,
    },
    /** Event ids come from outside: the key holds them only when they are plain (egress/ids.ts). */
    event: (id: string) => `${prefix}event:${eventKeyPart(id)}`,
    delivery: {
      record: (deliveryId: string) => `${prefix}delivery:${deliveryId}`,
      byEndpoint: (endpoint: string) => `${prefix}deliveries:${endpoint}:all`,
      byStatus: (endpoint: string, status: string) => `${prefix}deliveries:${endpoint}:${status}`,
    },
    endpoint: {
      state: (name: string) => `${prefix}endpoint:${name}:state`,
      stats: (name: string, minute: number) => `${prefix}endpoint:${name}:stats:${minute}`,
    },
    replay: (deliveryId: string) => `${prefix}replay:${deliveryId}`,
    parked: { items: `${prefix}parked:items`, at: `${prefix}parked:at` },
    /** BullMQ's own prefix: it names its keys `<this>:deliveries:…`. */
    bullPrefix: `${prefix}bull`,
  };
}

export type RedisKeys = ReturnType<typeof createKeys>;
