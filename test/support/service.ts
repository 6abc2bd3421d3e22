import { Registry } from "prom-client";
import { createApp } from "../../src/app.js";
import { configFrom } from "../../src/config/load.js";
import type { ConfigInput } from "../../src/config/schema.js";
import { closeDeps, createDeps, type Deps } from "../../src/deps.js";
import { createLogger } from "../../src/log.js";
import { createMetrics } from "../../src/metrics.js";
import { serverOptionsOf, startServer, type RunningServer } from "../../src/server.js";

export const SECRET_A = "secret-route-a-0123456789";
export const SECRET_B = "secret-route-b-0123456789";

/** Two routes bound to two sessions: the shape most tests use. */
export function twoRoutes(extra: Record<string, unknown> = {}) {
  return {
    a: { path: "/hooks/a", sessionKey: "agent:main:hook:a", secret: SECRET_A, ...extra },
    b: { path: "/hooks/b", sessionKey: "agent:main:hook:b", secret: SECRET_B, ...extra },
  };
}

export function testConfig(input: ConfigInput & { routes?: Record<string, unknown> }) {
  const { routes, ...rest } = input;
  return configFrom({
    log: { level: "silent" },
    ...rest,
    ...(routes ? { plugins: { entries: { webhooks: { enabled: true, config: { routes: routes as never } } } } } : {}),
  } as ConfigInput);
}

export type TestService = { deps: Deps; app: ReturnType<typeof createApp>; server: RunningServer; url: string; close: () => Promise<void> };

/** The real app on a real socket (port 0), with the same createDeps as main.ts. */
export async function startService(input: ConfigInput & { routes?: Record<string, unknown> }, overrides: Partial<Deps> = {}): Promise<TestService> {
  const config = testConfig({ server: { host: "127.0.0.1", port: 0 }, ...input });
  const deps = await createDeps(config, {
    log: createLogger({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
    metrics: createMetrics(new Registry(), { defaultMetrics: false }),
    ...overrides,
  });
  const app = createApp(deps);
  const server = await startServer(app, { ...serverOptionsOf(config), host: "127.0.0.1" });
  return {
    deps,
    app,
    server,
    url: server.url,
    close: async () => {
      await server.close(2_000);
      await closeDeps(deps);
    },
  };
}

/** POSTs JSON to the service with a secret (Bearer by default). */
export async function post(url: string, body: unknown, opts: { secret?: string; headers?: Record<string, string>; method?: string } = {}) {
  const res = await fetch(url, {
    method: opts.method ?? "POST",
    headers: {
      "content-type": "application/json",
      ...(opts.secret !== undefined ? { authorization: `Bearer ${opts.secret}` } : {}),
      ...opts.headers,
    },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

/** Waits past a fixed-window boundary when one is near, so a burst counted in one window stays in it. */
export async function awaitFreshWindow(windowMs = 60_000, needMs = 5_000): Promise<void> {
  const left = windowMs - (Date.now() % windowMs);
  if (left < needMs) await new Promise((r) => setTimeout(r, left + 20));
}
