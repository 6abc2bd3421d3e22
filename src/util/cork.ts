import type { Writable } from "node:stream";

const corked = new WeakSet<Writable>();

/**
 * Holds a stream's writes until the end of this event-loop turn, so the commands or frames of all
 * the requests handled in one turn leave in one `writev` instead of one system call each. On a
 * virtual machine a loopback write costs ~10 µs of CPU whatever its size, and under load a turn
 * handles several requests. The writes go out in the same turn (`setImmediate` runs right after
 * the poll phase), so nothing waits on a timer.
 *
 * Neither ioredis (its auto-pipelining flushes per `process.nextTick`, i.e. per socket callback)
 * nor ws (one `writev` per frame) batches across callbacks, hence this helper.
 */
export function corkUntilTurnEnds(stream: Writable | null | undefined): void {
  if (!stream || stream.destroyed || corked.has(stream)) return;
  corked.add(stream);
  stream.cork();
  setImmediate(() => {
    corked.delete(stream);
    stream.uncork();
  });
}
