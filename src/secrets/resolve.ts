import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import type { SecretInput, SecretRef } from "../config/common.js";
import type { SecretProviders } from "../config/schema.js";
import { secretProblem } from "./strength.js";

export type ResolveOptions = {
  /**
   * A credential the service presents rather than verifies or signs with (the Gateway's tokens):
   * its strength is the other side's rule, so secretProblem is not applied.
   */
  unchecked?: boolean;
  /** The value is a Standard Webhooks key: a `whsec_` value is decoded, so it is checked as one. */
  standardKey?: boolean;
};

export type SecretResolver = {
  /**
   * The secret's current value, or undefined when it does not resolve (the route then answers 401).
   * A SecretRef whose value fails secretProblem (strength.ts: `whsec_` with no key, not base64,
   * too short) does not resolve either, so it never becomes an empty or trivial key.
   */
  resolve(input: SecretInput, opts?: ResolveOptions): Promise<string | undefined>;
};

const ENV_ID = /^[A-Z][A-Z0-9_]{0,127}$/;
/** The Gateway accepts `${VAR}` and `$VAR` as shorthands for an env SecretRef on SecretInput fields. */
const ENV_SHORTHAND = /^\$(?:\{([A-Z][A-Z0-9_]{0,127})\}|([A-Z][A-Z0-9_]{0,127}))$/;

/** Exec output is cached at most this long, so rotation takes effect within a second (docs/configuration.md, Secrets). */
const EXEC_CACHE_MS = 1_000;

export function asSecretRef(input: SecretInput): SecretRef | undefined {
  if (typeof input !== "string") return input;
  const m = ENV_SHORTHAND.exec(input);
  const id = m?.[1] ?? m?.[2];
  return id ? { source: "env", provider: "default", id } : undefined;
}

/** Resolves a JSON pointer (RFC 6901) against a parsed document. */
function jsonPointer(doc: unknown, pointer: string): unknown {
  if (pointer === "") return doc;
  if (!pointer.startsWith("/")) return undefined;
  let cur: unknown = doc;
  for (const raw of pointer.slice(1).split("/")) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (cur === null || typeof cur !== "object" || !Object.hasOwn(cur, key)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

const nonEmpty = (v: unknown): string | undefined => {
  if (typeof v !== "string") return undefined;
  const t = v.trim();
  return t.length > 0 ? t : undefined;
};

function runExec(command: string, args: string[], timeoutMs: number, stdin: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { timeout: timeoutMs, maxBuffer: 1 << 20, shell: false }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
    child.stdin?.end(stdin);
  });
}

/**
 * Creates the resolver used on every request. env refs read `process.env` (or the injected env) at
 * call time; file refs read the file each time; exec refs run the provider's command with the
 * OpenClaw exec protocol (`{protocolVersion:1, provider, ids}` on stdin, `{values}` on stdout) and
 * cache each answer for at most one second, sharing one run between concurrent callers.
 */
export function createSecretResolver(opts: {
  providers: SecretProviders;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
  /** Told once per ref and problem (again after it resolved well) when a ref's value is refused. */
  onRefused?: (ref: string, problem: string) => void;
}): SecretResolver {
  const env = opts.env ?? process.env;
  const now = opts.now ?? Date.now;
  const execCache = new Map<string, { at: number; value: Promise<string | undefined> }>();

  async function fromFile(ref: SecretRef): Promise<string | undefined> {
    const provider = opts.providers[ref.provider];
    if (provider && provider.source !== "file") return undefined;
    // Without a configured provider, "default" reads the id as the path of a one-secret file.
    const path = provider ? provider.path : ref.provider === "default" ? ref.id : undefined;
    if (!path) return undefined;
    const text = await readFile(path, "utf8").catch(() => undefined);
    if (text === undefined) return undefined;
    if (!provider || provider.mode === "singleValue") return nonEmpty(text);
    try {
      return nonEmpty(jsonPointer(JSON.parse(text), ref.id));
    } catch {
      return undefined;
    }
  }

  async function runProvider(ref: SecretRef): Promise<string | undefined> {
    const provider = opts.providers[ref.provider];
    if (provider?.source !== "exec") return undefined;
    const stdin = JSON.stringify({ protocolVersion: 1, provider: ref.provider, ids: [ref.id] });
    try {
      const out = JSON.parse(await runExec(provider.command, provider.args, provider.timeoutMs, stdin));
      return nonEmpty(out?.values?.[ref.id]);
    } catch {
      return undefined;
    }
  }

  function fromExec(ref: SecretRef): Promise<string | undefined> {
    const key = `${ref.provider}\u0000${ref.id}`;
    const hit = execCache.get(key);
    const t = now();
    if (hit && t - hit.at < EXEC_CACHE_MS) return hit.value;
    const value = runProvider(ref);
    execCache.set(key, { at: t, value });
    return value;
  }

  function fromRef(ref: SecretRef): Promise<string | undefined> | string | undefined {
    switch (ref.source) {
      case "env": {
        const provider = opts.providers[ref.provider];
        if (ref.provider !== "default" && provider?.source !== "env") return undefined;
        return ENV_ID.test(ref.id) ? nonEmpty(env[ref.id]) : undefined;
      }
      case "file":
        return fromFile(ref);
      case "exec":
        return fromExec(ref);
      case "store":
        return undefined;
    }
  }

  const reported = new Set<string>();
  return {
    async resolve(input, ro) {
      const ref = asSecretRef(input);
      // Inline values were checked when the config loaded (config/load.ts).
      if (!ref) return nonEmpty(input);
      const value = await fromRef(ref);
      if (value === undefined || ro?.unchecked) return value;
      const name = describeSecret(ref);
      const problem = secretProblem(value, { standardKey: ro?.standardKey === true });
      if (problem === undefined) {
        if (reported.size) for (const k of reported) if (k.startsWith(`${name}\u0000`)) reported.delete(k);
        return value;
      }
      const k = `${name}\u0000${problem}`;
      if (!reported.has(k) && reported.size < 1_000) {
        reported.add(k);
        opts.onRefused?.(name, problem);
      }
      return undefined;
    },
  };
}

/** For logs and admin views: says whether a secret is configured and how, never its value. */
export function describeSecret(input: SecretInput): string {
  const ref = asSecretRef(input);
  return ref ? `${ref.source}:${ref.provider}:${ref.id}` : "inline";
}
