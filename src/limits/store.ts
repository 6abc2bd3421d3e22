export type Limits = { windowMs: number; maxRequests: number; maxInFlight: number };

export type AcquireResult =
  | { ok: true; release: () => Promise<void> }
  | { ok: false; reason: "rate_limited"; retryAfterMs: number }
  | { ok: false; reason: "in_flight_limited" };

/**
 * Counts a request against its key's fixed window and, if the window allows it, takes an
 * in-flight slot. `release` is idempotent and must be called on every exit path.
 */
export interface LimitStore {
  acquire(key: string, limits: Limits): Promise<AcquireResult>;
}
