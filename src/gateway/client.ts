import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Writable } from "node:stream";
import WebSocket from "ws";
import { corkUntilTurnEnds } from "../util/cork.js";
import { AppError } from "../errors.js";
import { exponentialDelay } from "../util/backoff.js";
import { connectParams, helloOkSchema, parseFrame, isAuthRejection, type EventFrame, type GatewayError, type HelloOk } from "./protocol.js";

export type GatewayEvent = Pick<EventFrame, "event" | "payload" | "seq">;

export interface GatewayClient {
  /** Connects once. Resolves when connected or (unreachable) when reconnecting in the background;
   * rejects with GatewayAuthError when the Gateway refuses the token, which is not retried. */
  start(): Promise<void>;
  call<T = unknown>(method: string, params: unknown, opts?: { timeoutMs?: number }): Promise<T>;
  onEvent(listener: (e: GatewayEvent) => void): () => void;
  readonly connected: boolean;
  readonly hello: HelloOk | undefined;
  close(): Promise<void>;
}

export class GatewayAuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GatewayAuthError";
  }
}

export type GatewayClientOptions = {
  url: string;
  /** Read before every connect, so a rotated token is used on the next reconnect. */
  token: () => Promise<string | undefined>;
  log: Logger;
  version: string;
  scopes?: string[];
  connectTimeoutMs?: number;
  callTimeoutMs?: number;
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
  /** Used when hello-ok carries no policy.tickIntervalMs. */
  defaultTickIntervalMs?: number;
  /**
   * Calls `sessions.subscribe {}` on every connect and reconnect, before `start()` resolves: only
   * such a connection gets `session.message`, `session.tool` and `sessions.changed` (the
   * transcript, tool calls and session lifecycle of every session, docs/openclaw-contract.md §3.2). Egress needs it.
   */
  subscribeSessions?: boolean;
};

type Pending = { resolve: (v: unknown) => void; reject: (e: unknown) => void; timer: NodeJS.Timeout; method: string };

const unavailable = (why: string) => new AppError("gateway_unavailable", `Gateway unavailable: ${why}.`);

/**
 * Protocol v4 client (docs/openclaw-contract.md §3.1): waits for `connect.challenge`, sends `connect` with the
 * token and operator scopes, correlates `req`/`res` by id with a per-call timeout, reconnects with
 * exponential backoff and equal jitter, and declares the socket dead after two tick intervals of
 * silence (the reference client's rule). While disconnected, calls fail at once with
 * `gateway_unavailable` instead of queueing: callers answer 503 fast and nothing runs twice.
 */
export function createGatewayClient(opts: GatewayClientOptions): GatewayClient {
  const log = opts.log.child({ component: "gateway" });
  const connectTimeoutMs = opts.connectTimeoutMs ?? 5_000;
  const callTimeoutMs = opts.callTimeoutMs ?? 10_000;
  const baseMs = opts.reconnectBaseMs ?? 250;
  const maxMs = opts.reconnectMaxMs ?? 10_000;
  const scopes = opts.scopes ?? ["operator.read", "operator.write"];

  const pending = new Map<string, Pending>();
  const listeners = new Set<(e: GatewayEvent) => void>();
  let ws: WebSocket | undefined;
  let ready = false;
  let hello: HelloOk | undefined;
  let closing = false;
  let attempt = 0;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let watchdog: NodeJS.Timeout | undefined;
  let lastFrameAt = 0;

  function failAll(err: AppError) {
    for (const [id, p] of pending) {
      clearTimeout(p.timer);
      pending.delete(id);
      p.reject(err);
    }
  }

  function scheduleReconnect() {
    if (closing || reconnectTimer) return;
    const delay = exponentialDelay(attempt, { baseMs, maxMs, jitter: "equal" });
    attempt++;
    log.info({ delayMs: delay, attempt }, "gateway reconnect scheduled");
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      connectOnce().catch((err) => {
        if (err instanceof GatewayAuthError) log.error({ err: err.message }, "gateway rejected the token; retrying");
        scheduleReconnect();
      });
    }, delay);
    reconnectTimer.unref();
  }

  function connectOnce(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(handshakeTimer);
        if (err) reject(err);
        else resolve();
      };
      const socket = new WebSocket(opts.url, { handshakeTimeout: connectTimeoutMs, maxPayload: 26_214_400 });
      ws = socket;
      const handshakeTimer = setTimeout(() => {
        settle(new Error(`no hello-ok within ${connectTimeoutMs} ms`));
        socket.terminate();
      }, connectTimeoutMs);
      const connectId = randomUUID();

      socket.on("message", async (data) => {
        lastFrameAt = Date.now();
        const frame = parseFrame(data.toString());
        if (!frame) {
          log.warn("gateway sent a frame that is not protocol v4; ignored");
          return;
        }
        if (frame.type === "event") {
          if (frame.event === "connect.challenge" && !ready) {
            const token = await opts.token();
            if (!token) {
              settle(new GatewayAuthError("gateway.token does not resolve to a value"));
              socket.close(1000);
              return;
            }
            socket.send(JSON.stringify({ type: "req", id: connectId, method: "connect", params: connectParams(token, opts.version, scopes) }));
            return;
          }
          if (frame.event === "tick") return;
          for (const l of listeners) {
            try {
              l({ event: frame.event, payload: frame.payload, seq: frame.seq });
            } catch (err) {
              log.error({ err }, "gateway event listener failed");
            }
          }
          return;
        }
        if (frame.type !== "res") return;
        if (frame.id === connectId) {
          if (!frame.ok) {
            const e = frame.error ?? { code: "UNKNOWN", message: "connect refused" };
            settle(isAuthRejection(e) ? new GatewayAuthError(e.message) : new Error(`${e.code}: ${e.message}`));
            socket.close(1000);
            return;
          }
          const parsed = helloOkSchema.safeParse(frame.payload);
          if (!parsed.success) {
            settle(new Error("connect answered without a hello-ok payload"));
            socket.close(1000);
            return;
          }
          hello = parsed.data;
          clearTimeout(handshakeTimer);
          ready = true;
          startWatchdog(hello.policy?.tickIntervalMs ?? opts.defaultTickIntervalMs ?? 30_000);
          log.info({ url: opts.url, protocol: hello.protocol, server: hello.server?.version }, "gateway connected");
          if (!opts.subscribeSessions) {
            attempt = 0;
            return settle();
          }
          // Without the subscription this connection would miss every message, tool and session
          // event: a refused or unanswered subscribe drops the connection, and the reconnect
          // (with backoff that keeps growing until a subscribe succeeds) tries again.
          request(socket, "sessions.subscribe", {}, callTimeoutMs)
            .then(() => {
              attempt = 0;
              log.debug("subscribed to session events");
              settle();
            })
            .catch((err: Error) => {
              log.error({ err: err.message }, "sessions.subscribe failed: reconnecting (message, tool and session events need it)");
              settle(new Error(`sessions.subscribe failed: ${err.message}`));
              socket.terminate();
            });
          return;
        }
        const p = pending.get(frame.id);
        if (!p) return;
        pending.delete(frame.id);
        clearTimeout(p.timer);
        if (frame.ok) p.resolve(frame.payload);
        else p.reject(callError(p.method, frame.error));
      });

      socket.on("error", (err) => {
        log.debug({ err: err.message }, "gateway socket error");
        settle(err);
      });
      socket.on("close", (code) => {
        const wasReady = ready;
        if (ws === socket) {
          ready = false;
          ws = undefined;
          clearInterval(watchdog);
        }
        failAll(unavailable("connection lost"));
        settle(new Error(`socket closed (${code}) before hello-ok`));
        if (wasReady && !closing) log.warn({ code }, "gateway connection lost");
        if (wasReady && !closing) scheduleReconnect();
      });
    });
  }

  function startWatchdog(tickMs: number) {
    clearInterval(watchdog);
    lastFrameAt = Date.now();
    watchdog = setInterval(
      () => {
        if (Date.now() - lastFrameAt > 2 * tickMs) {
          log.warn({ silentMs: Date.now() - lastFrameAt }, "gateway silent for two tick intervals; reconnecting");
          ws?.terminate();
        }
      },
      Math.max(50, Math.floor(tickMs / 2)),
    );
    watchdog.unref();
  }

  function callError(method: string, err: GatewayError | undefined): AppError {
    log.warn({ method, code: err?.code, message: err?.message }, "gateway call refused");
    return new AppError("gateway_error", `The Gateway refused ${method} (${err?.code ?? "UNKNOWN"}).`);
  }

  function request<T>(socket: WebSocket, method: string, params: unknown, timeoutMs: number): Promise<T> {
    const id = randomUUID();
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new AppError("gateway_timeout", `The Gateway did not answer ${method} within ${timeoutMs} ms.`));
      }, timeoutMs);
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer, method });
      corkUntilTurnEnds((socket as unknown as { _socket?: Writable })._socket);
      socket.send(JSON.stringify({ type: "req", id, method, params }), (err) => {
        if (!err) return;
        clearTimeout(timer);
        pending.delete(id);
        reject(unavailable("send failed"));
      });
    });
  }

  return {
    async start() {
      try {
        await connectOnce();
      } catch (err) {
        if (err instanceof GatewayAuthError) throw err;
        log.warn({ url: opts.url, err: (err as Error).message }, "gateway unreachable at startup; will keep retrying");
        scheduleReconnect();
      }
    },
    call<T>(method: string, params: unknown, callOpts: { timeoutMs?: number } = {}) {
      const socket = ws;
      if (!ready || !socket || socket.readyState !== WebSocket.OPEN) return Promise.reject(unavailable("not connected"));
      return request<T>(socket, method, params, callOpts.timeoutMs ?? callTimeoutMs);
    },
    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    get connected() {
      return ready;
    },
    get hello() {
      return hello;
    },
    async close() {
      closing = true;
      clearTimeout(reconnectTimer);
      clearInterval(watchdog);
      const socket = ws;
      failAll(unavailable("client closing"));
      if (!socket || socket.readyState === WebSocket.CLOSED) return;
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          socket.terminate();
          resolve();
        }, 1_000);
        socket.once("close", () => {
          clearTimeout(t);
          resolve();
        });
        socket.close(1000);
      });
    },
  };
}
