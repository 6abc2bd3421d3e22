import { z } from "zod";

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses a duration: a number of milliseconds, or a string such as "200ms", "30s", "5m", "1h", "1.5s". */
export function parseDuration(value: number | string): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? value : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(value);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNITS[m[2] ?? "ms"]!);
}

/** A config duration: milliseconds or "30s"-style strings, parsed to milliseconds. */
export const durationSchema = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === undefined) {
    ctx.addIssue({ code: "custom", message: `not a duration: ${JSON.stringify(v)} (use milliseconds or e.g. "200ms", "30s", "5m")` });
    return z.NEVER;
  }
  return ms;
});
