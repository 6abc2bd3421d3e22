import { z } from "zod";

/** Gateway WebSocket protocol v4 (docs/openclaw-contract.md §3.1). Frames are JSON text; unknown fields are kept. */
export const PROTOCOL_VERSION = 4;

export const gatewayErrorSchema = z.looseObject({
  code: z.string(),
  message: z.string(),
  details: z.unknown().optional(),
  retryable: z.boolean().optional(),
  retryAfterMs: z.number().optional(),
});
export type GatewayError = z.infer<typeof gatewayErrorSchema>;

export const resFrameSchema = z.looseObject({
  type: z.literal("res"),
  id: z.string(),
  ok: z.boolean(),
  payload: z.unknown().optional(),
  error: gatewayErrorSchema.optional(),
});
export const eventFrameSchema = z.looseObject({
  type: z.literal("event"),
  event: z.string(),
  payload: z.unknown().optional(),
  seq: z.number().optional(),
});
export const reqFrameSchema = z.looseObject({
  type: z.literal("req"),
  id: z.string(),
  method: z.string(),
  params: z.unknown().optional(),
});
export const frameSchema = z.discriminatedUnion("type", [resFrameSchema, eventFrameSchema, reqFrameSchema]);

/**
 * Parses one frame. `res` frames (one per call, the hot path) are checked by hand, which is several
 * times cheaper than the zod union; other frames go through `frameSchema`. Undefined when the text
 * is not a protocol v4 frame.
 */
export function parseFrame(text: string): z.infer<typeof frameSchema> | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  const f = raw as Partial<ResFrame> | null;
  if (f && f.type === "res" && typeof f.id === "string" && typeof f.ok === "boolean") {
    if (f.ok || (f.error && typeof f.error.code === "string" && typeof f.error.message === "string")) return f as ResFrame;
    return undefined;
  }
  const parsed = frameSchema.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}
export type ResFrame = z.infer<typeof resFrameSchema>;
export type EventFrame = z.infer<typeof eventFrameSchema>;
export type ReqFrame = z.infer<typeof reqFrameSchema>;

export const helloOkSchema = z.looseObject({
  type: z.literal("hello-ok"),
  protocol: z.number(),
  server: z.looseObject({ version: z.string().optional() }).optional(),
  features: z.looseObject({ methods: z.array(z.string()).optional(), events: z.array(z.string()).optional() }).optional(),
  policy: z.looseObject({ tickIntervalMs: z.number().optional(), maxPayload: z.number().optional() }).optional(),
});
export type HelloOk = z.infer<typeof helloOkSchema>;

export type ConnectParams = {
  minProtocol: number;
  maxProtocol: number;
  client: { id: string; version: string; platform: string; mode: string };
  role: "operator";
  scopes: string[];
  caps: string[];
  auth: { token: string };
};

/** Backend operator identity: trusted local backends may connect with the shared token alone. */
export function connectParams(token: string, version: string, scopes: string[]): ConnectParams {
  return {
    minProtocol: PROTOCOL_VERSION,
    maxProtocol: PROTOCOL_VERSION,
    client: { id: "gateway-client", version, platform: process.platform, mode: "backend" },
    role: "operator",
    scopes,
    caps: [],
    auth: { token },
  };
}

/** The Gateway's answer to a bad token: `INVALID_REQUEST` with `details.code` `AUTH_*`, then close 1008. */
export function isAuthRejection(err: GatewayError): boolean {
  const detail = (err.details as { code?: unknown } | undefined)?.code;
  return (typeof detail === "string" && detail.startsWith("AUTH_")) || /unauthori[sz]ed/i.test(err.message);
}
