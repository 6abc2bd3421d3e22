import { serve } from "@hono/node-server";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Hono } from "hono";
import type { AppEnv } from "./app-env.js";
import type { Config } from "./config/schema.js";

export type RunningServer = { server: Server; port: number; url: string; close: (graceMs?: number) => Promise<void> };

export type ServerOptions = {
  host: string;
  port: number;
  bodyTimeoutMs: number;
  /** Connections beyond this are closed on arrival (Node's `server.maxConnections`). Default unlimited. */
  maxConnections?: number;
  /** Time to send a request head (default 10 s). */
  headersTimeoutMs?: number;
  /** Time to send a whole request (default bodyTimeoutMs + 10 s). */
  requestTimeoutMs?: number;
};

/** The server options of the config (server.* and limits.bodyTimeoutMs). */
export const serverOptionsOf = (config: Config): ServerOptions => ({
  host: config.server.host,
  port: config.server.port,
  bodyTimeoutMs: config.limits.bodyTimeoutMs,
  maxConnections: config.server.maxConnections,
  headersTimeoutMs: config.server.headersTimeoutMs,
  ...(config.server.requestTimeoutMs !== undefined ? { requestTimeoutMs: config.server.requestTimeoutMs } : {}),
});

/**
 * Serves the app over Node's HTTP server. The ingress enforces its own body deadline; Node's
 * `requestTimeout` is only a backstop, checked every second instead of Node's default 30 s.
 * `headersTimeout` cuts off clients that never finish a request head, and `maxConnections` bounds
 * what anonymous clients can hold open at all.
 */
export function startServer(app: Hono<AppEnv>, opts: ServerOptions): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const server = serve(
      {
        fetch: app.fetch,
        hostname: opts.host,
        port: opts.port,
        serverOptions: {
          headersTimeout: opts.headersTimeoutMs ?? 10_000,
          requestTimeout: opts.requestTimeoutMs ?? opts.bodyTimeoutMs + 10_000,
          connectionsCheckingInterval: 1_000,
          keepAliveTimeout: 5_000,
        },
      },
      (info: AddressInfo) => {
        const host = info.family === "IPv6" ? `[${info.address}]` : info.address;
        resolve({
          server: server as Server,
          port: info.port,
          url: `http://${host === "0.0.0.0" || host === "[::]" ? "127.0.0.1" : host}:${info.port}`,
          close: (graceMs = 10_000) => closeServer(server as Server, graceMs),
        });
      },
    ) as Server;
    if (opts.maxConnections !== undefined) server.maxConnections = opts.maxConnections;
    server.once("error", reject);
  });
}

/** Stops accepting, lets in-flight requests finish for up to `graceMs`, then drops what is left. */
function closeServer(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
