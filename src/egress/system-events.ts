/**
 * The event types and ids that belong to the service (issue #16): a publisher on `POST /v1/events`
 * that could use them would deliver a forged `inbound.completed` or `message.received` to
 * subscribers, and, with the real event's id, make the real one a "duplicate" that is never sent.
 */

/**
 * Type families the service emits: the Gateway-derived types (gateway-events.ts: message, tool,
 * session, error, cron, task), the flow lifecycle (flow-events.ts), `inbound.completed`
 * (inbound/runs.ts), `endpoint.disabled` and `webhook.test` (engine.ts). Whole families, not only
 * today's names, so a type added later is covered; the same list as the bridge plugin's
 * `webhooks_emit` (gateway-plugin/emit.js RESERVED), which test/publish-reserved.test.ts checks.
 */
export const SYSTEM_TYPE_FAMILIES = ["message", "session", "tool", "error", "cron", "task", "flow", "endpoint", "inbound", "webhook"] as const;

/** Compared without case: `Message.Sent` is not a name a publisher needs, and some receivers fold case. */
export const isSystemType = (type: string) => {
  const t = type.toLowerCase();
  return SYSTEM_TYPE_FAMILIES.some((f) => t.startsWith(`${f}.`));
};

/**
 * Id namespaces the service builds its own event ids in: `gw_…` (every Gateway-derived event),
 * `cron_…`, `task_…`, `flow_…`, `inbound_…` (`inbound_completed_<runId>`), `endpoint_…`
 * (`endpoint_disabled_<name>_<ms>`), and the ids it makes up for events published without one,
 * `evt_` + 32 hex (envelope.ts; `webhook.test` uses them too). Only that exact `evt_` shape is
 * reserved: Stripe's `evt_1Nq…` ids, which a relay may well reuse, stay the publisher's. Ids are
 * compared exactly everywhere (dedupe keys, Redis keys), so another case is another id.
 */
const SYSTEM_ID = /^(?:(?:gw|cron|task|flow|inbound|endpoint)_|evt_[0-9a-f]{32}$)/;
export const SYSTEM_ID_NAMESPACES = "gw_, cron_, task_, flow_, inbound_, endpoint_, and evt_ followed by 32 hex digits";

export const isSystemEventId = (id: string) => SYSTEM_ID.test(id);
