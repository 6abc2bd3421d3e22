import { digestOf, keyPart } from "../util/key-part.js";

/**
 * Ids that reach BullMQ, Redis keys and the `webhook-id` header. Event ids come from the Gateway,
 * publishers and inbound senders and may hold anything; none of them is used raw.
 */

/** An event id that can appear as it is inside a delivery id (no `:`, which BullMQ refuses in a job id). */
const READABLE_EVENT = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * One delivery per (event, endpoint): the BullMQ job id, the delivery log's key and the
 * `webhook-id` receivers dedupe on, so it is computed from the two alone (the same on every
 * attempt, replay and replica). Readable, `dlv_<event>_<endpoint>`, when the event id is short and
 * plain and the endpoint name has no `_` (endpoint names may: `a_b`+`c` and `a`+`b_c` must not
 * meet); otherwise `dlvh_<128-bit hash of both>_<endpoint>`. The two forms differ at the fourth
 * character, and only printable ASCII without `:` appears in either.
 */
export function deliveryId(eventId: string, endpoint: string): string {
  if (READABLE_EVENT.test(eventId) && !endpoint.includes("_")) return `dlv_${eventId}_${endpoint}`;
  return `dlvh_${digestOf(eventId, endpoint)}_${endpoint}`;
}

/** An endpoint's name (config/endpoints.ts): what a delivery id ends with. */
const ENDPOINT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * The endpoint a delivery id names (its Redis keys share that endpoint's hash tag: redis-keys.ts),
 * or undefined when the id is not of either form. `dlvh_<hash>_<endpoint>`: the hash has no `_`,
 * the endpoint may, so it is everything after the second `_`. `dlv_<event>_<endpoint>`: the event
 * may hold `_`, the endpoint does not, so it is everything after the last.
 */
export function endpointOfDelivery(id: string): string | undefined {
  let name: string | undefined;
  if (id.startsWith("dlvh_")) {
    const end = id.indexOf("_", 5);
    if (end > 5) name = id.slice(end + 1);
  } else if (id.startsWith("dlv_")) {
    const end = id.lastIndexOf("_");
    if (end > 4) name = id.slice(end + 1);
  }
  return name !== undefined && ENDPOINT_NAME.test(name) ? name : undefined;
}

/** Whether a string (an admin's path parameter) can be a delivery id: anything else is looked up nowhere. */
export const isDeliveryId = (s: string) => s.length <= 300 && /^dlvh?_[A-Za-z0-9._-]+$/.test(s) && endpointOfDelivery(s) !== undefined;

/** The event's Redis key part (see keyPart): plain ids unchanged, others hashed. */
export const eventKeyPart = (eventId: string) => keyPart(eventId);

/** A parked event's id in the admin API and CLI: from the event id, so parking it twice keeps one entry. */
export const parkedId = (eventId: string) => `pk_${keyPart(eventId)}`;
export const isParkedId = (s: string) => s.length <= 200 && /^pk_[A-Za-z0-9._:~-]+$/.test(s);

export const MAX_EVENT_ID_CHARS = 256;

/**
 * Why `POST /v1/events` cannot take an id (after trimming), or undefined when it can. Accepted:
 * 1 to 256 characters (code points) of any Unicode except control characters (C0, DEL, C1) and
 * unpaired surrogates. `:`, `/`, spaces and emoji are fine: ids are hashed where they must be.
 * Gateway ids never pass through here; whatever the Gateway sends is delivered.
 */
export function eventIdProblem(id: string): string | undefined {
  if (id.length === 0) return "must not be empty";
  let n = 0;
  for (const ch of id) {
    if (++n > MAX_EVENT_ID_CHARS) return `must be at most ${MAX_EVENT_ID_CHARS} characters`;
    const c = ch.codePointAt(0)!;
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return `must not contain control characters (U+${c.toString(16).toUpperCase().padStart(4, "0")})`;
    // Iterating by code point, a surrogate on its own is one that has no partner.
    if (c >= 0xd800 && c <= 0xdfff) return "must be well-formed Unicode (it has an unpaired surrogate)";
  }
  return undefined;
}
