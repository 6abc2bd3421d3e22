import { z } from "zod";

/** Schemas every config block shares: a trimmed non-empty string, and a secret (a string or a SecretRef). */
export const trimmed = z.string().trim().min(1);

/** OpenClaw SecretRef (`docs/gateway/secrets/secretref-contract.md`). `store` is accepted so a pasted
 * Gateway config loads, but this service cannot read the Gateway's secret store: such a route stays
 * cold (401) and startup warns. */
export const secretRefSchema = z
  .strictObject({
    source: z.enum(["env", "file", "exec", "store"]).describe("Where the secret lives."),
    provider: trimmed.describe('Provider alias; "default" or a key of secrets.providers.'),
    id: trimmed.describe("Env var name, JSON pointer / file path, or exec id."),
  })
  .describe("A reference to a secret that is resolved on every request.");

export const secretInputSchema = z.union([trimmed, secretRefSchema]);
export type SecretRef = z.infer<typeof secretRefSchema>;
export type SecretInput = z.infer<typeof secretInputSchema>;
