import type { Job } from "bullmq";
import { AppError } from "../errors.js";
import type { EgressContext, JobData } from "./context.js";

/** Why a replay was not started: an AppError the admin API answers as it is (404 / 409). */
export class ReplayRefused extends AppError {
  constructor(code: "not_found" | "delivery_pending" | "replay_pending" | "endpoint_disabled", message: string) {
    super(code, message);
    this.name = "ReplayRefused";
  }
}

/**
 * Manual attempts: one delivery again, or every failed delivery of an endpoint since a time. A
 * marker taken with SET NX (`keys.replay`) makes a second request for the same delivery fail
 * (409) until the first attempt has ended (`settled`, called by the worker), so no replay runs
 * twice even when asked twice at once. A delivery still pending is left to its schedule.
 */
export function createReplay(ctx: EgressContext) {
  const { redis, keys, endpoints, deliveryLog, lanes } = ctx;

  /** The checks a replay makes before it takes its marker. */
  async function replayable(id: string) {
    // The record's own fields (one HMGET), not its attempts.
    const [rec] = await deliveryLog.summaries([id]);
    if (!rec) throw new ReplayRefused("not_found", `no delivery ${id}`);
    const e = endpoints.get(rec.endpoint);
    if (!e) throw new ReplayRefused("not_found", `endpoint ${rec.endpoint} is no longer configured`);
    if (rec.status === "pending") throw new ReplayRefused("delivery_pending", "the delivery is still scheduled; it will be attempted on its schedule");
    if (await redis.hexists(keys.state(e.name), "disabled")) throw new ReplayRefused("endpoint_disabled", `endpoint ${e.name} is disabled; enable it first`);
    return { rec, e };
  }

  /** One manual, one-shot attempt of a delivery. */
  async function replay(id: string): Promise<{ jobId: string }> {
    const { rec, e } = await replayable(id);
    const jobId = `${id}_replay_${Date.now()}`;
    const taken = await redis.set(keys.replay(id), jobId, "PX", 2 * e.timeoutMs + 60_000, "NX");
    if (taken !== "OK") throw new ReplayRefused("replay_pending", "a replay of this delivery is already under way");
    try {
      await lanes
        .queue(e.name)
        .add(
          rec.eventType,
          { deliveryId: id, eventId: rec.eventId, endpoint: e.name, manual: true },
          { jobId, attempts: 1, removeOnComplete: true, removeOnFail: { age: 3_600 } },
        );
    } catch (err) {
      await redis.del(keys.replay(id)).catch(() => {});
      throw err;
    }
    return { jobId };
  }

  /**
   * Replays every failed delivery of an endpoint updated since `since` (ms); counts what started.
   * A dry run makes the same checks, the replay marker included, and starts nothing: its `started`
   * is what the real run would start unless deliveries change in between (Convoy's dry run).
   */
  async function replayFailed(endpoint: string, since: number, opts: { dryRun?: boolean } = {}) {
    if (!endpoints.has(endpoint)) throw new ReplayRefused("not_found", `no endpoint ${endpoint}`);
    if (await redis.hexists(keys.state(endpoint), "disabled"))
      throw new ReplayRefused("endpoint_disabled", `endpoint ${endpoint} is disabled; enable it first`);
    const ids = await deliveryLog.list({ status: "failed", endpoint, since, limit: 10_000 });
    let started = 0;
    const skipped: { id: string; reason: string }[] = [];
    for (const id of ids) {
      try {
        if (opts.dryRun) {
          await replayable(id);
          if (await redis.exists(keys.replay(id))) throw new ReplayRefused("replay_pending", "a replay of this delivery is already under way");
        } else await replay(id);
        started++;
      } catch (err) {
        if (!(err instanceof ReplayRefused)) throw err;
        skipped.push({ id, reason: err.code });
      }
    }
    return { dryRun: opts.dryRun === true, started, skipped };
  }

  /** A manual attempt ended (either way): its marker goes, so the delivery can be replayed again. */
  function settled(job: Job<JobData> | undefined) {
    if (job?.data.manual) void redis.del(keys.replay(job.data.deliveryId)).catch(() => {});
  }

  return { replay, replayFailed, settled };
}
