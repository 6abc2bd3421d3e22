import { atTurnEnd } from "./cork.js";

/**
 * Gathers the calls made during one event-loop turn by group, and at the turn's end (cork.ts
 * `atTurnEnd`, before the turn's corked writes leave) runs `run` once per group with every item
 * asked for. `run` answers one result per item, in order; a result that is an `Error` rejects that
 * item's call alone, and a throw or rejection of `run` rejects the whole group's. A group holds at
 * most `maxItems` (500) items per run: a bigger one is run in parts.
 *
 * Under load a turn handles many jobs or requests, and one command for all of a group's items
 * costs Redis (a script call's fixed ~15 µs) and ioredis (a Command per call) a fraction of one
 * each. Nothing waits on a timer: a call made alone goes out at the end of its turn, as its write
 * would have anyway. DataLoader batches the same way but per tick, caches results by key and knows
 * nothing of the turn's corked writes, so it is not used here.
 */
export function turnBatcher<I, R>(run: (group: string, items: I[]) => Promise<(R | Error)[]>, opts: { maxItems?: number } = {}): TurnBatcher<I, R> {
  type Waiter = { item: I; resolve: (r: R) => void; reject: (e: unknown) => void };
  const maxItems = opts.maxItems ?? 500;
  let pending = new Map<string, Waiter[]>();
  // Resolved once the pending batches' commands have been handed to their connections.
  let sent: { promise: Promise<void>; resolve: () => void } | undefined;

  const runGroup = (group: string, waiters: Waiter[]) => {
    let ran: Promise<(R | Error)[]>;
    try {
      ran = run(
        group,
        waiters.map((w) => w.item),
      );
    } catch (err) {
      ran = Promise.reject(err);
    }
    ran.then(
      (results) => {
        if (!Array.isArray(results)) results = [];
        for (let i = 0; i < waiters.length; i++) {
          const r = results[i];
          if (i >= results.length) waiters[i]!.reject(new Error(`a batch of ${waiters.length} got ${results.length} results`));
          else if (r instanceof Error) waiters[i]!.reject(r);
          else waiters[i]!.resolve(r as R);
        }
      },
      (err) => {
        for (const w of waiters) w.reject(err);
      },
    );
  };
  const flush = () => {
    const groups = pending;
    const flushed = sent;
    pending = new Map();
    sent = undefined;
    try {
      for (const [group, all] of groups)
        for (let from = 0; from < all.length; from += maxItems) runGroup(group, all.length <= maxItems ? all : all.slice(from, from + maxItems));
    } finally {
      flushed?.resolve();
    }
  };

  const call = (group: string, item: I) =>
    new Promise<R>((resolve, reject) => {
      let waiters = pending.get(group);
      if (!waiters) {
        if (pending.size === 0) atTurnEnd(flush);
        pending.set(group, (waiters = []));
      }
      waiters.push({ item, resolve, reject });
    });
  return Object.assign(call, {
    sent(): Promise<void> {
      if (pending.size === 0) return Promise.resolve();
      if (!sent) {
        let resolve!: () => void;
        const promise = new Promise<void>((r) => (resolve = r));
        sent = { promise, resolve };
      }
      return sent.promise;
    },
  });
}

/**
 * A batcher: call it with a group and an item for that item's result. `sent()` resolves once the
 * items asked for so far have been sent (their command handed to its connection, at the turn's
 * end), before their answer: what a caller awaits to keep its next command behind them on the
 * same connection.
 */
export type TurnBatcher<I, R> = ((group: string, item: I) => Promise<R>) & { sent(): Promise<void> };
