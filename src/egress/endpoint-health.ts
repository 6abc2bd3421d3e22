import { originOf, type Endpoint } from "../config/endpoints.js";
import type { EgressContext } from "./context.js";
import type { PublishInput } from "./publish-or-park.js";

/**
 * An endpoint's health as operators see it: disabled or not (410, Svix's rule, or an operator),
 * its circuit breaker and the attempts in flight (its lane's active jobs, lanes.ts). The state is one Redis hash per endpoint,
 * written by the gate and finish scripts (scripts.ts) and by `disable` / `enable` here.
 */
export function createEndpointHealth(ctx: EgressContext, publish: (input: PublishInput) => Promise<unknown>) {
  const { redis, keys, endpoints, log } = ctx;

  /**
   * Disables an endpoint and says so with an `endpoint.disabled` event. The event goes to every
   * subscriber and the log to whoever reads logs, so both name the endpoint by its name and
   * origin: a URL's path and query are often its credential (Slack's `/services/T…/B…/<secret>`,
   * `?token=`). The admin API, behind the admin token, shows it whole.
   */
  async function disable(e: Endpoint, reason: string) {
    const set = await redis.hsetnx(keys.state(e.name), "disabled", JSON.stringify({ reason, at: Date.now() }));
    if (set !== 1) return;
    const origin = originOf(e.url);
    log.warn({ endpoint: e.name, origin, reason }, "endpoint disabled");
    await publish({
      type: "endpoint.disabled",
      data: { endpoint: e.name, origin, reason },
      id: `endpoint_disabled_${e.name}_${Date.now()}`,
      source: "system",
    }).catch((err: Error) => log.error({ err: err.message }, "endpoint.disabled event not stored"));
  }

  async function status() {
    return Promise.all(
      [...endpoints.values()].map(async (e) => {
        const [breaker, inFlight] = await Promise.all([redis.hgetall(keys.state(e.name)), ctx.lanes.queue(e.name).getActiveCount()]);
        const disabledRaw = breaker.disabled;
        const n = (v: string | undefined) => (v ? Number(v) : undefined);
        return {
          name: e.name,
          url: e.url,
          events: e.events,
          enabled: e.enabled && !disabledRaw,
          disabled: disabledRaw ? (JSON.parse(disabledRaw) as { reason: string; at: number }) : undefined,
          circuit: {
            state: (breaker.state as "open" | "closed" | undefined) ?? "closed",
            failures: n(breaker.failures) ?? 0,
            openUntil: n(breaker.openUntil),
            lastSuccessAt: n(breaker.lastSuccessAt),
            failingSince: n(breaker.failingSince),
          },
          inFlight,
        };
      }),
    );
  }

  return {
    disable,
    status,
    isDisabled: async (name: string) => (await redis.hexists(keys.state(name), "disabled")) === 1,
    /** Disables an endpoint by name (an operator's choice); false when there is no such endpoint. */
    async disableByName(name: string, reason: string) {
      const e = endpoints.get(name);
      if (!e) return false;
      await disable(e, reason);
      return true;
    },
    /** Re-enables a disabled endpoint and closes its circuit; failed deliveries can then be replayed. */
    async enable(name: string) {
      if (!endpoints.has(name)) return false;
      await redis.del(keys.state(name));
      return true;
    },
  };
}

export type EndpointHealth = ReturnType<typeof createEndpointHealth>;
