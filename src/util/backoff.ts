/**
 * Exponential backoff: `baseMs × 2^attempt`, capped at `maxMs` (the exponent is capped too, so a
 * long outage cannot overflow). Jitter spreads many clients' retries: `equal` waits between half
 * the delay and the delay (AWS's "equal jitter"), `none` waits the delay. `random` is injectable.
 * Used by the Gateway reconnect, the event relay's republish, Redis reconnects and the exponential
 * delivery retry policy.
 */
export function exponentialDelay(attempt: number, opts: { baseMs: number; maxMs?: number; jitter?: "none" | "equal"; random?: () => number }): number {
  const delay = Math.min(opts.maxMs ?? Number.POSITIVE_INFINITY, opts.baseMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  if (opts.jitter !== "equal") return delay;
  return Math.round(delay / 2 + ((opts.random ?? Math.random)() * delay) / 2);
}
