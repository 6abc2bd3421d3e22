import type { RedisClient } from "../redis.js";
import type { Logger } from "pino";
import type { AgentRuntime } from "../agent/runtime.js";
import type { Relay } from "../egress/relay.js";
import type { GatewayEvent } from "../gateway/client.js";
import { messageText } from "../gateway/messages.js";
import { LRUCache } from "lru-cache";
import { createKeys, hashTag } from "../redis-keys.js";

type RunInfo = { endpoint: string; agentId?: string | undefined; sessionKey?: string | undefined; startedAt?: number };

/** A run as the admin API shows it: what started it, and how it ended once it has. */
export type RunView = {
  runId: string;
  endpoint: string;
  agentId?: string | undefined;
  sessionKey?: string | undefined;
  startedAt?: number | undefined;
  status: "running" | "ok" | "error";
  endedAt?: number | undefined;
  error?: string | undefined;
  /** The `inbound.completed` event's id, to find its deliveries. */
  completionEventId?: string | undefined;
};

/** Runs kept per endpoint for the dashboard: the newest, not a history (the run keys expire with the TTL). */
export const RECENT_RUNS_PER_ENDPOINT = 50;

/**
 * Closes the inbound loop (sender → OpenClaw → agent run → callback; docs/inbound.md, Callback):
 * remembers which inbound endpoint started each run (in Redis, so whichever replica sees the run
 * end can tell), keeps the last reply text of each run from `chat` finals, and when an `agent`
 * lifecycle event says the run ended, publishes `inbound.completed` { endpoint, runId, status,
 * reply } through egress. The id is `inbound_completed_<runId>`: every replica sees the end, one
 * delivery goes out.
 *
 * For the admin API it also keeps, per inbound endpoint, a list of its newest run ids (at most
 * RECENT_RUNS_PER_ENDPOINT; LPUSH + LTRIM), and writes how each run ended into the run's key.
 */
export function createRunTracker(opts: { agent: AgentRuntime; relay: Relay; redis: RedisClient | undefined; prefix: string; log: Logger; ttlMs?: number }) {
  const ttlMs = opts.ttlMs ?? 24 * 3_600_000;
  // Bounded: runs this replica started, reply texts seen, and runs already ended (the newest 10,000 each).
  const local = new LRUCache<string, RunInfo>({ max: 10_000 });
  const replies = new LRUCache<string, string>({ max: 10_000 });
  const ended = new LRUCache<string, true>({ max: 10_000 });
  const { run: key, recent: recentKey } = createKeys(opts.prefix).inbound;

  async function lookup(runId: string): Promise<RunInfo | undefined> {
    const mine = local.get(runId);
    if (mine) return mine;
    const raw = await opts.redis?.get(key(runId)).catch(() => null);
    return raw ? (JSON.parse(raw) as RunInfo) : undefined;
  }

  async function finish(runId: string, status: "ok" | "error", error: string | undefined, terminalReply?: string) {
    if (ended.has(runId)) return;
    ended.set(runId, true);
    // The end of a run that failed at once can overtake the answer that admitted it: look twice.
    const info = (await lookup(runId)) ?? (await new Promise((r) => setTimeout(r, 500)).then(() => lookup(runId)));
    if (!info) {
      replies.delete(runId);
      return; // not a run an inbound endpoint started
    }
    // The real Gateway puts the reply in the lifecycle end; a chat final may trail it by a moment.
    if (terminalReply === undefined && !replies.has(runId)) await new Promise((r) => setTimeout(r, 200));
    const reply = terminalReply ?? replies.get(runId);
    const outcome = { ...info, status, endedAt: Date.now(), ...(error ? { error: error.slice(0, 500) } : {}) };
    // XX: a run whose key has expired is not written back without a TTL.
    await opts.redis?.set(key(runId), JSON.stringify(outcome), "KEEPTTL", "XX").catch(() => {});
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
    // The Gateway's `chat` and `agent` frames, as far as this reads them (docs/openclaw-contract.md).
    const p = e.payload as
      | {
          runId?: unknown;
          state?: unknown;
          message?: unknown;
          stream?: unknown;
          data?: { phase?: unknown; error?: unknown; terminalReply?: { text?: unknown } };
        }
      | undefined;
    const runId = typeof p?.runId === "string" ? p.runId : undefined;
    if (!runId) return;
    if (e.event === "chat" && p!.state === "final") {
      const text = messageText(p!.message);
      if (text !== undefined) {
        replies.set(runId, text);
      }
    } else if (e.event === "agent" && p!.stream === "lifecycle") {
      const phase = p!.data?.phase;
      // The real Gateway sends the lifecycle end before the chat final, with the reply in it.
      const text = p!.data?.terminalReply?.text;
      const terminal = typeof text === "string" ? text : undefined;
      if (phase === "end")
        void finish(runId, "ok", undefined, terminal).catch((err: Error) => opts.log.error({ err: err.message }, "inbound.completed not published"));
      if (phase === "error")
        void finish(runId, "error", String(p!.data?.error ?? "run failed")).catch((err: Error) =>
          opts.log.error({ err: err.message }, "inbound.completed not published"),
        );
    }
  };
  const unsubscribe = opts.agent.onEvent(onEvent);

  return {
    /** Called when an inbound endpoint's run was admitted. */
    async started(runId: string, info: RunInfo) {
      const withTime = { ...info, startedAt: info.startedAt ?? Date.now() };
      local.set(runId, withTime);
      if (!opts.redis) return;
      const runKey = key(runId);
      const listKey = recentKey(info.endpoint);
      // A run id that names its endpoint (`inbound:<endpoint>:…`, the usual case) puts the run on the
      // list's hash tag: one MULTI. Any other run id has a tag of its own (redis-keys.ts), so the
      // run is set first and alone; `recent` leaves out a listed run whose key is missing.
      const together = hashTag(runKey) === hashTag(listKey);
      if (!together) {
        const stored = await opts.redis.set(runKey, JSON.stringify(withTime), "PX", ttlMs).catch(() => null);
        if (stored === null) return;
      }
      const m = opts.redis.multi();
      if (together) m.set(runKey, JSON.stringify(withTime), "PX", ttlMs);
      m.lpush(listKey, runId);
      m.ltrim(listKey, 0, RECENT_RUNS_PER_ENDPOINT - 1);
      m.pexpire(listKey, ttlMs);
      await m.exec().catch(() => {});
    },
    /** The newest runs of each named endpoint (at most `limit` each), newest first; a run whose key expired is left out. */
    async recent(endpoints: readonly string[], limit = RECENT_RUNS_PER_ENDPOINT): Promise<RunView[]> {
      const redis = opts.redis;
      if (!redis) return [];
      const lists = await Promise.all(endpoints.map((e) => redis.lrange(recentKey(e), 0, Math.min(limit, RECENT_RUNS_PER_ENDPOINT) - 1)));
      const ids = [...new Set(lists.flat())];
      if (!ids.length) return [];
      // One GET each, not an MGET: the runs of several endpoints (and runs on tags of their own) lie on
      // different slots of a Cluster.
      const raws = await Promise.all(ids.map((id) => redis.get(key(id))));
      const runs: RunView[] = [];
      ids.forEach((runId, i) => {
        const raw = raws[i];
        if (!raw) return;
        const r = JSON.parse(raw) as RunInfo & { status?: "ok" | "error"; endedAt?: number; error?: string };
        runs.push({
          runId,
          endpoint: r.endpoint,
          agentId: r.agentId,
          sessionKey: r.sessionKey,
          startedAt: r.startedAt,
          status: r.status ?? "running",
          endedAt: r.endedAt,
          error: r.error,
          ...(r.status ? { completionEventId: `inbound_completed_${runId}` } : {}),
        });
      });
      return runs.sort((a, b) => (b.startedAt ?? 0) - (a.startedAt ?? 0));
    },
    close: unsubscribe,
  };
}

export type RunTracker = ReturnType<typeof createRunTracker>;
