import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { AgentRuntime } from "../agent/runtime.js";
import type { Relay } from "../egress/relay.js";
import type { GatewayEvent } from "../gateway/client.js";
import { keyPart } from "../util/key-part.js";

type RunInfo = { endpoint: string; agentId?: string | undefined; sessionKey?: string | undefined };

/**
 * Closes the inbound loop (sender → OpenClaw → agent run → callback; docs/inbound.md, Callback):
 * remembers which inbound endpoint started each run (in Redis, so whichever replica sees the run
 * end can tell), keeps the last reply text of each run from `chat` finals, and when an `agent`
 * lifecycle event says the run ended, publishes `inbound.completed` { endpoint, runId, status,
 * reply } through egress. The id is `inbound_completed_<runId>`: every replica sees the end, one
 * delivery goes out.
 */
export function createRunTracker(opts: { agent: AgentRuntime; relay: Relay; redis: Redis | undefined; prefix: string; log: Logger; ttlMs?: number }) {
  const ttlMs = opts.ttlMs ?? 24 * 3_600_000;
  const local = new Map<string, RunInfo>();
  const replies = new Map<string, string>();
  const ended = new Set<string>();
  const key = (runId: string) => `${opts.prefix}inbound-run:${keyPart(runId)}`; // the Gateway's run id, made safe
  const bounded = <K, V>(m: Map<K, V>) => {
    if (m.size > 10_000) m.delete(m.keys().next().value!);
  };

  async function lookup(runId: string): Promise<RunInfo | undefined> {
    const mine = local.get(runId);
    if (mine) return mine;
    const raw = await opts.redis?.get(key(runId)).catch(() => null);
    return raw ? (JSON.parse(raw) as RunInfo) : undefined;
  }

  async function finish(runId: string, status: "ok" | "error", error: string | undefined, terminalReply?: string) {
    if (ended.has(runId)) return;
    ended.add(runId);
    if (ended.size > 10_000) ended.delete(ended.values().next().value!);
    // The end of a run that failed at once can overtake the answer that admitted it: look twice.
    const info = (await lookup(runId)) ?? (await new Promise((r) => setTimeout(r, 500)).then(() => lookup(runId)));
    if (!info) {
      replies.delete(runId);
      return; // not a run an inbound endpoint started
    }
    // The real Gateway puts the reply in the lifecycle end; a chat final may trail it by a moment.
    if (terminalReply === undefined && !replies.has(runId)) await new Promise((r) => setTimeout(r, 200));
    const reply = terminalReply ?? replies.get(runId);
    opts.relay.emit({
      type: "inbound.completed",
      source: "inbound",
      id: `inbound_completed_${runId}`,
      data: {
        endpoint: info.endpoint,
        runId,
        status,
        ...(info.agentId ? { agentId: info.agentId } : {}),
        ...(info.sessionKey ? { sessionKey: info.sessionKey } : {}),
        ...(reply !== undefined ? { reply } : {}),
        ...(error ? { error } : {}),
      },
    });
    local.delete(runId);
    replies.delete(runId);
  }

  const onEvent = (e: GatewayEvent) => {
    const p = e.payload as Record<string, any> | undefined;
    const runId = typeof p?.runId === "string" ? p.runId : undefined;
    if (!runId) return;
    if (e.event === "chat" && p!.state === "final") {
      const m = p!.message;
      const text = typeof m === "string" ? m : typeof m?.content === "string" ? m.content : Array.isArray(m?.content) ? m.content.filter((x: any) => x?.type === "text").map((x: any) => x.text).join("") : undefined;
      if (text !== undefined) {
        replies.set(runId, text);
        bounded(replies);
      }
    } else if (e.event === "agent" && p!.stream === "lifecycle") {
      const phase = p!.data?.phase;
      // The real Gateway sends the lifecycle end before the chat final, with the reply in it.
      const terminal = typeof p!.data?.terminalReply?.text === "string" ? (p!.data.terminalReply.text as string) : undefined;
      if (phase === "end") void finish(runId, "ok", undefined, terminal).catch((err: Error) => opts.log.error({ err: err.message }, "inbound.completed not published"));
      if (phase === "error") void finish(runId, "error", String(p!.data?.error ?? "run failed")).catch((err: Error) => opts.log.error({ err: err.message }, "inbound.completed not published"));
    }
  };
  const unsubscribe = opts.agent.onEvent(onEvent);

  return {
    /** Called when an inbound endpoint's run was admitted. */
    async started(runId: string, info: RunInfo) {
      local.set(runId, info);
      bounded(local);
      await opts.redis?.set(key(runId), JSON.stringify(info), "PX", ttlMs).catch(() => {});
    },
    close: unsubscribe,
  };
}

export type RunTracker = ReturnType<typeof createRunTracker>;
