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

/**
 * Renders any thrown value as the seed's error envelope. Unknown errors never leak their message:
 * they answer `internal` with a fixed text (the caller logs the cause).
 */
export function toErrorResponse(
  err: unknown,
  routeId: string | null,
): { status: ContentfulStatusCode; body: ErrorEnvelope; headers: Record<string, string> } {
  const headers: Record<string, string> = { ...JSON_UTF8 };
  if (err instanceof AppError) {
    if (err.opts.retryAfterS !== undefined) headers["Retry-After"] = String(err.opts.retryAfterS);
    if (err.code === "method_not_allowed") headers["Allow"] = "POST";
    if (err.opts.closeConnection) headers["Connection"] = "close";
    return {
      status: err.status,
      body: { ok: false, routeId, code: err.code, error: err.message, result: {} },
      headers,
    };
  }
  return {
    status: 500,
    body: { ok: false, routeId, code: "internal", error: "Internal error.", result: {} },
    headers,
  };
}
