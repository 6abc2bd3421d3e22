import type { IncomingMessage } from "node:http";
import { AppError } from "../errors.js";
import { underMemoryPressure } from "../util/memory.js";

export type BodyLimits = { maxBytes: number; timeoutMs: number };

const tooLarge = (max: number) => new AppError("payload_too_large", `Payload too large (limit ${max} bytes).`, { closeConnection: true });
const timedOut = () => new AppError("request_timeout", "Request body timeout.", { closeConnection: true });
const closed = () => new AppError("invalid_request", "Connection closed.", { closeConnection: true });
const overloaded = () => new AppError("overloaded", "The service is short of memory: retry shortly.", { retryAfterS: 1, closeConnection: true });

/**
 * Reads the raw body with a byte limit and a read deadline. `Content-Length` is checked before a
 * byte is read; chunked bodies are counted as they arrive and cut off at the limit. Reading the
 * Node `IncomingMessage` directly keeps @hono/node-server on its fast path (Hono's `bodyLimit`
 * forces a web `Request` and costs ~110 µs a request: docs/http-contract.md, "Why the stages are hand-written").
 * Every failure answers with `Connection: close`, since the rest of the upload stays unread. While
 * the heap is near its limit (util/memory.ts) no body is read: 503 `overloaded` with Retry-After.
 */
export async function readBody(incoming: IncomingMessage | undefined, request: Request, limits: BodyLimits, pressure = underMemoryPressure): Promise<Buffer> {
  if (pressure()) throw overloaded();
  const declared = incoming ? incoming.headers["content-length"] : request.headers.get("content-length");
  if (declared != null && Number(declared) > limits.maxBytes) throw tooLarge(limits.maxBytes);
  return incoming ? readIncoming(incoming, limits) : readWebStream(request, limits);
}

function readIncoming(req: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  if (req.complete && !req.readableFlowing) {
    // The whole body has arrived and waits in the stream's buffer: the usual case by the time the
    // limits' round trip is back. Take it as it is, with no listeners and no timer.
    const chunks: Buffer[] = [];
    let size = 0;
    for (let chunk: Buffer | null; (chunk = req.read() as Buffer | null) !== null; ) {
      chunks.push(chunk);
      size += chunk.length;
    }
    if (size > limits.maxBytes) return Promise.reject(tooLarge(limits.maxBytes));
    return Promise.resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (err: AppError | undefined) => {
      clearTimeout(timer);
      req.off("data", onData).off("end", onEnd).off("close", onClose).off("error", onClose);
      if (err) {
        req.pause();
        reject(err);
      } else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limits.maxBytes) finish(tooLarge(limits.maxBytes));
      else chunks.push(chunk);
    };
    const onEnd = () => finish(undefined);
    const onClose = () => finish(closed());
    const timer = setTimeout(() => finish(timedOut()), limits.timeoutMs);
    req.on("data", onData).on("end", onEnd).on("close", onClose).on("error", onClose);
  });
}

async function readWebStream(request: Request, limits: BodyLimits): Promise<Buffer> {
  if (!request.body) return Buffer.alloc(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timedOut()), limits.timeoutMs);
  });
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), deadline]);
      if (done) break;
      size += value.byteLength;
      if (size > limits.maxBytes) throw tooLarge(limits.maxBytes);
      chunks.push(value);
    }
  } catch (err) {
    void reader.cancel().catch(() => {});
    throw err instanceof AppError ? err : closed();
  } finally {
    clearTimeout(timer);
  }
  return Buffer.concat(chunks, size);
}

/**
 * How deeply a request body may nest objects and arrays; the body's own object or array is level 1.
 * JSON.parse takes any depth, but what runs after it recurses once per level (zod's z.json() and
 * strict objects, the template renderer, JSON.stringify when the event is stored and signed, the
 * Gateway's own parser) and overflows the stack some thousands of levels down: a 10 KB body was a
 * 500 with an error-level stack. 64 is .NET System.Text.Json's default and far above real webhook
 * payloads (GitHub's and Stripe's stay under ten levels; a TaskFlow stateJson is agent state),
 * while leaving every recursive consumer downstream, including the envelope's extra level and the
 * Gateway, a wide margin.
 */
export const MAX_JSON_DEPTH = 64;

const OPEN_BRACE = 0x7b,
  OPEN_BRACKET = 0x5b,
  CLOSE_BRACE = 0x7d,
  CLOSE_BRACKET = 0x5d,
  QUOTE = 0x22,
  BACKSLASH = 0x5c;

/**
 * Whether a JSON text nests deeper than `max`, read off the raw bytes in one linear pass before
 * anything parses it: brackets count outside strings only, and a backslash in a string skips the
 * byte after it (so `"\""` and `"[["` count nothing). UTF-8 continuation bytes are all ≥ 0x80, so
 * they never look like a bracket or a quote. Malformed text is left to JSON.parse. Written here:
 * no kept dependency does it (a streaming parser would be a new dependency for a dozen lines), and
 * this runs before the parse, so a hostile body never builds the deep value at all.
 */
export function jsonDepthExceeds(raw: Uint8Array, max: number): boolean {
  // Deeper than max needs max + 1 opening brackets.
  if (raw.length <= max) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      if (++depth > max) return true;
    } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) depth--;
  }
  return false;
}

/**
 * Parses a JSON body; empty or malformed JSON is the plugin's `invalid request body`. Every request
 * body the service parses comes through here, so the depth limit holds on every surface.
 */
export function parseJsonBody(raw: Buffer): unknown {
  if (jsonDepthExceeds(raw, MAX_JSON_DEPTH)) {
    throw new AppError("invalid_request", `invalid request body: JSON nested more than ${MAX_JSON_DEPTH} levels deep`);
  }
  try {
    if (raw.length === 0) throw new Error("empty");
    return JSON.parse(raw.toString("utf8"));
  } catch {
    throw new AppError("invalid_request", "invalid request body");
  }
}
