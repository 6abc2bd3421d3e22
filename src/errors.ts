import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/**
 * Every error code the service answers with, and its HTTP status. This table is the only place
 * that pairs a code with a status; `AppError.status` and `toErrorResponse()` read it.
 * The code strings are the wire contract (the `code` field of the envelope).
 */
export const ERROR_STATUS = {
  invalid_request: 400,
  unauthorized: 401,
  // A publisher using a type or id that belongs to the service's own events (egress/system-events.ts).
  reserved_event_type: 403,
  reserved_event_id: 403,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  request_timeout: 408,
  payload_too_large: 413,
  unsupported_media_type: 415,
  delivery_pending: 409,
  replay_pending: 409,
  endpoint_disabled: 409,
  not_replayable: 409,
  replay_failed: 409,
  idempotency_conflict: 409,
  idempotency_in_progress: 409,
  rate_limited: 429,
  auth_rate_limited: 429,
  in_flight_limited: 429,
  internal: 500,
  gateway_error: 502,
  gateway_unavailable: 503,
  limits_unavailable: 503,
  storage_unavailable: 503,
  live_updates_full: 503,
  // The heap is near its limit (util/memory.ts): bodies are refused until it is not.
  overloaded: 503,
  gateway_timeout: 504,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof ERROR_STATUS;

export type AppErrorOptions = {
  cause?: unknown;
  /** Seconds for a `Retry-After` header. */
  retryAfterS?: number;
  /** True when the request body was not read: the answer must close the connection. */
  closeConnection?: boolean;
};

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly opts: AppErrorOptions;
  constructor(code: ErrorCode, message: string, opts: AppErrorOptions = {}) {
    super(message, { cause: opts.cause });
    this.name = "AppError";
    this.code = code;
    this.opts = opts;
  }
  get status(): ContentfulStatusCode {
    return ERROR_STATUS[this.code];
  }
}

/** The plugin's content type for every envelope. */
export const JSON_UTF8 = { "Content-Type": "application/json; charset=utf-8" } as const;

export type ErrorEnvelope = {
  ok: false;
  routeId: string | null;
  code: string;
  error: string;
  result: Record<string, unknown>;
};

/** The one error envelope, on every surface: `{ ok: false, routeId, code, error, result }`. */
export function envelope(routeId: string | null, code: string, error: string, result: Record<string, unknown> = {}): ErrorEnvelope {
  return { ok: false, routeId, code, error, result };
}

/** Hono's own HTTPException statuses (a middleware such as `hono/bearer-auth` throws them), as codes. */
const HTTP_EXCEPTION_CODES: Partial<Record<number, ErrorCode>> = {
  400: "invalid_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  408: "request_timeout",
  413: "payload_too_large",
  415: "unsupported_media_type",
  429: "rate_limited",
};

/**
 * Renders any thrown value as the error envelope. An `AppError` by its code; Hono's
 * `HTTPException` by its status (its message is Hono's or the middleware's, never a secret);
 * anything else answers `internal` with a fixed text, never its message (the caller logs it).
 */
export function toErrorResponse(err: unknown, routeId: string | null): { status: ContentfulStatusCode; body: ErrorEnvelope; headers: Record<string, string> } {
  const headers: Record<string, string> = { ...JSON_UTF8 };
  if (err instanceof AppError) {
    if (err.opts.retryAfterS !== undefined) headers["Retry-After"] = String(err.opts.retryAfterS);
    if (err.code === "method_not_allowed") headers["Allow"] = "POST";
    if (err.opts.closeConnection) headers["Connection"] = "close";
    return { status: err.status, body: envelope(routeId, err.code, err.message), headers };
  }
  if (err instanceof HTTPException && err.status < 500) {
    const code = HTTP_EXCEPTION_CODES[err.status] ?? "invalid_request";
    return { status: err.status as ContentfulStatusCode, body: envelope(routeId, code, err.message || code), headers };
  }
  return { status: 500, body: envelope(routeId, "internal", "Internal error."), headers };
}

/** A startup failure that names the config key at fault; main.ts prints it and exits 1. */
export class StartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StartupError";
  }
}
