import { type Job, UnrecoverableError, Worker } from "bullmq";
import type { Endpoint } from "../config/endpoints.js";
import type { EgressContext, JobData } from "./context.js";

const jitter = (min: number, max: number) => min + Math.floor(Math.random() * (max - min));

/**
 * The gate an attempt passes first (scripts.ts `gate`, `probe`): the endpoint's disabled marker
 * and circuit breaker, read with the event. Concurrency and rate are the lane's own BullMQ limits
 * (lanes.ts), so the usual attempt is two plain reads. A job held back does not use an attempt:
 * it goes back to the head of its lane, and the lane is held until the endpoint can take it, so a
 * failing endpoint makes its own deliveries wait, fetching none of them meanwhile, not the
 * others'. A disabled endpoint's delivery fails for good.
 */
export async function admit(ctx: EgressContext, job: Job<JobData>, e: Endpoint) {
  const { scripts, deliveryLog } = ctx;
  const gate = await scripts.gate(e.name, job.data.eventId);
  if (gate.disabled) {
    await deliveryLog.markFailed(job.data.deliveryId, e.name, "endpoint disabled");
    throw new UnrecoverableError(`endpoint ${e.name} is disabled`);
  }
  if (!gate.open) return { isProbe: false, raw: gate.raw };
  // Open: wait out the cooldown here (the clocks of replicas and Redis agree to a few ms), then
  // one replica claims the probe on Redis's clock.
  const left = gate.openUntil - Date.now();
  if (left > 0) return hold(ctx, e, left + jitter(0, 50));
  const probe = await scripts.probe(e);
  if (probe[0] === 1) return { isProbe: true, raw: gate.raw };
  if (probe[1] === "closed") return { isProbe: false, raw: gate.raw };
  return hold(ctx, e, probe[2] + (probe[1] === "circuit_open" ? jitter(0, 50) : 0));
}

/**
 * Puts a job back without using an attempt: at the head of its lane, with the lane held for `ms`
 * (BullMQ's manual rate limit, for every replica). Only lanes run attempts: a job of any other
 * queue moves to its lane first (engine.ts `moveToLane`).
 */
async function hold(ctx: EgressContext, e: Endpoint, ms: number): Promise<never> {
  await ctx.lanes.hold(e.name, ms);
  throw Worker.RateLimitError();
}
