import assert from "node:assert/strict";
import { request as httpRequest, type ClientRequest } from "node:http";
import { Agent, request } from "undici";
import type { FakeGateway } from "../support/fake-gateway.js";
import type { startReceiver } from "../support/receiver.js";

/**
 * What failover.test.ts drives and watches besides the service: the publisher, TaskFlow route
 * requests, Gateway events, `/readyz`, the dashboard's live stream, and the readings of the
 * receivers, the admin API, /metrics and the service's log.
 */
export const PUBLISH = "publish-token-0123456789";
export const ADMIN = "admin-token-0123456789";
export const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
export const ROUTE_SECRET = "route-secret-0123456789";
export const GW_TOKEN = "gw-token-0123456789";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const record = (scenario: string, figure: string) => console.log(`  [${scenario}] ${figure}`);
export const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
export const n = (x: number) => x.toLocaleString("en-US");

/** Keep-alive connections the publishes share; a publish held by a failover gives up after 10 s (status 0) and is sent again. */
const publisher = new Agent({ connections: 256, headersTimeout: 10_000, bodyTimeout: 10_000 });

type Answer = { status: number; parked: boolean; retryAfterMs: number };

export async function publishOnce(url: string, id: string, data: unknown): Promise<Answer> {
  try {
    const res = await request(`${url}/v1/events`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${PUBLISH}` },
      body: JSON.stringify({ type: "order.created", id, data }),
      dispatcher: publisher,
    });
    const text = await res.body.text();
    const retryAfter = Number(res.headers["retry-after"]);
    const parked = res.statusCode < 300 && (JSON.parse(text) as { parked?: boolean }).parked === true;
    // Retry-After honoured (the service says 1 s), capped so the figures keep a fine grain.
    return { status: res.statusCode, parked, retryAfterMs: Number.isFinite(retryAfter) ? Math.min(retryAfter * 1_000, 1_000) : 250 };
  } catch {
    return { status: 0, parked: false, retryAfterMs: 250 };
  }
}

export type Published = {
  /** Each stored event's id and when its 2xx came. */
  accepted: Map<string, number>;
  /** Every answer that was not 2xx (0: the request itself failed). */
  refused: { id: string; at: number; status: number }[];
  /** Events answered 202 `parked: true`: stored nowhere a worker looks, waiting for an operator. */
  parked: string[];
  /** Events never stored by the deadline. */
  lost: string[];
};

/** Calls `fn(i)` for i < count at `rate` a second (open loop: whether or not earlier calls have finished); resolves when all have. */
async function paced(rate: number, count: number, fn: (i: number) => Promise<void>): Promise<void> {
  const t0 = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait > 1) await sleep(wait);
    pending.push(fn(i));
  }
  await Promise.all(pending);
}

/** Publishes `count` events at `rate` a second (open loop), each sent again with its id until 2xx or `deadline`. */
export async function stream(url: string, o: { rate: number; count: number; prefix: string; deadline: number }): Promise<Published> {
  const out: Published = { accepted: new Map(), refused: [], parked: [], lost: [] };
  await paced(o.rate, o.count, async (i) => {
    const id = `${o.prefix}-${i}`;
    for (;;) {
      const a = await publishOnce(url, id, { i });
      if (a.status >= 200 && a.status < 300) {
        out.accepted.set(id, Date.now());
        if (a.parked) out.parked.push(id);
        return;
      }
      out.refused.push({ id, at: Date.now(), status: a.status });
      if (Date.now() > o.deadline) return void out.lost.push(id);
      await sleep(a.retryAfterMs);
    }
  });
  return out;
}

/** Route requests get connections of their own: a 503 closes its connection (closeConnection), and the publishes' pool is left alone. */
const ingress = new Agent({ connections: 64, headersTimeout: 10_000, bodyTimeout: 10_000 });

/** One answer of a TaskFlow route: when it was sent and answered, its status (0: no answer), and the error code or connection error. */
export type IngressAnswer = { sentAt: number; at: number; status: number; code?: string; error?: string };

/**
 * POSTs a `create_flow` to a TaskFlow route at `rate` a second (open loop), `count` times, once
 * each (a refused request is not sent again: every answer is what a sender saw).
 */
export async function steadyIngress(url: string, o: { path: string; rate: number; count: number; prefix: string }): Promise<IngressAnswer[]> {
  const out: IngressAnswer[] = [];
  await paced(o.rate, o.count, async (i) => void out.push(await routeOnce(url, o.path, `${o.prefix} ${i}`)));
  return out;
}

export async function routeOnce(url: string, path: string, goal: string): Promise<IngressAnswer> {
  const sentAt = Date.now();
  try {
    const res = await request(`${url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${ROUTE_SECRET}` },
      body: JSON.stringify({ action: "create_flow", goal }),
      dispatcher: ingress,
    });
    const text = await res.body.text();
    let code: string | undefined;
    try {
      code = (JSON.parse(text) as { code?: string; error?: { code?: string } }).code ?? undefined;
    } catch {
      code = `not JSON: ${text.slice(0, 80)}`;
    }
    return { sentAt, at: Date.now(), status: res.statusCode, ...(code ? { code } : {}) };
  } catch (err) {
    return { sentAt, at: Date.now(), status: 0, error: (err as Error).message };
  }
}

/**
 * Broadcasts `count` Gateway `cron` frames (`action: "finished"`, one job, run `run-<i>`) at
 * `rate` a second to the service's Gateway connection. The service maps each to a `cron.finished`
 * event whose id is `cron_<jobId>_run-<i>` (src/egress/gateway-events.ts) and hands it to its relay.
 * Resolves with the ids in the order pushed and when each was pushed.
 */
export async function pushGatewayEvents(gw: FakeGateway, o: { rate: number; count: number; jobId: string }) {
  const pushed = new Map<string, number>();
  await paced(o.rate, o.count, async (i) => {
    const runAtMs = Date.now();
    gw.broadcast("cron", { jobId: o.jobId, action: "finished", runId: `run-${i}`, runAtMs, status: "ok", summary: `failover push ${i}` });
    pushed.set(`cron_${o.jobId}_run-${i}`, runAtMs);
  });
  return pushed;
}

/** GET /readyz every 200 ms (one at a time) until stopped. */
export function sampleReadyz(url: string) {
  const samples: { at: number; status: number; workers: boolean | undefined }[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const t0 = Date.now();
      try {
        const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(3_000) });
        const body = (await res.json()) as { checks?: { workers?: boolean } };
        samples.push({ at: t0, status: res.status, workers: body.checks?.workers });
      } catch {
        samples.push({ at: t0, status: 0, workers: undefined });
      }
      await sleep(Math.max(0, 200 - (Date.now() - t0)));
    }
  })();
  return {
    samples,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

/** A dashboard snapshot as the SSE stream carried it: when it came, and the event ids of its recent deliveries (or its error). */
export type Snapshot = { at: number; eventIds: Set<string>; error?: string };

/**
 * The dashboard's live updates as its page reads them: a login (the session cookie), then one
 * `GET /dashboard/events` held open and parsed, snapshot by snapshot, until `close`. `ended` says
 * whether and how the service ended the stream: the page would then have to reconnect.
 */
export async function watchDashboard(url: string) {
  const login = await fetch(`${url}/dashboard/login`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token: ADMIN }).toString(),
  });
  assert.equal(login.status, 303, "the dashboard login succeeds");
  const cookie = login.headers.getSetCookie()[0]!.split(";")[0]!;
  const snapshots: Snapshot[] = [];
  let keepAlives = 0;
  let ended: string | undefined;
  let closing = false;
  const req: ClientRequest = await new Promise((resolve, reject) => {
    const r = httpRequest(`${url}/dashboard/events`, { agent: false, headers: { cookie, accept: "text/event-stream" } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`GET /dashboard/events: ${res.statusCode}`));
      res.setEncoding("utf8");
      let buffered = "";
      res.on("data", (d: string) => {
        buffered += d;
        for (let end = buffered.indexOf("\n\n"); end >= 0; end = buffered.indexOf("\n\n")) {
          const message = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          if (message.startsWith(":")) {
            keepAlives++;
            continue;
          }
          const data = message
            .split("\n")
            .filter((l) => l.startsWith("data:"))
            .map((l) => l.slice(5).trimStart())
            .join("\n");
          if (!/^event: snapshot$/m.test(message) || !data) continue;
          const j = JSON.parse(data) as { error?: string; deliveries?: { eventId: string }[] };
          snapshots.push({ at: Date.now(), eventIds: new Set((j.deliveries ?? []).map((d) => d.eventId)), ...(j.error ? { error: j.error } : {}) });
        }
      });
      res.on("end", () => void (closing || (ended ??= "the service ended the stream")));
      res.on("error", (err) => void (closing || (ended ??= err.message)));
      resolve(r);
    });
    r.on("error", (err) => {
      if (!closing) ended ??= err.message;
      reject(err);
    });
    r.end();
  });
  return {
    snapshots,
    get keepAlives() {
      return keepAlives;
    },
    get ended() {
      return ended;
    },
    close() {
      closing = true;
      req.destroy();
    },
  };
}

export async function admin(url: string, path: string) {
  const res = await fetch(`${url}/admin/api${path}`, { headers: { authorization: `Bearer ${ADMIN}` } });
  assert.equal(res.status, 200, `GET ${path}`);
  return ((await res.json()) as { result: any }).result;
}

/** The sum of a metric's series whose labels include `match`, from the service's /metrics. */
export async function metricSum(url: string, name: string, match = "") {
  const text = await (await fetch(`${url}/metrics`)).text();
  const lines = [...text.matchAll(new RegExp(`^openclaw_webhooks_${name}(\\{[^}]*\\})? (\\S+)$`, "gm"))];
  return lines.filter((m) => (m[1] ?? "").includes(match)).reduce((sum, m) => sum + Number(m[2]), 0);
}

/**
 * Each endpoint's arrivals by event id (the webhook-id of every copy, and when each came), parsed
 * once per delivery: the checks poll it every 20 ms, and this process's receivers must keep
 * answering meanwhile.
 */
export function indexArrivals(rxOf: Map<string, Awaited<ReturnType<typeof startReceiver>>>) {
  const index = new Map([...rxOf.keys()].map((e) => [e, { seen: 0, byId: new Map<string, { webhookIds: string[]; at: number[] }>() }]));
  return (e: string) => {
    const i = index.get(e)!;
    const received = rxOf.get(e)!.received;
    for (; i.seen < received.length; i.seen++) {
      const r = received[i.seen]!;
      const id = JSON.parse(r.body).id as string;
      const got = i.byId.get(id) ?? { webhookIds: [], at: [] };
      got.webhookIds.push(String(r.headers["webhook-id"]));
      got.at.push(r.at);
      i.byId.set(id, got);
    }
    return i.byId;
  };
}

/** The longest gap between consecutive times, and where it ends. */
export function longestGap(times: number[]) {
  const sorted = [...times].sort((a, b) => a - b);
  let gap = { ms: 0, from: sorted[0] ?? 0, to: sorted[0] ?? 0 };
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i]! - sorted[i - 1]! > gap.ms) gap = { ms: sorted[i]! - sorted[i - 1]!, from: sorted[i - 1]!, to: sorted[i]! };
  return gap;
}

/** Counts by key, as `{"200":398,"503":42}`. */
export function tally<T>(xs: readonly T[], key: (x: T) => string | number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
}

/** Warn- and error-level log lines of the service, grouped by message, for the diagnostics. */
export function logSummary(lines: string[]) {
  const byMsg = new Map<string, number>();
  for (const line of lines) {
    try {
      const j = JSON.parse(line) as { level?: number; msg?: string; err?: unknown; reason?: string };
      if ((j.level ?? 0) < 40) continue;
      const key = `${j.level === 40 ? "warn" : "error"} ${j.msg}${j.err ? `: ${String(typeof j.err === "object" ? (j.err as { message?: string }).message : j.err).slice(0, 160)}` : ""}${j.reason ? ` (${j.reason.slice(0, 160)})` : ""}`;
      byMsg.set(key, (byMsg.get(key) ?? 0) + 1);
    } catch {
      if (line.trim()) byMsg.set(`raw ${line.slice(0, 200)}`, (byMsg.get(`raw ${line.slice(0, 200)}`) ?? 0) + 1);
    }
  }
  return [...byMsg].map(([k, c]) => `${c} × ${k}`);
}
