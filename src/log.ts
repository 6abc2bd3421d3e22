import { pino, type DestinationStream, type Logger } from "pino";

/**
 * Root logger (pino JSON). Secrets never reach a log line: request logs carry no headers or
 * bodies, config secrets are logged only as how they are configured (`describeSecret`), and as a
 * second line of defence the fields that could carry one are redacted wherever they appear.
 * `destination` is for tests that capture every line.
 */
export function createLogger(opts: { level: string; destination?: DestinationStream } = { level: "info" }): Logger {
  return pino(
    {
      level: opts.level,
      base: { service: "openclaw-webhooks" },
      redact: {
        paths: [
          "*.authorization",
          "*.headers.authorization",
          '*.headers["x-openclaw-webhook-secret"]',
          '*.headers["webhook-signature"]',
          '*.headers["x-openclaw-signature"]',
          '*.headers["x-hub-signature-256"]',
          '*.headers["stripe-signature"]',
          "*.token",
          "*.secret",
          "*.secrets",
          "*.password",
        ],
        censor: "[redacted]",
      },
    },
    opts.destination,
  );
}

export type { Logger };
