/**
 * Child-process entry for the ingress benchmark, so the load generator, the fake Gateway and the
 * server under test each have their own event loop. Modes:
 *   hello                    bare Hono hello-world on @hono/node-server
 *   gateway <token>          the fake protocol-v4 Gateway (test/support/fake-gateway.ts)
 *   service <redis> <gwUrl>  the real service: Redis limits (budget raised), auth, body, zod, Gateway client
 * Each prints one JSON line `{ "url": … }` when ready.
 */
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { startFakeGateway } from "../test/support/fake-gateway.js";
import { startService } from "../test/support/service.js";

const [mode, a, b] = process.argv.slice(2);
const ready = (url: string) => process.stdout.write(`${JSON.stringify({ url })}\n`);
// SIGUSR2 prints this process's CPU time so far: the benchmark turns it into CPU µs per request,
// a figure far steadier than req/s on a shared machine.
process.on("SIGUSR2", () => {
  const u = process.cpuUsage();
  process.stdout.write(`${JSON.stringify({ cpuUs: u.user + u.system })}\n`);
});

if (mode === "hello") {
  const app = new Hono();
  app.get("/", (c) => c.text("Hello Hono!"));
  const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, (info) => ready(`http://127.0.0.1:${info.port}`));
  process.on("SIGTERM", () => server.close(() => process.exit(0)));
} else if (mode === "gateway") {
  const gw = await startFakeGateway({ token: a! });
  ready(gw.url);
  process.on("SIGTERM", () => void gw.stop().then(() => process.exit(0)));
} else if (mode === "service") {
  const svc = await startService({
    ...(process.env.BENCH_MEMORY_LIMITS ? {} : { redis: { url: a!, prefix: "bench:" } }),
    gateway: process.env.BENCH_EMBEDDED ? { mode: "embedded" } : { url: b!, token: process.env.BENCH_GW_TOKEN! },
    limits: { rateLimit: { windowMs: 60_000, maxRequests: 100_000_000 }, maxInFlight: 1_000 },
    routes: { bench: { path: "/hooks/bench", sessionKey: "agent:main:bench", secret: process.env.BENCH_ROUTE_SECRET! } },
  });
  ready(svc.url);
  process.on("SIGTERM", () => void svc.close().then(() => process.exit(0)));
} else {
  throw new Error(`unknown mode ${mode}`);
}
