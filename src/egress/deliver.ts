import { Agent, errors, type Dispatcher } from "undici";
import { bodyExcerpt, keepResponseHeaders, type ErrorClass } from "./attempt-detail.js";
import { BlockedAddressError, type SsrfGuard } from "./ssrf.js";

/**
 * How much of an answer is read: the first KiB is kept (attempt-detail.ts), and a body up to this
 * size is drained so the keep-alive connection goes back to the pool; a bigger or endless one is
 * cut off and its connection closed, never buffered.
 */
export const RESPONSE_DRAIN_LIMIT = 20 * 1024;

/** The result of one attempt, for the delivery log and the retry decision. */
export type AttemptResult = {
  /** delivered: 2xx · retry: failed, try again per schedule · disable: 410 Gone (stop, disable the endpoint). */
  outcome: "delivered" | "retry" | "disable";
  status?: number;
  errorClass?: ErrorClass;
  error?: string;
  durationMs: number;
  /** The first KiB of the response body (a cut UTF-8 character is left out). */
  responseBody: string;
  /** Set when the body was longer than what is kept. */
  responseTruncated?: boolean;
  /** The receiver's headers, masked and bounded (attempt-detail.ts). */
  responseHeaders?: Record<string, string>;
  /** From `Retry-After` (seconds or an HTTP date), for the caller to clamp. */
  retryAfterMs?: number;
};

/**
 * The dispatcher deliveries go through: keep-alive pools, the SSRF guard in `connect.lookup`,
 * explicit timeouts (undici's default is 300 s). Redirects are never followed (`request` does not
 * follow them; a 3xx is a failed attempt), so a receiver cannot bounce a delivery elsewhere.
 */
export function createDeliveryAgent(guard: SsrfGuard, opts: { connections?: number } = {}): Agent {
  return new Agent({
    connections: opts.connections ?? 64,
    keepAliveTimeout: 4_000,
    connect: { lookup: guard.lookup, timeout: 5_000 },
  });
}

function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

const DNS_CODES = new Set(["ENOTFOUND", "EAI_AGAIN", "ENODATA", "EAI_FAIL", "EAI_NONAME"]);
/** OpenSSL's and Node's TLS failures: handshake (EPROTO, ERR_SSL_*), certificate (ERR_TLS_*, CERT_*, …). */
const TLS_CODE = /^(EPROTO|ERR_SSL_|ERR_TLS_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_(GET|VERIFY)_|HOSTNAME_MISMATCH)/;

/**
 * Maps a thrown error to the log's error class (attempt-detail.ts has the set). undici wraps
 * connect-time causes, so the chain is walked; the most specific cause wins: the guard, then DNS,
 * TLS, a timeout, and anything else (refused, reset, closed) is `connect`.
 */
function classifyError(err: unknown): { errorClass: ErrorClass; error: string } {
  const chain: unknown[] = [];
  for (let e: unknown = err, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) chain.push(e);
  const blocked = chain.find((e) => e instanceof BlockedAddressError) as BlockedAddressError | undefined;
  if (blocked) return { errorClass: "ssrf_blocked", error: blocked.message };
  const codes = chain.map((e) => String((e as { code?: unknown }).code ?? ""));
  const message = String((err as Error)?.message ?? err).slice(0, 500);
  if (codes.some((c) => DNS_CODES.has(c))) return { errorClass: "dns", error: message };
  if (codes.some((c) => TLS_CODE.test(c))) return { errorClass: "tls", error: message };
  const timedOut = chain.some(
    (e) =>
      e instanceof errors.HeadersTimeoutError ||
      e instanceof errors.BodyTimeoutError ||
      e instanceof errors.ConnectTimeoutError ||
      (e as Error).name === "TimeoutError" ||
      (e as Error).name === "AbortError",
  );
  return { errorClass: timedOut ? "timeout" : "connect", error: message };
}

/**
 * Endpoint URLs come from config, so each is parsed and checked against the guard's literal-IP
 * rules once (per guard), not on every attempt. Names are still checked at connect time.
 */
const urlChecks = new WeakMap<SsrfGuard, Map<string, { url: URL; refused: Error | undefined } | undefined>>();
function checkedUrl(raw: string, guard: SsrfGuard) {
  let byUrl = urlChecks.get(guard);
  if (!byUrl) urlChecks.set(guard, (byUrl = new Map()));
  if (byUrl.has(raw)) return byUrl.get(raw);
  let entry: { url: URL; refused: Error | undefined } | undefined;
  try {
    const url = new URL(raw);
    entry = { url, refused: guard.checkUrl(url) };
  } catch {
    entry = undefined;
  }
  if (byUrl.size < 10_000) byUrl.set(raw, entry);
  return entry;
}

/**
 * One delivery attempt: POST `body` with `headers` to `url`, within `timeoutMs` for the whole
 * exchange. Only 2xx is delivered; 410 asks to disable the endpoint; anything else (3xx, 4xx, 5xx,
 * timeout, network, TLS or DNS error, a blocked address) is a failed attempt to retry per schedule.
 */
export async function attemptDelivery(opts: {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  dispatcher: Dispatcher;
  guard: SsrfGuard;
  now?: () => number;
}): Promise<AttemptResult> {
  const now = opts.now ?? Date.now;
  const started = performance.now();
  const done = (r: Omit<AttemptResult, "durationMs">): AttemptResult => ({ ...r, durationMs: Math.round(performance.now() - started) });
  const checked = checkedUrl(opts.url, opts.guard);
  // Config refuses such URLs; one that still cannot be requested cannot be connected to.
  if (!checked) return done({ outcome: "retry", errorClass: "connect", error: "invalid URL", responseBody: "" });
  const { url, refused } = checked;
  if (refused) {
    return done({
      outcome: "retry",
      errorClass: refused instanceof BlockedAddressError ? "ssrf_blocked" : "connect",
      error: refused.message,
      responseBody: "",
    });
  }
  let answer: Answer;
  try {
    answer = await exchange(opts.dispatcher, url, opts.headers, opts.body, opts.timeoutMs);
  } catch (err) {
    return done({ outcome: "retry", ...classifyError(err), responseBody: "" });
  }
  const excerpt = bodyExcerpt(answer.body);
  const { status } = answer;
  const got = {
    status,
    responseBody: excerpt.text,
    ...(excerpt.truncated ? { responseTruncated: true } : {}),
    responseHeaders: keepResponseHeaders(answer.headers),
  };
  if (status >= 200 && status < 300) return done({ outcome: "delivered", ...got });
  const retryAfterMs = parseRetryAfter(answer.headers["retry-after"], now());
  const base = { ...got, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  if (status === 410) return done({ outcome: "disable", errorClass: "http_status", error: "410 Gone", ...base });
  return done({ outcome: "retry", errorClass: "http_status", error: `HTTP ${status}`, ...base });
}

type Answer = { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer };

/** What a timed-out exchange is aborted with: the name AbortSignal.timeout gives (classifyError reads it). */
function timeoutError(ms: number): Error {
  const err = new Error(`no complete answer within ${ms} ms`);
  err.name = "TimeoutError";
  return err;
}

/**
 * One POST through undici's `dispatch` with a handler of its own: the status, the headers and at
 * most RESPONSE_DRAIN_LIMIT of the body, within `timeoutMs` for the whole exchange. `request`
 * would wrap the answer in a Readable stream and the deadline in an AbortSignal: the same
 * exchange cost ~30 µs more CPU per delivery on a keep-alive connection (measured with a loopback
 * receiver, 2026-12-07). A body that ends in an error or goes past the limit leaves the status as
 * the answer; a body past the limit closes its connection instead of being read.
 */
function exchange(dispatcher: Dispatcher, url: URL, headers: Record<string, string>, body: string, timeoutMs: number): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    let answer: Answer | undefined;
    let read = 0;
    const chunks: Buffer[] = [];
    let abort: ((err: Error) => void) | undefined;
    let timedOut: Error | undefined;
    let settled = false;
    const settle = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (answer) {
        answer.body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        resolve(answer);
      } else reject(err ?? new Error("the exchange ended without an answer"));
    };
    const timer = setTimeout(() => {
      const err = timeoutError(timeoutMs);
      // A request still waiting for a connection is given up now and never written (undici hands
      // over its abort only as it writes the request: onRequestStart, where it is aborted; until
      // then it stays in the pool's queue, holding its body); one under way is cut, and an answer
      // whose headers came counts as its status, as a body that fails mid-way does.
      timedOut = err;
      if (abort) abort(err);
      else settle(err);
    }, timeoutMs);
    dispatcher.dispatch(
      { origin: url.origin, path: url.pathname + url.search, method: "POST", headers, body, headersTimeout: timeoutMs, bodyTimeout: timeoutMs },
      {
        onRequestStart(controller) {
          if (timedOut) return controller.abort(timedOut);
          abort = (err) => controller.abort(err);
        },
        onResponseStart(_controller, statusCode, responseHeaders) {
          // An interim answer (102 Processing, 103 Early Hints) is not the answer: the final one follows.
          if (statusCode < 200) return;
          answer = { status: statusCode, headers: responseHeaders, body: EMPTY };
        },
        onResponseData(controller, chunk) {
          if (read < RESPONSE_DRAIN_LIMIT) chunks.push(chunk.subarray(0, RESPONSE_DRAIN_LIMIT - read));
          read += chunk.length;
          if (read >= RESPONSE_DRAIN_LIMIT) {
            // Enough kept: the rest is not read, and the connection goes with it.
            settle();
            controller.abort(new Error("response body past the drain limit"));
          }
        },
        onResponseEnd() {
          settle();
        },
        onResponseError(_controller, err) {
          settle(err);
        },
      },
    );
  });
}

const EMPTY = Buffer.alloc(0);
