import { readFileSync } from "node:fs";

let cached: string | undefined;

/** The package version, sent to the Gateway as the client version and shown by /healthz. */
export function version(): string {
  cached ??= (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;
  return cached;
}
