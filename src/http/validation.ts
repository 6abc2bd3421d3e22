import type { z } from "zod";

/** A zod error as the bundled plugin words it (and every surface here): the first issue only, as `path: message`. */
export function formatFirstIssue(error: z.ZodError): string {
  const first = error.issues[0];
  if (!first) return "invalid request";
  return `${first.path.length > 0 ? `${first.path.join(".")}: ` : ""}${first.message}`;
}
