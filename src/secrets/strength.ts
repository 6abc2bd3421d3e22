/**
 * The floor a secret the service verifies or signs with must clear (issue #16). Without it,
 * `whsec_` (or `whsec_` and anything that is not base64) decoded to an empty HMAC key, so anyone
 * could sign; and a one-letter token is no secret at all.
 *
 * - Where a secret is a Standard Webhooks key (endpoint signing secrets, the `standard-webhooks`
 *   inbound scheme), `whsec_…` is decoded: the rest must be canonical base64 (standard alphabet,
 *   padded to a multiple of 4, as Svix and the `standardwebhooks` libraries write it) of at least
 *   16 bytes. The spec asks for 24 to 64 bytes and Svix generates 24; 16 bytes (128 bits) is the
 *   floor we refuse below, so a key made with `openssl rand -base64 16` still loads.
 * - Anything else (route secrets, tokens, GitHub/Stripe/HMAC secrets, a plain signing secret used
 *   as UTF-8 bytes) must be at least 16 characters. There `whsec_` is not decoded (Stripe's
 *   `whsec_…` is used whole, as UTF-8), so only the length counts, and `whsec_` alone is 6.
 */
export const MIN_SECRET_CHARS = 16;
export const MIN_WHSEC_KEY_BYTES = 16;

const CANONICAL_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Why a secret value cannot be used, or undefined when it can. Never echoes the value. */
export function secretProblem(value: string, opts: { standardKey?: boolean } = {}): string | undefined {
  if (opts.standardKey && value.startsWith("whsec_")) {
    const b64 = value.slice(6);
    if (b64.length === 0) return "whsec_ with no key after it";
    if (!CANONICAL_BASE64.test(b64)) return "the part after whsec_ is not base64 (standard alphabet, padded to a multiple of 4 characters)";
    const bytes = Buffer.byteLength(b64, "base64");
    if (bytes < MIN_WHSEC_KEY_BYTES)
      return `the key after whsec_ is ${bytes} bytes; at least ${MIN_WHSEC_KEY_BYTES} are needed (Standard Webhooks asks for 24 to 64)`;
    return undefined;
  }
  if (value.length < MIN_SECRET_CHARS) return `too short to be a secret (${value.length} characters; at least ${MIN_SECRET_CHARS})`;
  return undefined;
}
