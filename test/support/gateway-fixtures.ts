import { randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

/** Frames the real Gateway 2026.9.6 sent, recorded by `npm run record:gateway` (never edited by hand). */
export type RecordedFrame = { t: number; event: string; payload: any };
export type Fixture = { scenario: string; gateway: string; connection: string; steps: any[]; frames: RecordedFrame[] };

// Beside this file in the tree; a compiled copy (the benchmarks' .tmp/bench-build) reads the tree's.
const HERE = resolve(import.meta.dirname, "../fixtures/gateway");
const DIR = existsSync(HERE) ? HERE : resolve(process.cwd(), "test/fixtures/gateway");

export const FIXTURES = readdirSync(DIR)
  .filter((f) => f.endsWith(".json"))
  .map((f) => f.slice(0, -5));

const cache = new Map<string, Fixture>();
export function loadFixture(name: string): Fixture {
  let f = cache.get(name);
  if (!f) {
    f = JSON.parse(readFileSync(join(DIR, `${name}.json`), "utf8")) as Fixture;
    cache.set(name, f);
  }
  return f;
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/** The first `agent`/`chat.send`/`sessions.*` request of a fixture: what the rewrite replaces. */
function recordedRun(f: Fixture): { runId?: string; sessionKey?: string; message?: string } {
  for (const s of f.steps) {
    if (s?.method === "agent" || s?.method === "chat.send") return { runId: s.res?.runId, sessionKey: s.params.sessionKey, message: s.params.message };
    if (s?.method === "sessions.send") return { runId: s.res?.runId, sessionKey: s.params.key, message: s.params.message };
  }
  return {};
}

/**
 * A fixture's frames as they would come for another run: the recorded run id, session key and user
 * text replaced by the given ones, every other id (session, message, task, tool call ids are
 * UUIDs) replaced by a fresh one, consistently within one replay, and timestamps moved to now. The
 * shapes stay exactly as recorded.
 */
export function rewriteFixture(
  name: string,
  to: { runId?: string; sessionKey?: string; message?: string; replace?: Record<string, string> } = {},
): RecordedFrame[] {
  const f = loadFixture(name);
  const from = recordedRun(f);
  let text = JSON.stringify(f.frames);
  const swap = (a: string | undefined, b: string | undefined) => {
    if (!a || b === undefined) return;
    // Replaced as JSON string contents, so any new value (quotes, unicode) stays valid JSON.
    text = text.split(JSON.stringify(a).slice(1, -1)).join(JSON.stringify(b).slice(1, -1));
  };
  const runId = to.runId;
  const fresh = new Map<string, string>();
  if (from.runId && runId) fresh.set(from.runId, runId);
  text = text.replace(UUID, (u) => {
    if (!fresh.has(u)) fresh.set(u, randomUUID());
    return fresh.get(u)!;
  });
  swap(to.sessionKey && from.sessionKey, to.sessionKey);
  swap(to.message && from.message, to.message);
  for (const [a, b] of Object.entries(to.replace ?? {})) swap(a, b);
  const frames = JSON.parse(text) as RecordedFrame[];
  const first = frames.reduce((m, fr) => Math.min(m, typeof fr.payload?.ts === "number" ? fr.payload.ts : Infinity), Infinity);
  const shift = Number.isFinite(first) ? Date.now() - first : 0;
  return shift ? (shiftTimes(frames, shift) as RecordedFrame[]) : frames;
}

/** Moves every epoch-ms number (after 2020) by `ms`. */
function shiftTimes(v: unknown, ms: number): unknown {
  if (typeof v === "number" && v > 1_577_836_800_000 && v < 4_102_444_800_000) return v + ms;
  if (Array.isArray(v)) return v.map((x) => shiftTimes(x, ms));
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shiftTimes(x, ms)]));
  return v;
}

/** Which recorded run answers a message, by the stub model's directives (test/support/stub-model.ts). */
export function fixtureFor(message: string): string {
  if (/\[stub:status 500\]/.test(message)) return "model-500";
  if (/\[stub:status 4\d\d\]/.test(message)) return "model-400";
  if (/\[stub:tool /.test(message)) return "agent-tool";
  return "agent-text";
}

/** Events that reach only a connection that called `sessions.subscribe` (docs/openclaw-contract.md §3.2). */
export const SUBSCRIBED_ONLY = new Set(["session.message", "session.tool", "sessions.changed"]);
