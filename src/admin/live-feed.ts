/** What a subscriber is sent next: a new snapshot, a keep-alive comment, or nothing (the feed ended). */
export type FeedMessage = { data: string } | { keepAlive: true };

export type FeedSlot = {
  /** The next message: at once when one is waiting (only the newest snapshot is kept), else when the poller has one; undefined once the slot is left or the feed closed. */
  next(): Promise<FeedMessage | undefined>;
  /** Frees the slot; idempotent. */
  leave(): void;
};

export type LiveFeed = {
  /** A subscriber slot, or undefined when `max` are taken. */
  join(): FeedSlot | undefined;
  readonly subscribers: number;
  /** Ends every subscriber (shutdown). */
  close(): void;
};

type Sub = { pending: FeedMessage | undefined; wake: ((m: FeedMessage | undefined) => void) | undefined; left: boolean };

/**
 * The dashboard's live updates for one replica: one poller reads the snapshot (`read`) every
 * `pollMs` while at least one subscriber is connected, and hands each change to all of them; it
 * stops when the last one leaves. Redis load is therefore that of one subscriber however many
 * there are (issue #16: 200 subscribers polling on their own made 26,500 commands a second). A
 * slow subscriber is not waited for: it gets the newest snapshot when it is ready for one.
 * A comment every `keepAliveEvery` polls without a change keeps proxies from closing idle streams.
 */
export function createLiveFeed(opts: {
  read: () => Promise<string>;
  pollMs: number;
  max: number;
  keepAliveEvery?: number;
  stopping?: () => boolean;
}): LiveFeed {
  const subs = new Set<Sub>();
  const keepAliveEvery = opts.keepAliveEvery ?? 30;
  let last: string | undefined;
  let idle = 0;
  let polling = false;
  let timer: NodeJS.Timeout | undefined;

  const offer = (s: Sub, m: FeedMessage) => {
    if (s.wake) {
      const wake = s.wake;
      s.wake = undefined;
      wake(m);
    } else if (!("keepAlive" in m && s.pending && "data" in s.pending)) s.pending = m;
  };
  const end = (s: Sub) => {
    if (s.left) return;
    s.left = true;
    subs.delete(s);
    const wake = s.wake;
    s.wake = undefined;
    wake?.(undefined);
  };

  const poll = async () => {
    timer = undefined;
    if (opts.stopping?.()) {
      for (const s of [...subs]) end(s);
    }
    if (subs.size === 0) {
      polling = false;
      last = undefined; // the next subscriber gets a fresh read, not a stale one
      return;
    }
    let data: string;
    try {
      data = await opts.read();
    } catch {
      data = JSON.stringify({ error: "Redis is not answering" });
    }
    if (data !== last) {
      last = data;
      idle = 0;
      for (const s of subs) offer(s, { data });
    } else if (++idle % keepAliveEvery === 0) {
      for (const s of subs) offer(s, { keepAlive: true });
    }
    timer = setTimeout(() => void poll(), opts.pollMs);
    timer.unref();
  };

  return {
    get subscribers() {
      return subs.size;
    },
    join() {
      if (subs.size >= opts.max) return undefined;
      const s: Sub = { pending: last !== undefined ? { data: last } : undefined, wake: undefined, left: false };
      subs.add(s);
      if (!polling) {
        polling = true;
        void poll();
      }
      return {
        next() {
          if (s.left) return Promise.resolve(undefined);
          if (s.pending) {
            const m = s.pending;
            s.pending = undefined;
            return Promise.resolve(m);
          }
          return new Promise((resolve) => (s.wake = resolve));
        },
        leave: () => end(s),
      };
    },
    close() {
      for (const s of [...subs]) end(s);
      if (timer) clearTimeout(timer);
      timer = undefined;
      polling = false;
      last = undefined;
    },
  };
}
