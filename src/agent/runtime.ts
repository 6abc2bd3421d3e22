import { randomUUID } from "node:crypto";
import { request } from "undici";
import { AppError } from "../errors.js";
import type { GatewayClient, GatewayEvent } from "../gateway/client.js";
import { LRUCache } from "lru-cache";

/** What an inbound endpoint asks of the Gateway: start an agent run, or wake the agent. */
export type AgentParams = { message: string; idempotencyKey: string; agentId?: string; sessionKey?: string; label?: string };
export type WakeParams = { mode: "now" | "next-heartbeat"; text: string; agentId?: string; sessionKey?: string };
export type WakeResult = { ok: boolean; mode?: string; eventOutcome?: string } & Record<string, unknown>;

export interface AgentRuntime {
  /** Starts a run (the Gateway's `agent` method); resolves once it is admitted. */
  agent(p: AgentParams): Promise<{ runId: string }>;
  wake(p: WakeParams): Promise<WakeResult>;
  /** Gateway event frames (`agent`, `chat`, …): how a run's end is seen. */
  onEvent(listener: (e: GatewayEvent) => void): () => void;
}

/**
 * The real Gateway: `agent` over protocol v4 (run ends arrive as `agent`/`chat` events). `wake` goes
 * through the Gateway's HTTP hooks (`POST <hooks.path>/wake`) when `hooks` is given, because only
 * they say whether the wake was `queued` or `coalesced`; otherwise through the `wake` RPC, which
 * answers `{ ok: true }`.
 */
export function createGatewayAgentRuntime(
  client: Pick<GatewayClient, "call" | "onEvent">,
  hooks?: { baseUrl: string; path: string; token: () => Promise<string | undefined>; timeoutMs: number },
): AgentRuntime {
  return {
    async agent(p) {
      const out = await client.call<{ runId?: string } | undefined>("agent", p);
      return { runId: typeof out?.runId === "string" ? out.runId : p.idempotencyKey };
    },
    async wake(p) {
      if (!hooks) return { mode: p.mode, ...(await client.call<WakeResult>("wake", p)) };
      const token = await hooks.token();
      let res;
      try {
        res = await request(new URL(`${hooks.path.replace(/\/$/, "")}/wake`, hooks.baseUrl), {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${token ?? ""}` },
          body: JSON.stringify(p),
          headersTimeout: hooks.timeoutMs,
          bodyTimeout: hooks.timeoutMs,
        });
      } catch (cause) {
        throw new AppError("gateway_unavailable", "Gateway unavailable: its hooks endpoint did not answer.", { cause });
      }
      const text = await res.body.text();
      if (res.statusCode === 503) throw new AppError("gateway_unavailable", "Gateway unavailable: its hooks answered 503.");
      if (res.statusCode < 200 || res.statusCode >= 300) throw new AppError("gateway_error", `The Gateway's hooks refused the wake (HTTP ${res.statusCode}).`);
      return JSON.parse(text) as WakeResult;
    },
    onEvent: (l) => client.onEvent(l),
  };
}

/**
 * The embedded stand-in, so the whole inbound loop works on a fresh machine: `agent` answers a run
 * id at once and ends the run `replyDelayMs` later with an echo reply, sending the same frames the
 * Gateway does (`agent` lifecycle start/end, `chat` final); `wake` answers `queued`, or
 * `coalesced` for the same text within `coalesceMs`, as the Gateway's hooks do.
 */
export function createEmbeddedAgentRuntime(opts: { replyDelayMs?: number; coalesceMs?: number } = {}): AgentRuntime {
  const listeners = new Set<(e: GatewayEvent) => void>();
  const emit = (event: string, payload: unknown) => {
    for (const l of listeners) l({ event, payload });
  };
  const runs = new LRUCache<string, true>({ max: 10_000 }); // a retried start (same idempotency key) is the same run
  const woken = new LRUCache<string, number>({ max: 10_000 });
  return {
    async agent(p) {
      // As the Gateway does, the run id is the idempotency key.
      const runId = p.idempotencyKey || randomUUID();
      if (runs.has(runId)) return { runId };
      runs.set(runId, true);
      const sessionKey = p.sessionKey ?? `agent:${p.agentId ?? "main"}:main`;
      setTimeout(() => {
        emit("agent", { runId, seq: 1, stream: "lifecycle", ts: Date.now(), sessionKey, data: { phase: "start" } });
        emit("chat", { runId, sessionKey, agentId: p.agentId, seq: 2, state: "final", message: { role: "assistant", content: `Echo: ${p.message}` } });
        emit("agent", { runId, seq: 3, stream: "lifecycle", ts: Date.now(), sessionKey, data: { phase: "end" } });
      }, opts.replyDelayMs ?? 50).unref();
      return { runId };
    },
    async wake(p) {
      const key = `${p.sessionKey ?? p.agentId ?? ""}|${p.mode}|${p.text}`;
      const now = Date.now();
      const last = woken.get(key);
      woken.set(key, now);
      return { ok: true, mode: p.mode, eventOutcome: last !== undefined && now - last < (opts.coalesceMs ?? 60_000) ? "coalesced" : "queued" };
    },
    onEvent(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
}
