import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parentPort, workerData } from "node:worker_threads";
import { Webhook } from "standardwebhooks";
import { Pool } from "undici";

/**
 * The soak's load generator and its receiver, each in its own worker thread of the measuring
 * process. A thread has its own event loop and heap, so neither the other's work (verifying
 * hundreds of signatures a second, the fake Gateway on the main thread) nor its garbage collection
 * stalls the thread that times a request: a request's latency is the service's, not the
 * harness's. Latencies cross threads as absolute times (`timeOrigin + now()`, sub-millisecond).
 *
 * Load (`role: "load"`): `{ cmd: "max", seconds, concurrency }` runs a closed loop and answers
 * `{ type: "max", rate }`; `{ cmd: "run", phase, rate, seconds, offset }` runs an open loop at
 * `rate`, streams `{ type: "samples", phase, pairs }` (second of the phase counted from `offset`, so
 * a run can extend the one before it; latency ms; every 250 ms) and
 * ends with `{ type: "phase-end", ... }`. Half the requests publish an event (`POST /v1/events`),
 * the other half drive TaskFlow routes a and b through the Gateway.
 *
 * Receiver (`role: "receiver"`): verifies every delivery with the real standardwebhooks, counts
 * deliveries and duplicates by event number, and streams `{ type: "tick", delivered, duplicates,
 * badSignatures, samples }` where samples are delivery latencies keyed by the publishing phase and
 * second.
 */
export type LoadData = { role: "load"; url: string; publishToken: string; secretA: string; secretB: string };
export type ReceiverData = { role: "receiver"; whsec: string };
export type LoadMessage =
  | { type: "max"; rate: number }
  | { type: "phase-start"; phase: number }
  | { type: "samples"; phase: number; pairs: Float64Array; loopP99: number }
  // `published` and `failures` count every phase so far, the maximum's loop included.
  | { type: "phase-end"; phase: number; issued: number; behind: number; published: number; failures: [number, number][] };
export type ReceiverMessage =
  | { type: "listening"; port: number }
  | { type: "tick"; delivered: number; duplicates: number; badSignatures: number; samples: [phase: number, pairs: Float64Array][] };

const clock = () => performance.timeOrigin + performance.now();
const port = parentPort!;
const data = workerData as LoadData | ReceiverData;

if (data.role === "load") {
  const http = new Pool(data.url, { connections: 64 });
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  let seq = 0;
  let published = 0;
  const failures = new Map<number, number>(); // all phases, the maximum's loop included
  // One request of the mix, timed; `at` travels in the event so the receiver can time its delivery.
  const one = async (phase: number, sec: number): Promise<number> => {
    const i = seq++;
    const start = clock();
    let status: number;
    if (i % 2 === 0) {
      const body = JSON.stringify({ type: "order.created", id: `soak-${i}`, data: { i, at: start, phase, sec } });
      const r = await http.request({
        method: "POST",
        path: "/v1/events",
        headers: { "content-type": "application/json", authorization: `Bearer ${data.publishToken}` },
        body,
      });
      await r.body.dump();
      status = r.statusCode;
      if (status === 202) published++;
    } else {
      const [path, secret] = i % 4 === 1 ? ["/hooks/a", data.secretA] : ["/hooks/b", data.secretB];
      const r = await http.request({
        method: "POST",
        path,
        headers: { "content-type": "application/json", authorization: `Bearer ${secret}` },
        body: '{"action":"list_flows"}',
      });
      await r.body.dump();
      status = r.statusCode === 200 ? 202 : r.statusCode;
    }
    if (status !== 202) failures.set(status, (failures.get(status) ?? 0) + 1);
    return clock() - start;
  };
  port.on(
    "message",
    async (
      m: { cmd: "max"; seconds: number; concurrency: number } | { cmd: "run"; phase: number; rate: number; seconds: number; offset: number } | { cmd: "close" },
    ) => {
      if (m.cmd === "close") {
        await http.close();
        port.close();
        return;
      }
      if (m.cmd === "max") {
        const t0 = performance.now();
        let done = 0;
        await Promise.all(
          Array.from({ length: m.concurrency }, async () => {
            while (performance.now() - t0 < m.seconds * 1_000) {
              await one(-1, 0).catch(() => failures.set(0, (failures.get(0) ?? 0) + 1));
              done++;
            }
          }),
        );
        port.postMessage({ type: "max", rate: done / ((performance.now() - t0) / 1_000) } satisfies LoadMessage);
        return;
      }
      // The open loop: requests issued on a 2 ms clock at `rate`, each timed on its own. The
      // generator never queues without bound: past 512 outstanding a request is counted, not sent.
      const { phase, rate, seconds, offset } = m;
      let issued = 0;
      let behind = 0;
      let outstanding = 0;
      let pairs: number[] = [];
      const inflight = new Set<Promise<void>>();
      const flush = () => {
        port.postMessage({ type: "samples", phase, pairs: Float64Array.from(pairs), loopP99: loop.percentile(99) / 1e6 } satisfies LoadMessage);
        pairs = [];
        loop.reset();
      };
      port.postMessage({ type: "phase-start", phase } satisfies LoadMessage);
      const t0 = performance.now();
      const end = t0 + seconds * 1_000;
      let lastFlush = t0;
      while (performance.now() < end) {
        const now = performance.now();
        const sec = offset + Math.floor((now - t0) / 1_000);
        const due = Math.floor(((now - t0) / 1_000) * rate);
        while (issued < due) {
          issued++;
          if (outstanding >= 512) {
            behind++;
            continue;
          }
          outstanding++;
          const p: Promise<void> = one(phase, sec)
            .then(
              (ms) => void pairs.push(sec, ms),
              () => void failures.set(0, (failures.get(0) ?? 0) + 1),
            )
            .finally(() => {
              outstanding--;
              inflight.delete(p);
            });
          inflight.add(p);
        }
        if (now - lastFlush >= 250) {
          flush();
          lastFlush = now;
        }
        await new Promise((r) => setTimeout(r, 2));
      }
      await Promise.all(inflight);
      flush();
      port.postMessage({ type: "phase-end", phase, issued, behind, published, failures: [...failures] } satisfies LoadMessage);
    },
  );
} else {
  // A lean receiver: a soak delivers hundreds of thousands of events, so it keeps counts and
  // latencies, not bodies; "seen" is one byte per event number.
  const verifier = new Webhook(data.whsec);
  let seen = new Uint8Array(1 << 20);
  let delivered = 0;
  let duplicates = 0;
  let badSignatures = 0;
  let samples = new Map<number, number[]>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const arrived = clock();
      const body = Buffer.concat(chunks).toString("utf8");
      try {
        verifier.verify(body, req.headers as Record<string, string>);
      } catch {
        badSignatures++;
      }
      const { i, at, phase, sec } = (JSON.parse(body) as { data: { i: number; at: number; phase: number; sec: number } }).data;
      if (i >= seen.length) {
        const grown = new Uint8Array(Math.max(seen.length * 2, i + 1));
        grown.set(seen);
        seen = grown;
      }
      if (seen[i]) duplicates++;
      else {
        delivered++;
        if (phase >= 0) {
          let list = samples.get(phase);
          if (!list) samples.set(phase, (list = []));
          list.push(sec, arrived - at);
        }
      }
      seen[i] = 1;
      res.end("ok");
    });
  });
  server.listen(0, "127.0.0.1", () => port.postMessage({ type: "listening", port: (server.address() as AddressInfo).port } satisfies ReceiverMessage));
  const timer = setInterval(() => {
    port.postMessage({
      type: "tick",
      delivered,
      duplicates,
      badSignatures,
      samples: [...samples].map(([p, xs]) => [p, Float64Array.from(xs)]),
    } satisfies ReceiverMessage);
    samples = new Map();
  }, 200);
  port.on("message", (m: { cmd: "close" }) => {
    if (m.cmd !== "close") return;
    clearInterval(timer);
    server.closeAllConnections();
    server.close(() => port.close());
  });
}
