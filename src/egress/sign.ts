import { createHmac, createSecretKey, type KeyObject } from "node:crypto";
import { LRUCache } from "lru-cache";

/**
 * Outgoing signatures (docs/outgoing-webhooks.md, Delivery). Every delivery carries both schemes:
 * - the X-OpenClaw-Signature scheme: `X-OpenClaw-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` and
 *   `X-OpenClaw-Timestamp: <unix seconds>`, the key being the secret string's UTF-8 bytes, exactly
 *   what a receiver's `verifyWebhook(payload, signature, timestamp, secret)` computes;
 * - Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256
 *   (key, "<id>.<timestamp>.<body>")>`, one `v1,` entry per active secret (rotation). A `whsec_`
 *   secret's key is its base64 part, as the spec says; any other secret's key is its UTF-8 bytes
 *   (a receiver uses `new Webhook(Buffer.from(secret, "utf8"), { format: "raw" })`, or the
 *   `whsec_` + base64 of those bytes).
 * - `legacy-body` (opt-in per endpoint): `X-OpenClaw-Signature: sha256=<hex HMAC(secret, body)>`.
 */
export type SigningScheme = "openclaw" | "standard" | "legacy-body";

export const DEFAULT_SCHEMES: readonly SigningScheme[] = ["openclaw", "standard"];

/** The HMAC key of a secret for the Standard Webhooks scheme. */
export function standardKey(secret: string): Buffer {
  return secret.startsWith("whsec_") ? Buffer.from(secret.slice(6), "base64") : Buffer.from(secret, "utf8");
}

/**
 * Key objects by secret: createHmac with a raw key builds a KeyObject on every call, which showed
 * up as ~4% of a delivery's CPU. Bounded: the 256 most recently used secrets (rotation only
 * ever adds a few).
 */
const keyCache = new LRUCache<string, KeyObject>({ max: 256 });
function keyOf(kind: "s" | "u", secret: string): KeyObject {
  const id = kind + secret;
  let k = keyCache.get(id);
  if (!k) {
    const raw = kind === "s" ? standardKey(secret) : Buffer.from(secret, "utf8");
    // Config and the resolver refuse such secrets (secrets/strength.ts); never sign with no key.
    if (raw.length === 0) throw new Error("empty signing key");
    k = createSecretKey(raw);
    keyCache.set(id, k);
  }
  return k;
}

const hmac = (key: KeyObject, data: string | Buffer) => createHmac("sha256", key).update(data);

export type SignInput = {
  /** The delivery id: stable across attempts, the receiver's dedupe key. */
  id: string;
  /** Unix seconds of this attempt. */
  timestamp: number;
  body: string;
  /** Active secrets, newest first; the first one signs the X-OpenClaw-Signature header. */
  secrets: readonly string[];
  schemes?: readonly SigningScheme[];
};

export function signatureHeaders(input: SignInput): Record<string, string> {
  const schemes = input.schemes ?? DEFAULT_SCHEMES;
  const ts = String(input.timestamp);
  const headers: Record<string, string> = {};
  const primary = input.secrets[0];
  if (primary === undefined) throw new Error("no signing secret");
  if (schemes.includes("openclaw")) {
    headers["x-openclaw-signature"] = `sha256=${hmac(keyOf("u", primary), `${ts}.${input.body}`).digest("hex")}`;
    headers["x-openclaw-timestamp"] = ts;
  } else if (schemes.includes("legacy-body")) {
    headers["x-openclaw-signature"] = `sha256=${hmac(keyOf("u", primary), input.body).digest("hex")}`;
  }
  if (schemes.includes("standard")) {
    const signed = `${input.id}.${ts}.${input.body}`;
    headers["webhook-id"] = input.id;
    headers["webhook-timestamp"] = ts;
    headers["webhook-signature"] = input.secrets.map((s) => `v1,${hmac(keyOf("s", s), signed).digest("base64")}`).join(" ");
  }
  return headers;
}
