import type { Writable } from "node:stream";

/**
 * One callback at the end of each event-loop turn (`setImmediate` runs right after the poll
 * phase, so nothing waits on a timer): first the turn-end jobs (batches that gather the turn's
 * requests, then write one command for them all), then every stream corked in this turn is
 * uncorked. Jobs run before the uncork so that their writes leave in the same `writev`.
 */
const corked = new Set<Writable>();
const jobs: (() => void)[] = [];
// True from the moment a turn end is queued until it has run: a job that corks a stream or adds a
// job while the turn end runs joins that same turn end.
let scheduled = false;

function endTurn(): void {
  try {
    // A job may add jobs or cork streams; both are taken in this same turn end.
    for (let i = 0; i < jobs.length; i++) {
      try {
        jobs[i]!();
      } catch {
        // A job reports its own failures (to the promises it holds); one must not stop the rest.
      }
    }
    jobs.length = 0;
    // Each stream alone: one whose uncork throws must not leave the others corked, nor itself
    // in `corked` (corkUntilTurnEnds would then never cork it again, and never uncork it).
    for (const stream of corked) {
      try {
        if (!stream.destroyed) stream.uncork();
      } catch (err) {
        // Its held writes are in doubt: the stream is destroyed with the error, so its owner
        // (ioredis, ws) sees it close and reconnects, instead of writing on into a stream
        // whose earlier writes never left.
        stream.destroy(err as Error);
      }
    }
  } finally {
    corked.clear();
    scheduled = false;
  }
}

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(endTurn);
}

/**
 * Holds a stream's writes until the end of this event-loop turn, so the commands or frames of all
 * the requests handled in one turn leave in one `writev` instead of one system call each. On a
 * virtual machine a loopback write costs ~10 µs of CPU whatever its size, and under load a turn
 * handles several requests.
 *
 * Neither ioredis (its auto-pipelining flushes per `process.nextTick`, i.e. per socket callback)
 * nor ws (one `writev` per frame) batches across callbacks, hence this helper.
 */
export function corkUntilTurnEnds(stream: Writable | null | undefined): void {
  if (!stream || stream.destroyed || corked.has(stream)) return;
  corked.add(stream);
  stream.cork();
  schedule();
}

/**
 * Runs `job` once at the end of this event-loop turn, before the turn's corked streams are
 * written: the place to send one command for everything the turn's requests asked for.
 */
export function atTurnEnd(job: () => void): void {
  jobs.push(job);
  schedule();
}
