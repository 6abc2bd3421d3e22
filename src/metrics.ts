import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/**
 * Ingress metrics. Labels stay bounded: route ids (from config), status classes and error codes
 * (from the ERROR_STATUS table and the TaskFlow outcome codes), never raw paths or ids.
 */
export function createMetrics(registry: Registry = new Registry(), opts: { defaultMetrics?: boolean } = {}) {
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return {
    registry,
    ingressRequests: new Counter({
      name: "ocwh_ingress_requests_total",
      help: "Ingress requests by route, HTTP status and error code.",
      labelNames: ["route", "status", "code"] as const,
      registers: [registry],
    }),
    ingressDuration: new Histogram({
      name: "ocwh_ingress_request_duration_seconds",
      help: "Ingress request latency by route.",
      labelNames: ["route"] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    limitRejections: new Counter({
      name: "ocwh_ingress_limit_rejections_total",
      help: "Requests refused by the rate limit or the in-flight limit.",
      labelNames: ["route", "limit"] as const,
      registers: [registry],
    }),
    eventsDropped: new Counter({
      name: "ocwh_egress_events_dropped_total",
      help: "Gateway or flow events dropped because the relay buffer was full while Redis was away.",
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
