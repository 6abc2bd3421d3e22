import type { Metrics } from "../metrics.js";
import type { GatewayClient } from "./client.js";

/**
 * The Gateway client with each call counted and timed by method and outcome. Label children are
 * cached per method: the label lookup is on every ingress request's path.
 */
export function instrumented(client: GatewayClient, metrics: Metrics): Pick<GatewayClient, "call" | "onEvent"> {
  const children = new Map<
    string,
    { timer: ReturnType<Metrics["gatewayCallDuration"]["labels"]>; outcomes: Map<string, ReturnType<Metrics["gatewayCalls"]["labels"]>> }
  >();
  const forMethod = (method: string) => {
    let c = children.get(method);
    if (!c) children.set(method, (c = { timer: metrics.gatewayCallDuration.labels(method), outcomes: new Map() }));
    return c;
  };
  const count = (c: ReturnType<typeof forMethod>, method: string, outcome: string) => {
    let counter = c.outcomes.get(outcome);
    if (!counter) c.outcomes.set(outcome, (counter = metrics.gatewayCalls.labels(method, outcome)));
    counter.inc();
  };
  return {
    onEvent: (l) => client.onEvent(l),
    async call<T>(method: string, params: unknown, opts?: { timeoutMs?: number }): Promise<T> {
      const c = forMethod(method);
      const started = performance.now();
      try {
        const out = await client.call<T>(method, params, opts);
        count(c, method, "ok");
        return out;
      } catch (err) {
        const code = (err as { code?: string }).code;
        count(c, method, code === "gateway_timeout" ? "timeout" : code === "gateway_unavailable" ? "unavailable" : "error");
        throw err;
      } finally {
        c.timer.observe((performance.now() - started) / 1000);
      }
    },
  };
}
