import type { Endpoint } from "../config/endpoints.js";
import { exponentialDelay } from "../util/backoff.js";

/**
 * Retry timing for deliveries (docs/outgoing-webhooks.md, Delivery). An endpoint uses either a schedule
 * (`retry: { schedule: ["30s", "5m", "30m"] }`, the default: after the last entry the delivery
 * has failed) or the exponential form (`retry: { maxAttempts, backoffMs }`: delay
 * backoffMs × 2^(n-1)). Every delay gets ±20% jitter so retries of many deliveries spread out.
 * A receiver's `Retry-After` is honoured within [delay, 2 × delay] (Svix), so it can push the next
 * attempt back but neither hammer us forward nor park a delivery indefinitely.
 */
export type RetryPolicy = { kind: "schedule"; delaysMs: readonly number[] } | { kind: "exponential"; maxAttempts: number; backoffMs: number };

export const DEFAULT_RETRY: RetryPolicy = { kind: "schedule", delaysMs: [30_000, 300_000, 1_800_000] };

/** Total attempts allowed, the first one included. */
export function maxAttempts(policy: RetryPolicy): number {
  return policy.kind === "schedule" ? policy.delaysMs.length + 1 : policy.maxAttempts;
}

/**
 * Delay before attempt `next` (2 for the first retry), or undefined when no attempt is left.
 * `random` is injectable for tests (0..1).
 */
export function retryDelay(
  policy: RetryPolicy,
  next: number,
  opts: { retryAfterMs?: number; random?: () => number; jitter?: number } = {},
): number | undefined {
  if (next < 2 || next > maxAttempts(policy)) return undefined;
  const base = policy.kind === "schedule" ? policy.delaysMs[next - 2]! : exponentialDelay(next - 2, { baseMs: policy.backoffMs });
  const jitter = opts.jitter ?? 0.2;
  const r = (opts.random ?? Math.random)();
  const jittered = Math.round(base * (1 - jitter + 2 * jitter * r));
  if (opts.retryAfterMs === undefined) return jittered;
  return Math.min(2 * base, Math.max(jittered, opts.retryAfterMs));
}

/** An endpoint's retry policy (its `retry`, else the default schedule). */
export function retryPolicy(e: Endpoint): RetryPolicy {
  if (!e.retry) return DEFAULT_RETRY;
  return "schedule" in e.retry ? { kind: "schedule", delaysMs: e.retry.schedule } : { kind: "exponential", ...e.retry };
}
