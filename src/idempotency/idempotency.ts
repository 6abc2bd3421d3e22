import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { AppError } from "../errors.js";
import type { IdempotencyStore } from "./store.js";

/** An answer as it is sent and as it is kept for a retry. */
export type Answer = { status: number; body: unknown };
type Stored = { s: number; b: unknown; f?: string };

export type IdempotencyOptions = {
  /** The in-progress lease (config `idempotency.leaseMs`, 30 s): how long a crashed first attempt blocks its retries. */
  leaseMs: number;
  /** How long a duplicate waits for the first attempt's answer before its 409 (config `idempotency.waitMs`, 2 s). */
  waitMs: number;
  log: Logger;
};

export type RunOptions = {
  /** How long the answer is kept (24 h by default). */
  windowMs: number;
  /** The request's fingerprint (a body hash): the same key with another one is 409 `idempotency_conflict`. */
  fingerprint?: string;
  /** How the key is named in errors: `Idempotency-Key`, `delivery id`. */
  label: string;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Stripe's idempotency, for TaskFlow `Idempotency-Key`s and inbound delivery ids alike:
 * - the first request with a key takes a short lease (`leaseMs`) and renews it every third of
 *   that while it works, so a crash or a lost Redis blocks the key for one lease at most;
 * - its answer, once there is one below 500, is kept for `windowMs` and replayed to every retry
 *   (`replayed: true`; the routes add `Idempotent-Replayed: true`);
 * - a failure (thrown, or an answer of 500 and above) gives the key up, so the next retry runs;
 * - a duplicate while the first is in progress waits up to `waitMs` for its answer (taking over
 *   if the first gives up), then gets 409 `idempotency_in_progress` with `Retry-After`.
 * Only the owner token of a lease can renew, answer or release it (Lua scripts in store.ts).
 */
export function createIdempotency(store: IdempotencyStore, opts: IdempotencyOptions) {
  const { leaseMs, waitMs, log } = opts;
  const unavailable = (label: string) => (cause: unknown) => {
    throw new AppError("storage_unavailable", `The ${label} could not be checked; retry.`, { cause, retryAfterS: 1 });
  };

  /** Runs `work` as the lease's owner: renews the lease meanwhile, then stores the answer or gives the key up. */
  async function own(key: string, owner: string, o: RunOptions, work: () => Promise<Answer>): Promise<Answer> {
    let working = true;
    const renew = setInterval(
      () => {
        store.renew(key, owner, leaseMs).then(
          (held) => {
            if (!held && working) log.warn({ label: o.label }, "idempotency lease lost while the request was still running");
          },
          (err: Error) => log.warn({ err: err.message }, "idempotency lease not renewed"),
        );
      },
      Math.max(50, Math.floor(leaseMs / 3)),
    );
    renew.unref();
    let answer: Answer;
    try {
      answer = await work();
    } catch (err) {
      working = false;
      clearInterval(renew);
      // If Redis is away too, the lease runs out by itself within leaseMs.
      await store.release(key, owner).catch((e: Error) => log.warn({ err: e.message }, "idempotency key not released; it frees itself when its lease ends"));
      throw err;
    }
    working = false;
    clearInterval(renew);
    if (answer.status >= 500) {
      await store.release(key, owner).catch((e: Error) => log.warn({ err: e.message }, "idempotency key not released; it frees itself when its lease ends"));
      return answer;
    }
    const stored: Stored = { s: answer.status, b: answer.body, ...(o.fingerprint !== undefined ? { f: o.fingerprint } : {}) };
    await store.complete(key, owner, JSON.stringify(stored), o.windowMs).then(
      (ok) => {
        if (!ok) log.warn({ label: o.label }, "idempotency answer not stored: another request took the key after this one's lease ran out");
      },
      (e: Error) => log.warn({ err: e.message }, "idempotency answer not stored; the key frees itself when its lease ends"),
    );
    return answer;
  }

  return {
    leaseMs,
    /**
     * The answer for `key`: `work`'s when this request wins the key (or takes it over from a first
     * attempt that failed while it waited), the stored one (`replayed`) when there is one. Throws
     * 409 `idempotency_in_progress` (with `Retry-After`) while another request holds the key,
     * 409 `idempotency_conflict` for a stored answer to another fingerprint, 503 when the store is away.
     */
    async run(key: string, o: RunOptions, work: () => Promise<Answer>): Promise<{ answer: Answer; replayed: boolean }> {
      const owner = randomUUID();
      const deadline = Date.now() + waitMs;
      // Bounded: every round but the last sleeps, and the rounds stop at the deadline.
      for (;;) {
        const claim = await store.claim(key, owner, leaseMs).catch(unavailable(o.label));
        if (claim.state === "won") return { answer: await own(key, owner, o, work), replayed: false };
        if (claim.state === "answered") {
          const stored = JSON.parse(claim.answer) as Stored;
          if (o.fingerprint !== undefined && stored.f !== undefined && stored.f !== o.fingerprint) {
            throw new AppError("idempotency_conflict", `This ${o.label} was used with a different request body.`);
          }
          return { answer: { status: stored.s, body: stored.b }, replayed: true };
        }
        const left = deadline - Date.now();
        if (left <= 0) {
          // The first attempt may answer any moment; a dead one's lease ends within ttlMs.
          const retryAfterS = Math.min(5, Math.max(1, Math.ceil(claim.ttlMs / 1000)));
          throw new AppError("idempotency_in_progress", `A request with this ${o.label} is still in progress; retry after ${retryAfterS} s.`, { retryAfterS });
        }
        await sleep(Math.min(50, left));
      }
    },
  };
}

export type Idempotency = ReturnType<typeof createIdempotency>;
