import { createHmac, timingSafeEqual } from "node:crypto";
import type { InboundAuth } from "../config/inbound.js";
import { presentedSecret, secretsEqual } from "../http/credentials.js";

export type Verdict = { ok: true } | { ok: false; reason: string };
type Header = (name: string) => string | undefined;

const hmac = (algorithm: string, key: Buffer | string, data: Buffer | string) => createHmac(algorithm, key).update(data).digest();

/** Equal-length byte strings compared in constant time (an HMAC's length is public). */
function same(expected: Buffer, presented: Buffer): boolean {
  return expected.length === presented.length && timingSafeEqual(expected, presented);
}

function decode(sig: string, encoding: "hex" | "base64"): Buffer | undefined {
  const s = sig.trim();
  if (encoding === "hex" ? !/^[0-9a-fA-F]+$/.test(s) || s.length % 2 : !/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) return undefined;
  return Buffer.from(s, encoding);
}

function checkTimestamp(seconds: string | undefined, toleranceS: number, now: number): Verdict | undefined {
  if (!seconds || !/^\d{1,12}$/.test(seconds)) return { ok: false, reason: "missing or malformed timestamp" };
  const skew = Math.abs(now / 1000 - Number(seconds));
  if (skew > toleranceS) return { ok: false, reason: Number(seconds) * 1000 < now ? "timestamp too old" : "timestamp in the future" };
  return undefined;
}

/** Standard Webhooks key: the base64 after `whsec_`, else the secret's UTF-8 bytes (as egress signs). */
const standardKey = (secret: string) => (secret.startsWith("whsec_") ? Buffer.from(secret.slice(6), "base64") : Buffer.from(secret, "utf8"));

/**
 * Checks a request against an endpoint's auth, over the raw body bytes exactly as received
 * (nothing is parsed first, so a re-serialised body fails). Any of `secrets` may match
 * (rotation). Timestamps are allowed `toleranceSeconds` of skew in both directions.
 *
 * Written here rather than with each provider's SDK: the `standardwebhooks` package fixes its
 * tolerance at 5 minutes and takes one secret, and the GitHub and Stripe schemes are one HMAC
 * each; the tests check every scheme against vectors made by the real libraries.
 */
export function verifyInbound(auth: InboundAuth, secrets: readonly string[], raw: Buffer, header: Header, now = Date.now()): Verdict {
  if (secrets.length === 0) return { ok: false, reason: "no secret resolves" };
  switch (auth.scheme) {
    case "token": {
      const bearer = presentedSecret((n) => (n === "x-openclaw-webhook-secret" ? undefined : header(n)));
      const presented = bearer || (auth.header ? (header(auth.header) ?? "").trim() : "");
      if (!presented) return { ok: false, reason: "missing token" };
      // Every secret is compared, so the time taken does not say which one matched.
      let ok = false;
      for (const s of secrets) ok = secretsEqual(s, presented) || ok;
      return ok ? { ok: true } : { ok: false, reason: "token mismatch" };
    }
    case "standard-webhooks": {
      const id = header("webhook-id");
      const ts = header("webhook-timestamp");
      const sigs = header("webhook-signature");
      if (!id || !sigs) return { ok: false, reason: "missing webhook-id or webhook-signature" };
      const bad = checkTimestamp(ts, auth.toleranceSeconds, now);
      if (bad) return bad;
      const content = Buffer.concat([Buffer.from(`${id}.${ts}.`), raw]);
      // A key that decodes to nothing is no key (config and the resolver refuse it; this holds anyway).
      const expected = secrets
        .map(standardKey)
        .filter((k) => k.length > 0)
        .map((k) => hmac("sha256", k, content));
      for (const entry of sigs.split(" ")) {
        const [version, value] = entry.split(",", 2);
        if (version !== "v1" || !value) continue;
        const presented = decode(value, "base64");
        if (presented && expected.some((e) => same(e, presented))) return { ok: true };
      }
      return { ok: false, reason: "no valid v1 signature" };
    }
    case "github": {
      const sig = header("x-hub-signature-256");
      if (!sig?.startsWith("sha256=")) return { ok: false, reason: "missing X-Hub-Signature-256" };
      const presented = decode(sig.slice(7), "hex");
      return presented && secrets.some((s) => same(hmac("sha256", s, raw), presented)) ? { ok: true } : { ok: false, reason: "signature mismatch" };
    }
    case "stripe": {
      const parts = (header("stripe-signature") ?? "").split(",").map((p) => p.trim().split("=", 2) as [string, string?]);
      const t = parts.find(([k]) => k === "t")?.[1];
      const v1 = parts.filter(([k, v]) => k === "v1" && v).map(([, v]) => decode(v!, "hex"));
      if (!t || v1.length === 0) return { ok: false, reason: "missing t or v1 in Stripe-Signature" };
      const bad = checkTimestamp(t, auth.toleranceSeconds, now);
      if (bad) return bad;
      const content = Buffer.concat([Buffer.from(`${t}.`), raw]);
      const expected = secrets.map((s) => hmac("sha256", s, content));
      return v1.some((p) => p && expected.some((e) => same(e, p))) ? { ok: true } : { ok: false, reason: "signature mismatch" };
    }
    case "hmac": {
      let sig = header(auth.header!);
      if (!sig) return { ok: false, reason: `missing ${auth.header}` };
      if (auth.prefix) {
        if (!sig.startsWith(auth.prefix)) return { ok: false, reason: "signature prefix mismatch" };
        sig = sig.slice(auth.prefix.length);
      }
      const presented = decode(sig, auth.encoding);
      return presented && secrets.some((s) => same(hmac(auth.algorithm, s, raw), presented)) ? { ok: true } : { ok: false, reason: "signature mismatch" };
    }
  }
}
