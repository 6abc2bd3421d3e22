import { createHash } from "node:crypto";
import { keyPart } from "../util/key-part.js";

/** Where a key comes from: a TaskFlow route's `Idempotency-Key`, or an inbound endpoint's delivery id. */
export type IdempotencyUse = "taskflow" | "inbound";

/**
 * The store's key for one (use, scope, key): `<use>:<n>:<scope part>:<key part>`, where the parts
 * are `keyPart`s (plain ids as they are, anything else hashed) and `n` is the scope part's length.
 * The length makes the split unambiguous: route `a` with key `b:K` is `taskflow:1:a:b:K`, route
 * `a:b` with key `K` is `taskflow:3:a:b:K`. (Joining the two with `:` alone made them one key.)
 */
export function idempotencyKey(use: IdempotencyUse, scope: string, key: string): string {
  const s = keyPart(scope, 128);
  return `${use}:${s.length}:${s}:${keyPart(key, 512)}`;
}

/**
 * The `idempotencyKey` an inbound endpoint's run is started with (the Gateway makes it the run id
 * and answers a repeat with the run it already has): `inbound:<endpoint>:<delivery id>` when that is
 * printable ASCII of at most 200 characters (the Gateway takes at most 256), otherwise `inbound:`
 * and a SHA-256. Endpoint names have no `:`, so the readable form has two colons at least and the
 * hashed form exactly one: two deliveries never share a key.
 */
export function inboundGatewayKey(endpoint: string, deliveryId: string): string {
  const s = `inbound:${endpoint}:${deliveryId}`;
  return s.length <= 200 && /^[\x20-\x7e]+$/.test(s) ? s : `inbound:${createHash("sha256").update(JSON.stringify(s)).digest("hex")}`;
}

/**
 * The inbound endpoint a run id names, `inbound:<endpoint>:…` (inboundGatewayKey's readable form,
 * and routes.ts's key for a delivery without an id, which the Gateway makes the run id), or
 * undefined for any other id: the hashed form and run ids the Gateway chose itself.
 */
export function inboundEndpointOfRun(runId: string): string | undefined {
  return /^inbound:([A-Za-z0-9][A-Za-z0-9._-]{0,63}):/.exec(runId)?.[1];
}
