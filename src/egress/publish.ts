import { matchesEvent, passesFilter } from "../config/endpoints.js";
import { maxAttempts, retryPolicy } from "./backoff.js";
import type { EgressContext } from "./context.js";
import { createEnvelope } from "./envelope.js";
import { deliveryId } from "./ids.js";
import type { PublishInput } from "./publish-or-park.js";

/**
 * Fan-out, in three steps, each keeping to one hash slot (an endpoint's keys share its tag, the
 * event has its own: on a Redis Cluster they may live on different masters):
 * 1. whether the event is still kept: then this publish is a repeat;
 * 2. one pending record per matching endpoint (lua/record-batch.lua), created unless the publish is a
 *    repeat (`repair`, an operator replaying a parked event, creates missing ones anyway);
 * 3. the event itself, first writer wins: of two concurrent publishes of one id exactly one is
 *    new, and both made the same records (the record of a delivery is created once);
 * then one job per delivery still pending, whose id is the delivery id (a re-add is a no-op), in
 * the endpoint's lane (lanes.ts). Records come before the event so that a publish stopped half way
 * (Redis went away) left no event without its records: repeating it with the same id finds no
 * event, and creates or finds every record and job. Two replicas publishing the same Gateway
 * broadcast deliver it once. Jobs are added only once the event is stored, so an attempt always
 * finds it. Throws when it could not store; publish-or-park.ts decides what a throw means.
 * Under load each step is one command for all the publishes of an event-loop turn (scripts.ts:
 * one per endpoint for the records; one for the events, or one per event on a Cluster).
 */
export function createEventStore(ctx: EgressContext, instanceId: string) {
  const { endpoints, scripts, lanes, webhooks: wh, metrics } = ctx;
  return async function store(input: PublishInput & { id: string }, repair: boolean) {
    const event = createEnvelope({ type: input.type, data: input.data, id: input.id, instanceId });
    const targets = input.onlyEndpoint
      ? [...endpoints.values()].filter((e) => e.name === input.onlyEndpoint)
      : [...endpoints.values()].filter((e) => e.enabled && matchesEvent(e.events, event.type) && passesFilter(e, event.data));
    const ids = targets.map((e) => deliveryId(event.id, e.name));
    // A repeated id is told by the event itself, kept for the retention: no key per id besides it.
    let isNew = true;
    let flags: number[] = [];
    if (targets.length) {
      const kept = await scripts.eventKept(event.id);
      const createdAt = Date.now();
      flags = await Promise.all(targets.map((e, i) => scripts.record(event, { deliveryId: ids[i]!, endpoint: e.name }, createdAt, !kept || repair)));
      isNew = !kept && (await scripts.storeEvent({ id: event.id, json: JSON.stringify(event) }));
    }
    // One job per delivery, in its endpoint's lane (lanes.ts); each add is one script call.
    await Promise.all(
      targets.map((e, i) =>
        flags[i] === 1
          ? lanes.queue(e.name).add(
              event.type,
              { deliveryId: ids[i]!, eventId: event.id, endpoint: e.name },
              {
                jobId: ids[i]!,
                attempts: maxAttempts(retryPolicy(e)),
                backoff: { type: "endpoint" },
                // Nothing of a delivery outlives the retention: a completed job kept longer would
                // swallow the job of the same id published again once its event has expired.
                removeOnComplete: { age: Math.min(3_600, Math.ceil(wh.retention / 1000)), count: 10_000 },
                removeOnFail: { age: Math.ceil(wh.retention / 1000) },
              },
            )
          : undefined,
      ),
    );
    // A repeat still adds the jobs of deliveries left pending (a publish whose job was not added,
    // answered 503): that is what makes retrying with the same id safe.
    const queued = ids.filter((_, i) => flags[i] === 1);
    if (!isNew) return { id: event.id, duplicate: true, deliveries: [] as string[], queued };
    metrics?.eventsReceived.inc({ source: input.source ?? "api", type: metrics.eventType(event.type) });
    return { id: event.id, duplicate: false, deliveries: ids.filter((_, i) => flags[i] !== 0), queued };
  };
}
