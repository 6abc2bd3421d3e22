/**
 * Child-process entry for `npm run bench:open-loop` (open-loop.ts): the load generator and the
 * receiver each get an event loop of their own, apart from the service's and from each other's.
 * Both talk to the parent over the IPC channel (`fork`). Modes:
 *   receiver <healthy|slow|failing>  loopback receiver: 204 at once, 204 after 100 ms, or 500.
 *                                   Sends `{ port }` once, then batches of [webhook-id, arrival ms].
 *   generator                       open-loop publisher: for each `GeneratorStep` it POSTs
 *                                   /v1/events at fixed times and answers with `GeneratorResult`.
 * Times are absolute (performance.timeOrigin + performance.now()), so they compare across processes.
 */
import type { AddressInfo } from "node:net";
import { Pool } from "undici";
import { createMiniHttpServer, webhookIdOf } from "./mini-http.js";
import { pct } from "./open-loop-report.js";

export type ReceiverKind = "healthy" | "slow" | "failing";
export type GeneratorStep = {
  url: string;
  token: string;
  rate: number;
  seconds: number;
  /** Absolute time of the first send. */
  t0: number;
  /** Event ids are `<idPrefix><i>`; the i-th send is due at t0 + i × 1000 / rate. */
  idPrefix: string;
  connections: number;
  /** How long after the last due time unanswered publishes are waited for. */
  drainMs: number;
};
export type GeneratorResult = {
  sent: number;
  accepted: number;
  /** Answers other than 202, and requests that failed or were cut off, by status or error name. */
  rejected: Record<string, number>;
  /** Dispatch time minus due time, ms: how far behind schedule the generator itself fell. */
  lagMs: { p50: number; p99: number; max: number };
  /** Due time to the 202, ms, over the answered publishes. */
  publishMs: { p50: number; p99: number; max: number };
  /** Most publishes sent and not yet answered at once (beyond `connections`, they wait in the generator). */
  maxOutstanding: number;
  /** Sends that found every connection busy and waited in the generator for one. */
  queuedForConnection: number;
};

const now = () => performance.timeOrigin + performance.now();

const summary = (xs: number[]) => {
  xs.sort((a, b) => a - b);
  return { p50: pct(xs, 0.5), p99: pct(xs, 0.99), max: xs.at(-1) ?? NaN };
};

const RESPONSES: Record<ReceiverKind, string> = {
  healthy: "HTTP/1.1 204 No Content\r\nconnection: keep-alive\r\n\r\n",
  slow: "HTTP/1.1 204 No Content\r\nconnection: keep-alive\r\n\r\n",
  failing: "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n",
};

/** A receiver over bench/mini-http.ts; the arrival is stamped once the whole request is in. */
function receiver(kind: ReceiverKind) {
  const delayMs = kind === "slow" ? 100 : 0;
  const answer = RESPONSES[kind];
  let batch: [string, number][] = [];
  // Timers of one duration fire in the order they were set, so answers keep request order.
  const server = createMiniHttpServer((head, sock) => {
    batch.push([webhookIdOf(head), now()]);
    if (delayMs) setTimeout(() => sock.destroyed || sock.write(answer), delayMs);
    else sock.write(answer);
  });
  setInterval(() => {
    if (!batch.length) return;
    process.send!(batch);
    batch = [];
  }, 20);
  server.listen(0, "127.0.0.1", () => process.send!({ port: (server.address() as AddressInfo).port }));
}

const BODY_EXTRA = { total: 42.5, items: ["a", "b"] };

/**
 * One open-loop step. Sends are due at fixed times whatever the answers do: a timer wakes the
 * loop, which dispatches every send already due, so a late wake-up shows as lag, never as fewer
 * sends. The pool's connections bound what is in flight; a send that finds them all busy waits in
 * undici's queue and is counted (the loop would start to close there), and its latency still runs
 * from its due time.
 */
async function runStep(s: GeneratorStep): Promise<GeneratorResult> {
  const pool = new Pool(s.url, { connections: s.connections, pipelining: 1, headersTimeout: 60_000, bodyTimeout: 60_000 });
  const n = Math.round(s.rate * s.seconds);
  const gap = 1000 / s.rate;
  const lags: number[] = [];
  const publishMs: number[] = [];
  const rejected: Record<string, number> = {};
  let accepted = 0;
  let outstanding = 0;
  let maxOutstanding = 0;
  let queuedForConnection = 0;
  const pending = new Set<Promise<void>>();
  const send = (i: number, due: number) => {
    if (outstanding >= s.connections) queuedForConnection++;
    maxOutstanding = Math.max(maxOutstanding, ++outstanding);
    const body = JSON.stringify({ type: "bench.tick", id: `${s.idPrefix}${i}`, data: { i, ...BODY_EXTRA } });
    const p = pool
      .request({
        path: "/v1/events",
        method: "POST",
        headers: { authorization: `Bearer ${s.token}`, "content-type": "application/json" },
        body,
      })
      .then(async (res) => {
        await res.body.dump();
        if (res.statusCode === 202) {
          accepted++;
          publishMs.push(now() - due);
        } else rejected[res.statusCode] = (rejected[res.statusCode] ?? 0) + 1;
      })
      .catch((err: Error) => {
        rejected[err.name] = (rejected[err.name] ?? 0) + 1;
      })
      .finally(() => {
        outstanding--;
        pending.delete(p);
      });
    pending.add(p);
  };
  await new Promise<void>((resolve) => {
    let i = 0;
    const tick = () => {
      for (let t = now(); i < n && s.t0 + i * gap <= t; t = now()) {
        const due = s.t0 + i * gap;
        lags.push(t - due);
        send(i++, due);
      }
      if (i >= n) return resolve();
      setTimeout(tick, Math.max(0, s.t0 + i * gap - now()));
    };
    setTimeout(tick, Math.max(0, s.t0 - now()));
  });
  // Bounded: what is still unanswered after the drain is cut off and counted as rejected.
  const deadline = s.t0 + s.seconds * 1000 + s.drainMs;
  await Promise.race([Promise.all(pending), new Promise((r) => setTimeout(r, Math.max(0, deadline - now())))]);
  const cut = pending.size;
  await pool.destroy().catch(() => {});
  if (cut) rejected["unanswered"] = cut;
  return { sent: n, accepted, rejected, lagMs: summary(lags), publishMs: summary(publishMs), maxOutstanding, queuedForConnection };
}

const [mode, kind] = process.argv.slice(2);
if (mode === "receiver") {
  if (kind !== "healthy" && kind !== "slow" && kind !== "failing") throw new Error(`unknown receiver ${kind}`);
  receiver(kind);
} else if (mode === "generator") {
  process.on("message", (step: GeneratorStep) => void runStep(step).then((r) => process.send!(r)));
  process.send!({ ready: true });
} else {
  throw new Error(`unknown mode ${mode}`);
}
// The parent going away (killed, crashed) ends the child: the IPC channel closes.
process.on("disconnect", () => process.exit(0));
