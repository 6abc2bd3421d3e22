import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export const METRIC_PREFIX = "openclaw_webhooks_";
const n = (name: string) => METRIC_PREFIX + name;

/**
 * Every metric the service exports, on one registry. Labels stay bounded: route ids and endpoint
 * names (from config), Gateway method names (a fixed set), status classes, error codes (the
 * ERROR_STATUS table and TaskFlow outcome codes) and event types (capped, see `eventType`); never
 * raw paths or ids. Gauges that need a look at Redis (queue depth, endpoint health) are filled at
 * scrape time by `setCollectors`.
 */
/** Latency buckets in seconds, 1 ms to 10 s: the request and Gateway call histograms share them. */
const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createMetrics(registry: Registry = new Registry(), opts: { defaultMetrics?: boolean } = {}) {
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  const registers = [registry];
  const collectors: {
    queue?: () => Promise<Record<string, number>>;
    endpoints?: () => Promise<{ name: string; disabled: boolean; circuitOpen: boolean }[]>;
    backlog?: () => Promise<{ name: string; pending: number; oldestAgeMs: number }[]>;
    gatewayConnected?: () => boolean;
    parked?: () => Promise<number>;
  } = {};
  // The two backlog gauges read the same thing: prom-client collects every metric of a scrape at
  // once, so the second asks while the first's read is in flight and gets the same answer.
  let backlogRead: ReturnType<NonNullable<typeof collectors.backlog>> | undefined;
  const backlog = () => (backlogRead ??= collectors.backlog!().finally(() => (backlogRead = undefined)));
  const seenTypes = new Set<string>();

  const m = {
    registry,
    ingressRequests: new Counter({
      name: n("ingress_requests_total"),
      help: "Ingress requests by route, HTTP status and error code.",
      labelNames: ["route", "status", "code"] as const,
      registers,
    }),
    ingressDuration: new Histogram({
      name: n("ingress_request_duration_seconds"),
      help: "Ingress request latency by route.",
      labelNames: ["route"] as const,
      buckets: LATENCY_BUCKETS_S,
      registers,
    }),
    limitRejections: new Counter({
      name: n("ingress_limit_rejections_total"),
      help: "Requests refused by the rate limit or the in-flight limit.",
      labelNames: ["route", "limit"] as const,
      registers,
    }),
    authLockouts: new Counter({
      name: n("auth_lockout_rejections_total"),
      help: "Requests refused with 429 auth_rate_limited: their client sent too many wrong credentials (limits.authFailures).",
      registers,
    }),
    gatewayCalls: new Counter({
      name: n("gateway_calls_total"),
      help: "Gateway RPC calls by method and outcome (ok, error, timeout, unavailable).",
      labelNames: ["method", "outcome"] as const,
      registers,
    }),
    gatewayCallDuration: new Histogram({
      name: n("gateway_call_duration_seconds"),
      help: "Gateway RPC latency by method.",
      labelNames: ["method"] as const,
      buckets: LATENCY_BUCKETS_S,
      registers,
    }),
    gatewayConnected: new Gauge({
      name: n("gateway_connected"),
      help: "1 when the Gateway WebSocket is connected (absent in embedded mode).",
      registers,
      collect() {
        if (collectors.gatewayConnected) this.set(collectors.gatewayConnected() ? 1 : 0);
      },
    }),
    eventsReceived: new Counter({
      name: n("events_received_total"),
      help: "Events published for delivery by source (gateway, flow, api, inbound, system) and type.",
      labelNames: ["source", "type"] as const,
      registers,
    }),
    eventsDropped: new Counter({
      name: n("events_dropped_total"),
      help: "Events dropped: the relay buffer was full while Redis was away, or the parked list was full.",
      registers,
    }),
    eventsParked: new Counter({
      name: n("events_parked_total"),
      help: "Events parked by source: they could not be stored or queued for a reason other than Redis being away.",
      labelNames: ["source"] as const,
      registers,
    }),
    parkedEvents: new Gauge({
      name: n("events_parked"),
      help: "Parked events waiting for an operator (replay or discard), within the retention.",
      registers,
      async collect() {
        if (!collectors.parked) return;
        const count = await collectors.parked().catch(() => undefined);
        if (count !== undefined) this.set(count);
      },
    }),
    deliveries: new Counter({
      name: n("deliveries_total"),
      help: "Delivery attempts by endpoint and outcome (delivered, retry, failed, disabled).",
      labelNames: ["endpoint", "outcome"] as const,
      registers,
    }),
    deliveriesStalled: new Counter({
      name: n("deliveries_stalled_total"),
      help: "Deliveries handed back by the stalled check, by queue: their worker died, or a Redis restart left them in no worker's hands. Each is attempted again (same webhook-id).",
      labelNames: ["queue"] as const,
      registers,
    }),
    laneWorkersReplaced: new Counter({
      name: n("lane_workers_replaced_total"),
      help: "Lane workers replaced because they took no job while jobs waited (after a Redis failover, as a rule).",
      labelNames: ["endpoint"] as const,
      registers,
    }),
    deliveryDuration: new Histogram({
      name: n("delivery_duration_seconds"),
      help: "Delivery attempt latency (request sent to answer read) by endpoint.",
      labelNames: ["endpoint"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    deliveryAttempt: new Histogram({
      name: n("delivery_attempt_number"),
      help: "The attempt number of each delivery attempt (1 = first try).",
      labelNames: ["endpoint"] as const,
      buckets: [1, 2, 3, 4, 5, 8, 12, 20, 50],
      registers,
    }),
    queueJobs: new Gauge({
      name: n("queue_jobs"),
      help: "Delivery jobs in BullMQ by state.",
      labelNames: ["state"] as const,
      registers,
      async collect() {
        if (!collectors.queue) return;
        const counts = await collectors.queue().catch(() => undefined);
        for (const [state, count] of Object.entries(counts ?? {})) this.set({ state }, count);
      },
    }),
    endpointState: new Gauge({
      name: n("endpoint_state"),
      help: "1 when an endpoint is in the state (disabled, circuit_open), else 0.",
      labelNames: ["endpoint", "state"] as const,
      registers,
      async collect() {
        if (!collectors.endpoints) return;
        const list = await collectors.endpoints().catch(() => undefined);
        for (const e of list ?? []) {
          this.set({ endpoint: e.name, state: "disabled" }, e.disabled ? 1 : 0);
          this.set({ endpoint: e.name, state: "circuit_open" }, e.circuitOpen ? 1 : 0);
        }
      },
    }),
    endpointBacklog: new Gauge({
      name: n("endpoint_backlog"),
      help: "Deliveries waiting per endpoint (first attempts, scheduled retries, in flight): the shared Redis's count, the same on every replica.",
      labelNames: ["endpoint"] as const,
      registers,
      async collect() {
        if (!collectors.backlog) return;
        for (const e of (await backlog().catch(() => undefined)) ?? []) this.set({ endpoint: e.name }, e.pending);
      },
    }),
    endpointOldestPending: new Gauge({
      name: n("endpoint_oldest_pending_seconds"),
      help: "How long the oldest waiting delivery of each endpoint has waited since its publish or last attempt (0 when none waits).",
      labelNames: ["endpoint"] as const,
      registers,
      async collect() {
        if (!collectors.backlog) return;
        for (const e of (await backlog().catch(() => undefined)) ?? []) this.set({ endpoint: e.name }, e.oldestAgeMs / 1000);
      },
    }),
    /** Wires the scrape-time gauges to the parts that can answer them. */
    setCollectors(c: typeof collectors) {
      Object.assign(collectors, c);
    },
    /** An event type as a label: the first 200 distinct types, then "other" (types are open strings). */
    eventType(type: string): string {
      if (seenTypes.has(type)) return type;
      if (seenTypes.size >= 200) return "other";
      seenTypes.add(type);
      return type;
    },
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
