import { pino, type Logger } from "pino";

/**
 * Root logger. Secrets never reach a log line: headers that carry them are redacted wherever they
 * appear, and config secrets are logged only as `*_configured` flags (see main.ts).
 */
export function createLogger(opts: { level: string } = { level: "info" }): Logger {
  return pino({
    level: opts.level,
    base: { service: "openclaw-webhooks" },
    redact: {
      paths: [
        "*.authorization",
        "*.headers.authorization",
        '*.headers["x-openclaw-webhook-secret"]',
        "*.token",
        "*.secret",
        "*.password",
      ],
      censor: "[redacted]",
    },
  });
}

export type { Logger };
