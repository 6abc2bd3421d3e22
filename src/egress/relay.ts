import type { Logger } from "pino";
import type { MappedEvent } from "./gateway-events.js";
import { exponentialDelay } from "../util/backoff.js";

type Entry = { e: MappedEvent; strikes: number; lastError: string };

/**
 * Hands events that nobody waits for (Gateway broadcasts, flow lifecycle, inbound callbacks) to
 * `publish` without holding up their source. `publish` resolves when the event is stored or parked
 * (egress.publish parks what fails for good) and rejects when it could not store it for now (Redis
 * away): such events wait in a bounded buffer and are published again with backoff until Redis is
 * back. Their ids are deterministic, so a publish that did reach Redis before failing is not sent
 * twice. Written here because it is a few dozen lines over `publish`; a second queue library would
 * add a store that can fail too.
 *
 * No event holds up the others. A pass over the buffer stops after two failures in a row (Redis is
 * away: no point trying the rest) and puts the events that failed behind the others, so the next
 * pass starts with different ones. An event that fails in a pass where others were stored is
 * failing on its own: after `maxStrikes` such passes it is handed to `park` and leaves the buffer.
 *
 * @param opts.maxBuffered events kept while Redis is away (oldest dropped and counted beyond it)
 * @param opts.maxStrikes passes an event may fail while others succeed before it is parked (5)
 * @param opts.park where such an event goes (egress.park); without it, it is dropped and counted
 */
export function createRelay(
  publish: (e: MappedEvent) => Promise<unknown>,
  opts: {
    log: Logger;
    maxBuffered?: number;
    retryBaseMs?: number;
    retryMaxMs?: number;
    maxStrikes?: number;
    onDrop?: (n: number) => void;
    park?: (e: MappedEvent, reason: string) => Promise<unknown>;
  },
) {
  const max = opts.maxBuffered ?? 10_000;
  const base = opts.retryBaseMs ?? 200;
  const cap = opts.retryMaxMs ?? 5_000;
  const maxStrikes = opts.maxStrikes ?? 5;
  const buffer: Entry[] = [];
  /** Events a running pass has taken out of the buffer (counted against `max`). */
  let taken = 0;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  let inFlight = 0;
  let flushing = false;
  let closed = false;

  /** One publish; a synchronous throw is a failure like any other. */
  async function attempt(entry: Entry): Promise<boolean> {
    try {
      await publish(entry.e);
      return true;
    } catch (err) {
      entry.lastError = err instanceof Error ? err.message : String(err);
      return false;
    }
  }

  function drop(n: number, why: string, ids: string[]) {
    try {
      opts.onDrop?.(n);
    } catch {
      // A metric must not take the relay down.
    }
    opts.log.error({ dropped: n, ids: ids.slice(0, 20), maxBuffered: max }, why);
  }

  function keep(entry: Entry) {
    buffer.push(entry);
    if (buffer.length + taken > max) {
      const oldest = buffer.shift()!;
      drop(1, "event relay buffer full: dropped the oldest event", [oldest.e.id]);
    }
    schedule();
  }

  function schedule() {
    if (timer || flushing || closed || buffer.length === 0) return;
    const delay = exponentialDelay(failures, { baseMs: base, maxMs: cap });
    timer = setTimeout(() => void flush(), delay);
    timer.unref();
  }

  async function giveUp(entry: Entry) {
    const reason = `failed ${entry.strikes} times while other events were stored: ${entry.lastError}`;
    try {
      if (!opts.park) throw new Error("no parking");
      await opts.park(entry.e, reason);
    } catch {
      drop(1, "event kept failing and could not be parked: dropped", [entry.e.id]);
      opts.log.error({ eventId: entry.e.id, type: entry.e.type, reason }, "event dropped");
    }
  }

  async function flush() {
    timer = undefined;
    if (flushing) return;
    flushing = true;
    const failed: Entry[] = [];
    try {
      let stored = 0;
      let inARow = 0;
      // Only the events buffered when the pass began; those emitted meanwhile wait for the next.
      for (let n = buffer.length; n > 0 && buffer.length > 0; n--) {
        const entry = buffer.shift()!;
        taken++;
        const ok = await attempt(entry);
        taken--;
        if (ok) {
          stored++;
          inARow = 0;
          continue;
        }
        failed.push(entry);
        taken++;
        if (++inARow >= 2) break;
      }
      failures = stored > 0 ? 0 : failures + 1;
      taken -= failed.length;
      for (const entry of failed) {
        if (stored > 0 && ++entry.strikes >= maxStrikes) await giveUp(entry);
        else keep(entry);
      }
    } catch (err) {
      // Nothing above should throw; if it does, keep what was taken and carry on.
      opts.log.error({ err: (err as Error).message }, "event relay pass failed");
      taken = 0;
      for (const entry of failed) if (!buffer.includes(entry)) buffer.push(entry);
    } finally {
      flushing = false;
      schedule();
    }
  }

  return {
    emit(e: MappedEvent): void {
      const entry: Entry = { e, strikes: 0, lastError: "" };
      if (closed) {
        drop(1, "event emitted after the relay closed: dropped", [e.id]);
        return;
      }
      if (buffer.length) {
        keep(entry); // behind the events already waiting
        return;
      }
      inFlight++;
      void attempt(entry).then((ok) => {
        inFlight--;
        if (ok) return;
        opts.log.warn({ err: entry.lastError, eventId: e.id, type: e.type }, "event not stored yet; will retry");
        keep(entry);
      });
    },
    /** Events waiting for Redis (a gauge for /metrics). */
    get pending() {
      return buffer.length + taken + inFlight;
    },
    /** Tries once more to store what is buffered, bounded by `ms`; what is left is logged. */
    async close(ms = 2_000) {
      closed = true;
      clearTimeout(timer);
      timer = undefined;
      const end = Date.now() + ms;
      while ((buffer.length || inFlight || flushing) && Date.now() < end) {
        const entry = !flushing && buffer.shift();
        if (!entry) {
          await new Promise((r) => setTimeout(r, 10));
          continue;
        }
        if (!(await attempt(entry))) {
          buffer.push(entry);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      if (buffer.length)
        drop(
          buffer.length,
          "events not stored at shutdown",
          buffer.map((x) => x.e.id),
        );
    },
  };
}

export type Relay = ReturnType<typeof createRelay>;
