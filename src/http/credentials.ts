import { timingSafeEqual } from "node:crypto";

/**
 * The presented shared secret: `Authorization: Bearer <s>` (case-insensitive scheme) wins over
 * `x-openclaw-webhook-secret: <s>`; both trimmed. Empty when neither is present.
 */
export function presentedSecret(header: (name: string) => string | undefined): string {
  const auth = header("authorization") ?? "";
  if (auth.slice(0, 7).toLowerCase() === "bearer ") return auth.slice(7).trim();
  return (header("x-openclaw-webhook-secret") ?? "").trim();
}

/**
 * Constant-time comparison: both UTF-8 buffers are padded to the same length before
 * `timingSafeEqual`, so the time taken does not depend on where they differ or on the expected
 * secret's length; the lengths are compared after. An empty secret never matches.
 */
export function secretsEqual(expected: string, presented: string): boolean {
  if (expected.length === 0 || presented.length === 0) return false;
  const a = Buffer.from(expected, "utf8");
  const b = Buffer.from(presented, "utf8");
  const len = Math.max(a.length, b.length);
  const pa = Buffer.alloc(len);
  const pb = Buffer.alloc(len);
  a.copy(pa);
  b.copy(pb);
  return timingSafeEqual(pa, pb) && a.length === b.length;
}
