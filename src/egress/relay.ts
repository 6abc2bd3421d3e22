import type { Logger } from "pino";
import type { MappedEvent } from "./gateway-events.js";

/**
 * Hands events that nobody waits for (Gateway broadcasts, flow lifecycle) to `publish` without
 * holding up their source, and keeps any that could not be stored (Redis away) in a bounded
 * buffer, publishing them again with backoff until Redis is back. Their ids are deterministic, so
 * a publish that did reach Redis before failing is not sent twice. Written here because it is a
 * dozen lines over `publish`; a second queue library would add a store that can fail too.
 *
 * @param opts.maxBuffered events kept while Redis is away (oldest dropped and counted beyond it)
 */
export function createRelay(
  publish: (e: MappedEvent) => Promise<unknown>,
  opts: { log: Logger; maxBuffered?: number; retryBaseMs?: number; retryMaxMs?: number; onDrop?: (n: number) => void },
) {
  const max = opts.maxBuffered ?? 10_000;
  const base = opts.retryBaseMs ?? 200;
  const cap = opts.retryMaxMs ?? 5_000;
  const buffer: MappedEvent[] = [];
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  let inFlight = 0;
  let closed = false;

  function keep(e: MappedEvent) {
    buffer.push(e);
    if (buffer.length > max) {
      buffer.shift();
      opts.onDrop?.(1);
      opts.log.error({ maxBuffered: max }, "event relay buffer full: dropped the oldest event");
    }
    schedule();
  }

  function schedule() {
    if (timer || closed || buffer.length === 0) return;
    const delay = Math.min(cap, base * 2 ** Math.min(failures, 10));
    timer = setTimeout(flush, delay);
    timer.unref();
  }

  async function flush() {
    timer = undefined;
    while (buffer.length) {
      const e = buffer[0]!;
      try {
        await publish(e);
        buffer.shift();
        failures = 0;
      } catch {
        failures++;
        break;
      }
    }
    schedule();
  }

  return {
    emit(e: MappedEvent): void {
      if (buffer.length) return keep(e); // keep order behind events already waiting
      inFlight++;
      publish(e)
        .catch((err: Error) => {
          opts.log.warn({ err: err.message, eventId: e.id, type: e.type }, "event not stored yet; will retry");
          keep(e);
        })
        .finally(() => inFlight--);
    },
    /** Events waiting for Redis (a gauge for /metrics). */
    get pending() {
      return buffer.length + inFlight;
    },
    /** Tries once more to store what is buffered, bounded by `ms`; what is left is logged. */
    async close(ms = 2_000) {
      closed = true;
      clearTimeout(timer);
      const end = Date.now() + ms;
      while ((buffer.length || inFlight) && Date.now() < end) {
        if (buffer.length) {
          try {
            await publish(buffer[0]!);
            buffer.shift();
          } catch {
            await new Promise((r) => setTimeout(r, 100));
          }
        } else await new Promise((r) => setTimeout(r, 10));
      }
      if (buffer.length) opts.log.error({ lost: buffer.length, ids: buffer.slice(0, 20).map((e) => e.id) }, "events not stored at shutdown");
    },
  };
}

export type Relay = ReturnType<typeof createRelay>;
