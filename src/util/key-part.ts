import { createHash } from "node:crypto";

/** What an id may look like to be used as it is inside a Redis key. */
const PLAIN = /^[A-Za-z0-9._:-]+$/;

/**
 * Hex SHA-256 (128 bits) of a tuple of strings. The JSON form is injective: lengths are implied by
 * the quoting, and unpaired surrogates are escaped rather than replaced (UTF-8 would turn every
 * one into U+FFFD, so two different ids would hash the same).
 */
export function digestOf(...parts: string[]): string {
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex").slice(0, 32);
}

/**
 * An externally supplied id (event, run, delivery id of a sender) as the last part of a Redis key:
 * the id itself when it is short and plain (letters, digits, `.`, `_`, `:`, `-`), so keys stay
 * readable and the same as before for such ids; otherwise `~` and a hash. `~` is not in the plain
 * set, so a hashed part never equals a plain one: the mapping is injective (up to SHA-256).
 */
export function keyPart(id: string, maxLength = 128): string {
  return id.length > 0 && id.length <= maxLength && PLAIN.test(id) ? id : `~${digestOf(id)}`;
}
