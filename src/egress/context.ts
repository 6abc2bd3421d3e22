import type { RedisClient } from "../redis.js";
import type { Logger } from "pino";
import type { Endpoint } from "../config/endpoints.js";
import type { Config } from "../config/schema.js";
import type { Metrics } from "../metrics.js";
import type { Lanes } from "./lanes.js";
import type { DeliveryLog, DeliveryStatus } from "./log.js";
import type { EgressScripts } from "./scripts.js";

/**
 * A delivery job: which delivery of which event to which endpoint; `manual` for a replay;
 * `attemptsBefore`, the attempts it had made in another queue before it moved to its lane.
 */
export type JobData = { deliveryId: string; eventId: string; endpoint: string; manual?: boolean; attemptsBefore?: number };

/**
 * What the egress stages share (engine.ts builds it once): the config, the endpoints by name, the
 * producer connection, the lanes (one BullMQ queue per endpoint), the delivery log and the scripts. Each stage module takes
 * this and nothing else that does I/O.
 */
export type EgressContext = {
  webhooks: Config["webhooks"];
  prefix: string;
  log: Logger;
  metrics: Metrics | undefined;
  endpoints: ReadonlyMap<string, Endpoint>;
  redis: RedisClient;
  lanes: Lanes;
  deliveryLog: DeliveryLog;
  scripts: EgressScripts;
  keys: EgressScripts["endpointKeys"] & { replay: (deliveryId: string) => string };
};

/** What `prepare` hands to `send`: the request, and where this attempt stands in the delivery. */
export type Prepared = { attempt: number; from: DeliveryStatus; headers: Record<string, string>; payload: string };
