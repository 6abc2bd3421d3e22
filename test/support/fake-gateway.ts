import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import type { Writable } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { BRIDGE_PREFIX, BRIDGE_SCOPES } from "../../src/gateway/bridge-methods.js";
import { corkUntilTurnEnds } from "../../src/util/cork.js";
import { createEmbeddedRuntime } from "../../src/taskflow/embedded.js";
import { ACTION_NAMES, type ActionName } from "../../src/taskflow/actions.js";
import { fixtureFor, rewriteFixture, SUBSCRIBED_ONLY, type RecordedFrame } from "./gateway-fixtures.js";

type ReqFrame = { type: "req"; id: string; method: string; params?: any };
type ErrorShape = { code: string; message: string; details?: unknown };
/** `delayMs` before the call is handled; `answerDelayMs` (agent) after the run is admitted, before the answer goes out. */
type Script = { delayMs?: number; answerDelayMs?: number; error?: ErrorShape; payload?: unknown; drop?: boolean };
/** A Gateway dedupe entry (`context.dedupe` in the real one), keyed `agent:<idempotencyKey>`. */
type DedupeEntry = { ts: number; ok: boolean; payload: Record<string, unknown>; active: boolean };

/**
 * A Gateway that speaks the real protocol v4 frames on a `ws` server bound to loopback:
 * `connect.challenge` first, a `connect` request checked for protocol 4 and the token (a wrong
 * token gets the real `AUTH_TOKEN_MISMATCH` error and close 1008), `hello-ok`, `tick` events, and
 * `req`/`res` for the bridge plugin's methods, backed by the embedded TaskFlow runtime.
 * `agent` runs replay frames the real Gateway sent for such a run (test/fixtures/gateway, chosen by
 * the stub model's directives in the message, see gateway-fixtures.ts), rewritten to the new run
 * id, session key and text; `session.*` frames reach only sockets that called `sessions.subscribe`.
 * Controls: script the next answer of a method (delay, error, payload, dropped socket), broadcast
 * events, stop ticking, drop every socket, stop and restart on the same port.
 */
export async function startFakeGateway(opts: {
  token: string;
  tickIntervalMs?: number;
  port?: number;
  maxFlows?: number;
  recordFrames?: boolean;
  replyDelayMs?: number;
}) {
  const frames: ReqFrame[] = [];
  const scripts = new Map<string, Script[]>();
  const sockets = new Set<WebSocket>();
  const tickIntervalMs = opts.tickIntervalMs ?? 30_000;
  let ticking = true;
  let wss: WebSocketServer;
  let port = opts.port ?? 0;
  const runtime = createEmbeddedRuntime({
    maxFlows: opts.maxFlows,
    onEvent: (e) => broadcast(e.event, e.payload),
  });
  const replyDelayMs = opts.replyDelayMs ?? 30;
  const dedupe = new Map<string, DedupeEntry>();
  const started = new Set<string>();
  /**
   * The real Gateway's sweep (server-maintenance, every minute there, on each call here): entries of
   * runs no longer active go after 5 min (DEDUPE_TTL_MS), and the oldest beyond 1,000 (DEDUPE_MAX).
   */
  const sweepDedupe = () => {
    const now = Date.now();
    for (const [k, v] of dedupe) if (!v.active && now - v.ts > 300_000) dedupe.delete(k);
    if (dedupe.size > 1_000) {
      const old = [...dedupe]
        .filter(([, v]) => !v.active)
        .sort(([, a], [, b]) => a.ts - b.ts)
        .slice(0, dedupe.size - 1_000);
      for (const [k] of old) dedupe.delete(k);
    }
  };

  const send = (ws: WebSocket, frame: unknown) => {
    if (ws.readyState !== ws.OPEN) return;
    corkUntilTurnEnds((ws as unknown as { _socket?: Writable })._socket);
    ws.send(JSON.stringify(frame));
  };
  function broadcast(event: string, payload: unknown) {
    const subscribedOnly = SUBSCRIBED_ONLY.has(event);
    for (const ws of sockets) if ((ws as any).authed && (!subscribedOnly || (ws as any).sessionsSubscribed)) send(ws, { type: "event", event, payload });
  }
  /** Broadcasts recorded frames in their recorded order, all within one later turn. */
  function replay(frames: RecordedFrame[], delayMs = replyDelayMs, then?: () => void) {
    setTimeout(() => {
      for (const f of frames) broadcast(f.event, f.payload);
      then?.();
    }, delayMs).unref();
  }

  async function handle(ws: WebSocket, req: ReqFrame) {
    if (opts.recordFrames !== false) {
      frames.push(req);
      // The last 10,000 to 20,000 frames: a long run's hundreds of thousands would only grow the heap.
      if (frames.length > 20_000) frames.splice(0, 10_000);
    }
    if (req.method === "connect") {
      const p = req.params ?? {};
      if (p.minProtocol > 4 || p.maxProtocol < 4) {
        send(ws, { type: "res", id: req.id, ok: false, error: { code: "INVALID_REQUEST", message: "protocol mismatch" } });
        return ws.close(1002);
      }
      if (p.auth?.token !== opts.token) {
        send(ws, {
          type: "res",
          id: req.id,
          ok: false,
          error: {
            code: "INVALID_REQUEST",
            message: "unauthorized: gateway token mismatch (provide gateway auth token)",
            details: { code: "AUTH_TOKEN_MISMATCH", authReason: "token_mismatch", canRetryWithDeviceToken: false },
          },
        });
        return ws.close(1008);
      }
      (ws as any).authed = true;
      (ws as any).scopes = p.scopes ?? [];
      return send(ws, {
        type: "res",
        id: req.id,
        ok: true,
        payload: {
          type: "hello-ok",
          protocol: 4,
          server: { version: "fake-2026.9.6", connId: randomUUID() },
          features: { methods: ACTION_NAMES.map((a) => BRIDGE_PREFIX + a), events: ["tick", "task", "agent"] },
          snapshot: {},
          auth: { method: "token", role: "operator", scopes: p.scopes ?? [] },
          policy: { maxPayload: 26_214_400, maxBufferedBytes: 52_428_800, tickIntervalMs },
        },
      });
    }
    if (!(ws as any).authed) return ws.close(1008);
    const script = scripts.get(req.method)?.shift();
    if (script?.delayMs) await new Promise((r) => setTimeout(r, script.delayMs));
    if (script?.drop) return ws.terminate();
    if (script?.error) return send(ws, { type: "res", id: req.id, ok: false, error: script.error });
    if (script && "payload" in script) return send(ws, { type: "res", id: req.id, ok: true, payload: script.payload });
    if (req.method === "agent") {
      const p = req.params ?? {};
      if (typeof p.message !== "string" || typeof p.idempotencyKey !== "string") {
        return send(ws, { type: "res", id: req.id, ok: false, error: { code: "INVALID_REQUEST", message: "invalid agent params" } });
      }
      // As the Gateway does (agent-request-preflight), the run id is the idempotency key, and a
      // repeated key starts nothing (agent-dedupe.ts, replayAgentTurnIfCached): while the run is
      // active the answer is `{ runId, status: "in_flight", sessionKey, agentId }`; once it has
      // ended, the cached terminal answer (`{ runId, status, summary, … }`; its `result` is left
      // out here, the service reads only `runId`).
      const runId: string = p.idempotencyKey;
      const key = `agent:${runId}`;
      sweepDedupe();
      const cached = dedupe.get(key);
      if (cached) {
        const c = cached.payload;
        const payload = cached.active
          ? { runId: c.runId, status: "in_flight", ...(c.sessionKey ? { sessionKey: c.sessionKey } : {}), ...(c.agentId ? { agentId: c.agentId } : {}) }
          : c;
        return send(ws, { type: "res", id: req.id, ok: cached.ok, payload });
      }
      const sessionKey = p.sessionKey ?? `agent:${p.agentId ?? "main"}:main`;
      const frames = rewriteFixture(fixtureFor(p.message), { runId, sessionKey, message: p.message });
      const accepted = { runId, sessionKey, agentId: p.agentId ?? "main", status: "accepted", acceptedAt: Date.now() };
      const entry: DedupeEntry = { ts: Date.now(), ok: true, payload: accepted, active: true };
      dedupe.set(key, entry);
      started.add(runId);
      // The run's end (its lifecycle `end` or `error` frame) turns the entry into the terminal answer.
      const failed = frames.some((f) => f.event === "agent" && f.payload?.stream === "lifecycle" && f.payload?.data?.phase === "error");
      const status = failed ? "error" : "ok";
      replay(frames, replyDelayMs, () =>
        dedupe.set(key, { ts: Date.now(), ok: true, payload: { runId, status, summary: failed ? "failed" : "completed" }, active: false }),
      );
      if (script?.answerDelayMs) await new Promise((r) => setTimeout(r, script.answerDelayMs));
      return send(ws, { type: "res", id: req.id, ok: true, payload: accepted });
    }
    if (req.method === "wake") return send(ws, { type: "res", id: req.id, ok: true, payload: { ok: true } });
    if (req.method === "sessions.subscribe") {
      (ws as any).sessionsSubscribed = true;
      return send(ws, { type: "res", id: req.id, ok: true, payload: { subscribed: true } });
    }
    if (!req.method.startsWith(BRIDGE_PREFIX)) {
      return send(ws, { type: "res", id: req.id, ok: false, error: { code: "INVALID_REQUEST", message: `unknown method: ${req.method}` } });
    }
    const action = req.method.slice(BRIDGE_PREFIX.length) as ActionName;
    const scope = BRIDGE_SCOPES[action];
    if (!scope) {
      return send(ws, { type: "res", id: req.id, ok: false, error: { code: "INVALID_REQUEST", message: `unknown method: ${req.method}` } });
    }
    if (!(ws as any).scopes.includes(scope)) {
      return send(ws, {
        type: "res",
        id: req.id,
        ok: false,
        error: { code: "FORBIDDEN", message: "missing scope", details: { code: "MISSING_SCOPE", missingScope: scope } },
      });
    }
    try {
      const payload = await runtime.invoke(action, req.params);
      // Done, answered later: a crash of the caller can fall in between.
      if (script?.answerDelayMs) await new Promise((r) => setTimeout(r, script.answerDelayMs));
      send(ws, { type: "res", id: req.id, ok: true, payload });
    } catch (err) {
      send(ws, { type: "res", id: req.id, ok: false, error: { code: "INVALID_REQUEST", message: (err as Error).message } });
    }
  }

  let ticker: NodeJS.Timeout | undefined;
  async function listen() {
    wss = new WebSocketServer({ host: "127.0.0.1", port });
    await new Promise<void>((resolve, reject) => {
      wss.once("listening", resolve);
      wss.once("error", reject);
    });
    port = (wss.address() as AddressInfo).port;
    wss.on("connection", (ws) => {
      sockets.add(ws);
      ws.on("close", () => sockets.delete(ws));
      ws.on("message", (data) => {
        let frame: ReqFrame;
        try {
          frame = JSON.parse(data.toString());
        } catch {
          return ws.close(1002);
        }
        if (frame?.type === "req") void handle(ws, frame);
      });
      send(ws, { type: "event", event: "connect.challenge", payload: { nonce: randomUUID(), ts: Date.now() } });
    });
    ticker = setInterval(() => {
      if (ticking) broadcast("tick", { ts: Date.now() });
    }, tickIntervalMs);
  }
  await listen();

  return {
    get url() {
      return `ws://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    frames,
    runtime,
    /** Agent runs started (admitted with a new idempotency key), by run id; a repeated key starts none. */
    runsStarted: () => started.size,
    startedRuns: started as ReadonlySet<string>,
    /** Queues a scripted answer for the next call of `method` (bridge action names are prefixed). */
    script(method: string, s: Script) {
      const name = method.includes(".") || method === "agent" || method === "wake" ? method : BRIDGE_PREFIX + method;
      scripts.set(name, [...(scripts.get(name) ?? []), s]);
    },
    broadcast,
    /** Replays a recorded fixture (rewritten with `rewriteFixture`) to the connected sockets. */
    replay,
    /** Sockets that called `sessions.subscribe`. */
    subscribed: () => [...sockets].filter((ws) => (ws as any).sessionsSubscribed).length,
    setTicking(on: boolean) {
      ticking = on;
    },
    connections: () => sockets.size,
    dropConnections() {
      for (const ws of sockets) ws.terminate();
    },
    async stop() {
      clearInterval(ticker);
      for (const ws of sockets) ws.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    },
    /** Listens again on the same port after `stop()`. */
    restart: listen,
  };
}

export type FakeGateway = Awaited<ReturnType<typeof startFakeGateway>>;
