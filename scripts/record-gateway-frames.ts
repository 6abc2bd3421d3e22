/**
 * `npm run record:gateway`: records what the real OpenClaw 2026.9.6 Gateway broadcasts for real
 * agent turns (on the loopback stub model), session changes and cron command runs, as the service
 * sees it (one operator connection after `sessions.subscribe {}`, docs/openclaw-contract.md §3.2), into
 * test/fixtures/gateway/<scenario>.json. The fake Gateway of `npm test` replays these files, and
 * src/egress/gateway-events.test.ts puts them through the mapping: a fixture is never written by hand.
 *
 * Each scenario runs alone (frames between its first request and the quiet after its end belong to
 * it). Temp paths are replaced by `<dir>`. `RECORD_ONLY=agent-text,cron-command` picks scenarios;
 * `model-500` takes about 90 s (the Gateway retries the model 7 times). `RECORD_OUT=dir` writes elsewhere.
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import WebSocket from "ws";
import { startReceiver } from "../test/support/receiver.js";
import { startStubModel } from "../test/support/stub-model.js";
import { startRealGateway } from "../test/openclaw/real-gateway.js";

const OUT = process.env.RECORD_OUT ?? resolve(import.meta.dirname, "../test/fixtures/gateway");
const QUIET = new Set(["tick", "health", "presence", "connect.challenge"]);

type Frame = { t: number; event: string; payload: unknown };

/** A raw protocol v4 operator connection (no client library: we want every frame as sent). */
async function connect(url: string, token: string, caps: string[] = []) {
  const ws = new WebSocket(url, { maxPayload: 26_214_400 });
  const frames: Frame[] = [];
  const waiting = new Map<string, { resolve: (v: any) => void; reject: (e: Error) => void; keep?: boolean }>();
  const finals = new Map<string, any>();
  let t0 = Date.now();
  let lastFrameAt = Date.now();
  const hello = new Promise<void>((resolveHello, rejectHello) => {
    ws.on("message", (raw) => {
      const f = JSON.parse(raw.toString());
      if (f.type === "event") {
        if (f.event === "connect.challenge") {
          ws.send(
            JSON.stringify({
              type: "req",
              id: "connect",
              method: "connect",
              params: {
                minProtocol: 4,
                maxProtocol: 4,
                client: { id: "gateway-client", version: "record", platform: process.platform, mode: "backend" },
                role: "operator",
                scopes: ["operator.read", "operator.write", "operator.admin"],
                caps,
                auth: { token },
              },
            }),
          );
          return;
        }
        if (!QUIET.has(f.event)) {
          frames.push({ t: Date.now() - t0, event: f.event, payload: f.payload });
          lastFrameAt = Date.now();
        }
        return;
      }
      if (f.type !== "res") return;
      if (f.id === "connect") return f.ok ? resolveHello() : rejectHello(new Error(JSON.stringify(f.error)));
      const w = waiting.get(f.id);
      if (!w) {
        finals.set(f.id, f); // a second res for the same id (the `agent` method's end)
        return;
      }
      waiting.delete(f.id);
      if (f.ok) w.resolve(f.payload);
      else w.reject(new Error(`${f.error?.code}: ${f.error?.message}`));
    });
    ws.on("error", rejectHello);
  });
  await hello;
  return {
    frames,
    finals,
    get lastFrameAt() {
      return lastFrameAt;
    },
    reset() {
      frames.length = 0;
      t0 = Date.now();
    },
    call(method: string, params: unknown, id = randomUUID()): Promise<any> {
      return new Promise((res, rej) => {
        waiting.set(id, { resolve: res, reject: rej });
        ws.send(JSON.stringify({ type: "req", id, method, params }));
      });
    },
    close: () => ws.close(1000),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, ms: number) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function main() {
  const only = process.env.RECORD_ONLY?.split(",").filter(Boolean);
  const model = await startStubModel();
  const cronRx = await startReceiver();
  const gw = await startRealGateway({ model: model.baseUrl });
  const ss = await connect(gw.url, gw.token);
  await ss.call("sessions.subscribe", {});
  mkdirSync(OUT, { recursive: true });
  const scrub = (v: unknown) => JSON.parse(JSON.stringify(v).replaceAll(gw.dir, "<dir>"));

  /** Waits until no frame has come for `quietMs` (the scenario's tail: usage, session changes). */
  const settle = async (quietMs = 1_500, maxMs = 20_000) => {
    const end = Date.now() + maxMs;
    while (Date.now() - ss.lastFrameAt < quietMs && Date.now() < end) await sleep(100);
  };
  const hasFrame =
    (event: string, pred: (p: any) => boolean = () => true) =>
    () =>
      ss.frames.some((f) => f.event === event && pred(f.payload));

  /** Starts one run with `method` and waits for the chat frame in `state` (final, or error). */
  const run = async (steps: unknown[], method: "agent" | "chat.send", params: Record<string, unknown>, state = "final", ms = 30_000) => {
    const res = await ss.call(method, { ...params, idempotencyKey: randomUUID() });
    steps.push({ method, params, res });
    await until(
      `chat ${state}`,
      hasFrame("chat", (p) => p.state === state),
      ms,
    );
  };

  const scenarios: Record<string, (steps: unknown[]) => Promise<void>> = {
    "agent-text": (steps) => run(steps, "agent", { message: "Hello there, what is the status?", sessionKey: "agent:main:rec-agent-text" }),
    "chat-send-text": (steps) => run(steps, "chat.send", { sessionKey: "agent:main:rec-chat-send", message: "Hi from chat.send" }),
    "agent-tool": (steps) => run(steps, "agent", { message: 'List the files [stub:tool ls {"path":"."}]', sessionKey: "agent:main:rec-agent-tool" }),
    async "sessions-lifecycle"(steps) {
      const key = "agent:main:rec-sessions";
      const step = async (method: string, params: unknown) => {
        const res = await ss.call(method, params).catch((err: Error) => ({ error: err.message }));
        steps.push({ method, params, res });
        return res;
      };
      await step("sessions.create", { key });
      await settle(800);
      await step("sessions.send", { key, message: "First message in a created session", idempotencyKey: randomUUID() });
      await until(
        "chat final",
        hasFrame("chat", (p) => p.state === "final"),
        30_000,
      );
      await settle(800);
      await step("sessions.reset", { key, reason: "reset" });
      await settle(800);
      await step("sessions.delete", { key, deleteTranscript: true });
    },
    "model-400": (steps) => run(steps, "agent", { message: "Fail please [stub:status 400]", sessionKey: "agent:main:rec-400" }, "error"),
    async "cron-command"(steps) {
      const add = {
        name: "rec-cron",
        // An `at` job is deleted once it ran; an `every` job stays for the manual run.
        schedule: { kind: "every", everyMs: 3_000 },
        sessionTarget: "isolated",
        wakeMode: "now",
        payload: { kind: "command", argv: ["/bin/echo", "nightly report ready"] },
        delivery: { mode: "webhook", to: `${cronRx.url}/cron` },
      };
      const job = await ss.call("cron.add", add);
      steps.push({ method: "cron.add", params: add, res: job });
      const jobId = job?.id ?? job?.job?.id ?? job?.jobId;
      await until(
        "scheduled cron finished",
        hasFrame("cron", (p) => p.action === "finished"),
        30_000,
      );
      const run = await ss.call("cron.run", { id: jobId, mode: "force" });
      steps.push({ method: "cron.run", params: { id: jobId, mode: "force" }, res: run });
      await until(
        "manual cron finished",
        hasFrame("cron", (p) => p.action === "finished" && String(p.runId ?? "").startsWith("manual:")),
        30_000,
      );
      await settle(800);
      steps.push({ gatewayPostedTo: "delivery.to", bodies: cronRx.received.map((r) => JSON.parse(r.body)) });
      const removed = await ss.call("cron.remove", { id: jobId }).catch((err: Error) => ({ error: err.message }));
      steps.push({ method: "cron.remove", params: { id: jobId }, res: removed });
    },
    "model-500": (steps) => run(steps, "agent", { message: "The provider is down [stub:status 500]", sessionKey: "agent:main:rec-500" }, "error", 150_000),
  };

  try {
    for (const [name, run] of Object.entries(scenarios)) {
      if (only && !only.includes(name)) continue;
      await settle(1_000);
      ss.reset();
      const steps: unknown[] = [];
      const started = Date.now();
      process.stderr.write(`recording ${name}…`);
      await run(steps);
      await settle();
      const file = join(OUT, `${name}.json`);
      const fixture = { scenario: name, gateway: "openclaw 2026.9.6", connection: "operator after sessions.subscribe {}", steps, frames: [...ss.frames] };
      writeFileSync(file, `${JSON.stringify(scrub(fixture), null, 1)}\n`);
      process.stderr.write(` ${ss.frames.length} frames, ${Date.now() - started} ms\n`);
    }
  } finally {
    ss.close();
    await gw.dispose();
    await cronRx.close();
    await model.close();
  }
}

await main();
