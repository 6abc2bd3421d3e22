/**
 * The event types the service sends itself, written out as the contract the tests hold it to (not
 * read from src/, so a type dropped there fails here): the Gateway-derived ones, then the rest.
 */
export const GATEWAY_EVENT_TYPES = [
  "message.received",
  "message.sent",
  "tool.called",
  "tool.completed",
  "session.created",
  "session.ended",
  "error.occurred",
  "cron.finished",
  "task.updated",
] as const;

export const SERVICE_EVENT_TYPES = [
  ...GATEWAY_EVENT_TYPES,
  "flow.created",
  "flow.waiting",
  "flow.resumed",
  "flow.finished",
  "flow.failed",
  "flow.cancelled",
  "inbound.completed",
  "endpoint.disabled",
  "webhook.test",
] as const;
