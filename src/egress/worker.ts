import { Worker, type Job, type Processor } from "bullmq";
import type { RedisClient } from "../redis.js";
import { AttemptFailed } from "./record.js";
import { retryDelay, retryPolicy } from "./backoff.js";
import type { EgressContext, JobData } from "./context.js";
import type { QueueRef } from "./lanes.js";
import { isTransient } from "./failure.js";

/**
 * A BullMQ worker that runs attempts (attempt.ts) from one queue: an endpoint's lane (lanes.ts),
 * or a queue being drained. Workers share one connection for their commands; BullMQ gives each its
 * own blocking connection. The lock outlives the longest attempt, so no attempt runs twice at
 * once; a worker that dies loses its lock and the stalled check hands its jobs to another (same
 * webhook-id). Retry timing is the endpoint's: the delay an attempt chose travels on
 * `AttemptFailed` to the backoff strategy.
 */
export function startDeliveryWorker(
  ctx: EgressContext,
  opts: {
    queue: QueueRef;
    connection: RedisClient;
    process: Processor<JobData>;
    settled: (job: Job<JobData> | undefined) => void;
    concurrency: number;
    timeoutMs: number;
  },
) {
  const { endpoints, webhooks: wh, log, metrics } = ctx;
  const worker = new Worker<JobData>(opts.queue.name, opts.process, {
    connection: opts.connection,
    prefix: opts.queue.prefix,
    concurrency: opts.concurrency,
    lockDuration: 2 * opts.timeoutMs + 2_000,
    stalledInterval: wh.worker.stalledIntervalMs,
    maxStalledCount: 1_000,
    // After a Redis error reaches its loop (a restart, a failover) a worker waits this long before
    // fetching again; BullMQ's 15 s made a lane whose master had failed over sit idle with jobs
    // waiting long after the new master answered (test/reliability/failover.test.ts with a 9 s
    // failover). A second still keeps a worker from spinning on a Redis that is away.
    runRetryDelay: 1_000,
    settings: {
      backoffStrategy: (attemptsMade, _type, err, job) => {
        if (err instanceof AttemptFailed && err.delayMs !== undefined) return err.delayMs;
        // Any other error thrown by an attempt (Redis hiccup while logging): the policy's delay.
        const e = endpoints.get((job?.data as JobData | undefined)?.endpoint ?? "");
        return (e && retryDelay(retryPolicy(e), attemptsMade + 1 + ((job?.data as JobData | undefined)?.attemptsBefore ?? 0))) ?? -1;
      },
    },
  });
  // A connection lost or refused (a Redis restart, a failover) is expected and the worker carries
  // on by itself: a warning; anything else is an error.
  worker.on("error", (err) => log[isTransient(err) ? "warn" : "error"]({ err: err.message, queue: opts.queue.name }, "worker error"));
  // A job handed back by the stalled check: its worker died, or a Redis restart stranded it. It is
  // attempted again (same webhook-id); the operator sees why it came late, and how often.
  worker.on("stalled", (jobId) => {
    metrics?.deliveriesStalled.inc({ queue: opts.queue.name });
    log.warn({ jobId, queue: opts.queue.name }, "a delivery was in no worker's hands (stalled) and is attempted again");
  });
  worker.on("completed", opts.settled);
  worker.on("failed", opts.settled);
  return worker;
}

/**
 * Lets the worker finish its current attempts (bounded by `graceMs`), then drops its connection:
 * BullMQ's close can wait forever on a blocking connection that lived through a Redis restart. An
 * attempt cut off here is retried later with the same webhook-id (at least once), never lost.
 */
async function closeDeliveryWorker(worker: Worker<JobData>, graceMs: number, log: EgressContext["log"]): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const finished = await Promise.race([worker.close().then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), graceMs)))]);
  clearTimeout(timer);
  if (!finished) {
    // Neither close(true) nor disconnect() is awaited: both can wait on the same stuck blocking
    // connection. Dropping the connections ends whatever is left.
    log.warn({ graceMs }, "worker did not close in time; disconnecting");
    void worker.close(true).catch(() => {});
    void worker.disconnect().catch(() => {});
    // BullMQ runs its close steps in sequence and stops its own timers only at the end; a step
    // stuck on a connection that lived through a Redis restart would keep the stalled checker and
    // the lock extender alive (and the process with them). Stop both here (test/reach-ins.test.ts
    // holds these two names to the pinned BullMQ).
    const internals = worker as unknown as { stalledCheckStopper?: () => void; lockManager?: { close(): Promise<void> } };
    internals.stalledCheckStopper?.();
    void internals.lockManager?.close().catch(() => {});
  }
}

/** Closes every worker as above, all at once, then the connection they share. */
export async function closeDeliveryWorkers(
  workers: Worker<JobData>[],
  connection: RedisClient | undefined,
  graceMs: number,
  log: EgressContext["log"],
): Promise<void> {
  await Promise.all(workers.map((w) => closeDeliveryWorker(w, graceMs, log)));
  connection?.disconnect();
}
