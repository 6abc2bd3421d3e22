import { z } from "zod";
import { durationSchema } from "../util/duration.js";

import { secretInputSchema as secretInput, trimmed } from "./common.js";

const headerName = z
  .string()
  .trim()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "not a header name")
  .transform((h) => h.toLowerCase());

/**
 * How an inbound endpoint authenticates its caller. Every endpoint has one (no anonymous
 * endpoints). `secrets` lists several active secrets during rotation (any one may match).
 */
export const inboundAuthSchema = z
  .strictObject({
    scheme: z.enum(["token", "standard-webhooks", "github", "stripe", "hmac"]).describe("What is checked (docs/inbound.md)."),
    secret: secretInput.optional().describe("The secret; give secret or secrets."),
    secrets: z.array(secretInput).min(1).optional().describe("Several secrets during rotation; any one may match."),
    header: headerName.optional().describe("token: a header that carries the token besides Authorization: Bearer; hmac: the signature header (required)."),
    prefix: z.string().optional().describe("hmac: text before the signature in the header, e.g. sha256="),
    encoding: z.enum(["hex", "base64"]).default("hex").describe("hmac: how the signature is written."),
    algorithm: z.enum(["sha256", "sha1", "sha512"]).default("sha256").describe("hmac only."),
    toleranceSeconds: z.number().int().min(1).max(86_400).default(300).describe("standard-webhooks and stripe: allowed clock skew, both ways."),
  })
  .refine((a) => (a.secret === undefined) !== (a.secrets === undefined), { message: "give secret or secrets (one of them)", path: ["secret"] })
  .refine((a) => a.scheme !== "hmac" || a.header !== undefined, { message: "the hmac scheme needs the header that carries the signature", path: ["header"] });
export type InboundAuth = z.infer<typeof inboundAuthSchema>;

export const inboundEndpointSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe("Serve this endpoint."),
    action: z.enum(["agent", "wake"]).default("agent").describe("agent starts an agent run; wake wakes the agent with a system event."),
    agentId: trimmed.optional().describe("The agent that runs or is woken (default: the Gateway's)."),
    template: z.string().min(1).optional().describe('agent: the message, e.g. "Alert received: {{body.title}}".'),
    textTemplate: z.string().min(1).optional().describe("wake: the system event text (default: template)."),
    name: trimmed.optional().describe("Shown as the source of the run (default: the endpoint name)."),
    sessionKey: trimmed.optional().describe("The session the run or wake goes to (default: the Gateway's)."),
    wakeMode: z.enum(["now", "next-heartbeat"]).default("now").describe("wake: now, or at the next heartbeat."),
    auth: inboundAuthSchema.describe("How the caller is authenticated; every endpoint needs one."),
    idempotency: z
      .strictObject({
        header: headerName.optional().describe("The header whose value identifies a delivery (default: webhook-id; X-GitHub-Delivery for github)."),
        bodyPath: trimmed.optional().describe("Or a path in the JSON body, e.g. id (the default for stripe)."),
        windowMs: durationSchema.default(24 * 3_600_000).describe("How long an answered delivery id is remembered: a repeat gets the first answer."),
      })
      .optional()
      .describe("How a delivery is recognised when it is sent again."),
    rateLimit: z
      .strictObject({
        windowMs: z.number().int().positive().describe("Fixed window length in ms."),
        maxRequests: z.number().int().positive().describe("Requests allowed per window per client IP."),
      })
      .optional()
      .describe("Overrides limits.rateLimit for this endpoint."),
    maxInFlight: z.number().int().positive().optional().describe("Overrides limits.maxInFlight."),
    maxBodyBytes: z.number().int().positive().optional().describe("Overrides limits.maxBodyBytes."),
    description: trimmed.optional().describe("Operator note only."),
  })
  .refine((e) => e.action !== "agent" || e.template !== undefined, { message: "an agent endpoint needs a template", path: ["template"] })
  .refine((e) => e.action !== "wake" || e.template !== undefined || e.textTemplate !== undefined, {
    message: "a wake endpoint needs a textTemplate (or template)",
    path: ["textTemplate"],
  });
export type InboundEndpoint = z.infer<typeof inboundEndpointSchema>;

export const inboundSchema = z.strictObject({
  enabled: z.boolean().default(true).describe("Serve the inbound endpoints at all."),
  basePath: z
    .string()
    .trim()
    .default("/webhooks/inbound")
    .transform((p) => `/${p.replace(/^\/+|\/+$/g, "")}`)
    .refine((p) => p !== "/", "basePath cannot be /")
    .describe("Path prefix of every inbound endpoint (not /)."),
  endpoints: z
    .record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "letters, digits, . _ - (at most 64)"), inboundEndpointSchema)
    .default({})
    .describe("Inbound endpoints by name: POST <basePath>/<name>."),
});
export type InboundConfig = z.infer<typeof inboundSchema>;
