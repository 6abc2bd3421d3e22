import { serve } from "@hono/node-server";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Hono } from "hono";
import type { AppEnv } from "./app-env.js";

export type RunningServer = { server: Server; port: number; url: string; close: (graceMs?: number) => Promise<void> };

/**
 * Serves the app over Node's HTTP server. The ingress enforces its own body deadline; Node's
 * `requestTimeout` is only a backstop, checked every second instead of Node's default 30 s.
 */
export function startServer(app: Hono<AppEnv>, opts: { host: string; port: number; bodyTimeoutMs: number }): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const server = serve(
      {
        fetch: app.fetch,
        hostname: opts.host,
        port: opts.port,
        serverOptions: {
          headersTimeout: 10_000,
          requestTimeout: opts.bodyTimeoutMs + 10_000,
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
