import { randomUUID } from "node:crypto";

/** Seed 002's envelope. `id` is stable for the event and is the dedupe key. */
export type Envelope = { id: string; type: string; timestamp: string; instanceId: string; data: unknown };

export function createEnvelope(input: { type: string; data: unknown; id?: string; instanceId: string; now?: number }): Envelope {
  return {
    id: input.id ?? `evt_${randomUUID().replace(/-/g, "")}`,
    type: input.type,
    timestamp: new Date(input.now ?? Date.now()).toISOString(),
    instanceId: input.instanceId,
    data: input.data ?? {},
  };
}

/** One delivery per (event, endpoint): its id is the BullMQ job id and the `webhook-id`. */
export const deliveryId = (eventId: string, endpoint: string) => `dlv_${eventId}_${endpoint}`;
