import { randomUUID } from "node:crypto";

/** The event envelope every delivery carries (docs/outgoing-webhooks.md). `id` is stable for the event and is the dedupe key. */
export type Envelope = { id: string; type: string; timestamp: string; instanceId: string; data: unknown };

/** The id of an event published without one. */
export const newEventId = () => `evt_${randomUUID().replace(/-/g, "")}`;

export function createEnvelope(input: { type: string; data: unknown; id?: string; instanceId: string; now?: number }): Envelope {
  return {
    id: input.id ?? newEventId(),
    type: input.type,
    timestamp: new Date(input.now ?? Date.now()).toISOString(),
    instanceId: input.instanceId,
    data: input.data ?? {},
  };
}
