/**
 * What an attempt record keeps of the HTTP exchange, so the dashboard can explain a failure
 * without the log becoming a copy of the traffic: the request headers with every credential
 * masked, the response headers cut to a fixed budget, and the error class from a closed set.
 * Each attempt is a field of the delivery's hash for the retention, so every part is bounded:
 * an attempt stays under ~6 KB (1 KiB body, 2 KiB of headers each way, the rest small).
 */

/**
 * Why an attempt failed, from a closed set (the dashboard and the CLI show it as is):
 * - `dns`: the name did not resolve (ENOTFOUND, EAI_AGAIN, …);
 * - `connect`: no connection, or it broke before an answer (refused, reset, unreachable, a URL that
 *   cannot be requested);
 * - `tls`: the TLS handshake or the certificate failed;
 * - `timeout`: no answer within the endpoint's `timeoutMs` (connecting, headers or body);
 * - `http_status`: the receiver answered, but not 2xx (3xx is not followed; `status` says which);
 * - `ssrf_blocked`: the SSRF guard refused the address (literal or resolved); nothing was sent.
 */
export const ERROR_CLASSES = ["dns", "connect", "tls", "timeout", "http_status", "ssrf_blocked"] as const;
export type ErrorClass = (typeof ERROR_CLASSES)[number];

/** Classes written before the closed set (records kept for the retention across an upgrade). */
const LEGACY: Record<string, ErrorClass> = { blocked_ip: "ssrf_blocked", redirect: "http_status", http_4xx: "http_status", http_5xx: "http_status" };
export const normaliseErrorClass = (c: string | undefined): string | undefined => (c === undefined ? undefined : (LEGACY[c] ?? c));

/** The first KiB of the answer is what a person reads to see why; more is the receiver's log's job. */
export const RESPONSE_BODY_KEPT = 1024;
const HEADERS_BUDGET = 2048;
const HEADERS_MAX = 32;
const VALUE_MAX = 256;
export const MASK = "…(masked)";

/** Names whose values are credentials: Authorization, cookies, anything with token, key, secret, password or signature in it. */
const SECRET_NAME = /authorization|cookie|token|key|secret|passw|credential|signature|session/i;

/** Signature schemes and auth schemes whose name says how to read the value, and nothing of it. */
const SIG_SCHEME = /^(v\d+a?|sha1|sha256|sha512)([,=])/i;
const AUTH_SCHEME = /^(bearer|basic|token|digest|hmac|apikey|negotiate)$/i;

/**
 * A credential's value with only a known scheme left: `v1,…(masked)` per Standard Webhooks entry,
 * `sha256=…(masked)`, `Bearer …(masked)`; anything else is `…(masked)` whole. Nothing of the
 * secret part is kept, not even its length.
 */
export function maskValue(value: string): string {
  const parts = value.split(" ").filter((p) => p !== "");
  const out: string[] = [];
  parts.forEach((part, i) => {
    const sig = SIG_SCHEME.exec(part);
    const masked = sig ? `${sig[1]}${sig[2]}${MASK}` : i === 0 && parts.length > 1 && AUTH_SCHEME.test(part) ? part : MASK;
    if (masked !== MASK || out.at(-1) !== MASK) out.push(masked); // one mask, not one per word
  });
  return out.length ? out.join(" ") : MASK;
}

/**
 * The headers of a request as logged: credential-looking names masked, and any value the endpoint
 * reads from the environment (`${VAR}`, how secrets reach headers) masked whatever its name.
 */
export function maskRequestHeaders(sent: Record<string, string>, fromEnv: ReadonlySet<string> = new Set()): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(sent)) out[name] = SECRET_NAME.test(name) || fromEnv.has(name.toLowerCase()) ? maskValue(value) : value;
  return bound(out);
}

/** A receiver's headers as logged: the same masking (a `Set-Cookie` is a session), then the budget. */
export function keepResponseHeaders(received: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(received)) {
    if (v === undefined) continue;
    const value = Array.isArray(v) ? v.join(", ") : v;
    out[name] = SECRET_NAME.test(name) ? maskValue(value) : value;
  }
  return bound(out);
}

/** At most 32 headers and 2 KiB of names and values; each value cut at 256 characters. What is left out is counted. */
function bound(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  let used = 0;
  let n = 0;
  let dropped = 0;
  for (const [name, raw] of Object.entries(h)) {
    const value = raw.length > VALUE_MAX ? `${raw.slice(0, VALUE_MAX)}…` : raw;
    if (n >= HEADERS_MAX || used + name.length + value.length > HEADERS_BUDGET) {
      dropped++;
      continue;
    }
    out[name] = value;
    used += name.length + value.length;
    n++;
  }
  if (dropped) out["…"] = `${dropped} more header(s) not kept`;
  return out;
}

/** The first `RESPONSE_BODY_KEPT` bytes as text, not splitting a UTF-8 character at the cut. */
export function bodyExcerpt(bytes: Buffer): { text: string; truncated: boolean } {
  if (bytes.length <= RESPONSE_BODY_KEPT) return { text: bytes.toString("utf8"), truncated: false };
  let end = RESPONSE_BODY_KEPT;
  // Back up over continuation bytes (10xxxxxx) to the start of the cut character.
  while (end > RESPONSE_BODY_KEPT - 4 && (bytes[end]! & 0xc0) === 0x80) end--;
  return { text: bytes.subarray(0, end).toString("utf8"), truncated: true };
}
