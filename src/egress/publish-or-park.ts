import type { Logger } from "pino";
import type { Metrics } from "../metrics.js";
import { newEventId } from "./envelope.js";
import { isTransient, reasonOf } from "./failure.js";
import type { EventSource } from "./gateway-events.js";
import { isParkedId } from "./ids.js";
import type { ParkedEvent, ParkedInput, ParkedStore } from "./parked.js";

export type PublishInput = { type: string; data: unknown; id?: string | undefined; source?: EventSource | undefined; onlyEndpoint?: string | undefined };
export type PublishResult = {
  id: string;
  duplicate: boolean;
  deliveries: string[];
  /** Set when the event could not be stored or queued for good: it waits in the parked list. */
  parked?: { parkedId: string; reason: string; storedIn: ParkedEvent["storedIn"] };
};
/** The engine's own publish: stores the event and queues its jobs, or throws. */
export type StoreEvent = (
  input: PublishInput & { id: string },
  repair: boolean,
) => Promise<{ id: string; duplicate: boolean; deliveries: string[]; queued: string[] }>;

/** Why a parked event was not replayed or discarded: the admin API maps these to 404 / 409. */
export class ParkedRefused extends Error {
  constructor(
    readonly code: "not_found" | "not_replayable" | "replay_failed",
    message: string,
  ) {
    super(message);
    this.name = "ParkedRefused";
  }
}

/**
 * The publish every caller uses (the relay for Gateway and flow events, `POST /v1/events`,
 * inbound callbacks, system events): an event that fails because Redis is away throws, for the
 * caller to keep and retry (the relay) or answer 503 (the API); one that fails for any other
 * reason is parked, logged and counted, and the call resolves, so the events after it go ahead.
 * The replay of a parked event runs the same publish with `repair` (missing records of a kept
 * event are created) and removes the entry once it is stored.
 *
 * @param opts.ready whether Redis's connections are up: a failure while they are not is transient whatever it says
 */
export function createPublisher(opts: { store: StoreEvent; parked: ParkedStore; ready: () => boolean; log: Logger; metrics?: Metrics | undefined }) {
  const { store, parked, log } = opts;

  async function park(input: ParkedInput, reason: string): Promise<ParkedEvent> {
    const entry = await parked.park(input, reason);
    opts.metrics?.eventsParked.inc({ source: entry.source });
    log.error(
      {
        eventId: entry.eventId,
        type: entry.type,
        source: entry.source,
        reason: entry.reason,
        parkedId: entry.parkedId,
        storedIn: entry.storedIn,
        times: entry.times,
      },
      "event parked: it could not be stored or queued (replay it once the cause is fixed)",
    );
    return entry;
  }

  /** True when the failure is Redis being away (throw it), false when the event must be parked. */
  const transient = (err: unknown) => !opts.ready() || isTransient(err);

  async function publish(input: PublishInput): Promise<PublishResult> {
    // The id is fixed before the first try, so a retry or a replay is the same event.
    const event = { ...input, id: input.id ?? newEventId() };
    try {
      const { queued: _, ...out } = await store(event, false);
      return out;
    } catch (err) {
      if (transient(err)) throw err;
      const entry = await park(event, reasonOf(err));
      return { id: event.id, duplicate: false, deliveries: [], parked: { parkedId: entry.parkedId, reason: entry.reason, storedIn: entry.storedIn } };
    }
  }

  async function replay(id: string) {
    const entry = isParkedId(id) ? await parked.get(id) : undefined;
    if (!entry) throw new ParkedRefused("not_found", `no parked event ${id}`);
    if (!entry.replayable) throw new ParkedRefused("not_replayable", `${entry.reason}; nothing to replay, discard it`);
    const input = { id: entry.eventId, type: entry.type, data: entry.data, source: entry.source, onlyEndpoint: entry.onlyEndpoint };
    let out;
    try {
      out = await store(input, true);
    } catch (err) {
      if (transient(err)) throw err;
      const again = await park(input, reasonOf(err));
      throw new ParkedRefused("replay_failed", `still refused: ${again.reason}`);
    }
    await parked.remove(id);
    log.info({ eventId: entry.eventId, type: entry.type, parkedId: id, deliveries: out.queued.length }, "parked event replayed");
    return { parkedId: id, eventId: entry.eventId, duplicate: out.duplicate, deliveries: out.queued };
  }

  async function discard(id: string) {
    const entry = isParkedId(id) ? await parked.get(id) : undefined;
    if (!entry || !(await parked.remove(id))) throw new ParkedRefused("not_found", `no parked event ${id}`);
    log.warn({ eventId: entry.eventId, type: entry.type, parkedId: id }, "parked event discarded by an operator");
    return { parkedId: id, eventId: entry.eventId };
  }

  return {
    publish,
    park,
    replay,
    discard,
    list: (limit?: number) => parked.list(limit),
    get: (id: string) => (isParkedId(id) ? parked.get(id) : Promise.resolve(undefined)),
    count: () => parked.count(),
  };
}
