import { DelayedError, type Job, UnrecoverableError, Worker } from "bullmq";
import type { Endpoint } from "../config/endpoints.js";
import type { EgressContext, JobData } from "./context.js";
import { laneName } from "./lanes.js";

const jitter = (min: number, max: number) => min + Math.floor(Math.random() * (max - min));

/**
 * The gate an attempt passes first: one script (scripts.ts, lua/gate-4.lua) checks the endpoint's
 * disabled marker, circuit breaker, concurrency lease and rate, so limits hold across replicas, and
 * returns the event. A job held back does not use an attempt: it goes back to the head of its
 * lane, and the lane is held (lanes.ts) until the endpoint can take it, so a failing or slow
 * endpoint makes its own deliveries wait, fetching none of them in the meantime, not the others'.
 * (A job of a queue that is not the endpoint's lane, drained after an upgrade, is moved to the
 * delayed set instead.) A disabled endpoint's delivery fails for good.
 */
export async function admit(ctx: EgressContext, job: Job<JobData>, e: Endpoint, leaseId: string, token: string | undefined) {
  const { scripts, deliveryLog } = ctx;
  const gate = await scripts.gate(e, job.data.eventId, leaseId);
  if (gate[0] === 1) return { isProbe: gate[1] === 1, raw: gate[2] };
  const [, reason, waitMs] = gate;
  if (reason === "disabled") {
    await deliveryLog.markFailed(job.data.deliveryId, e.name, "endpoint disabled");
    throw new UnrecoverableError(`endpoint ${e.name} is disabled`);
  }
  // Held back, not failed: the attempt is not used up.
  const wait = reason === "circuit_open" ? waitMs + jitter(0, 50) : reason === "rate_limited" ? waitMs + jitter(0, 20) : jitter(50, 250);
  if (job.queueName === laneName(e.name)) {
    await ctx.lanes.hold(e.name, reason === "circuit_probing" ? waitMs : wait);
    throw Worker.RateLimitError();
  }
  await job.moveToDelayed(Date.now() + wait, token);
  throw new DelayedError();
}
