import { readFileSync } from "node:fs";
import { extname } from "node:path";
import JSON5 from "json5";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { asSecretRef } from "../secrets/resolve.js";
import { secretProblem } from "../secrets/strength.js";
import type { SecretInput } from "./common.js";
import { configSchema, hasRedis, type Config, type ConfigInput, type ParsedConfig, type Route } from "./schema.js";
import { StartupError } from "../errors.js";

export const DEFAULT_CONFIG_PATH = "config/default.json5";

/** A startup error that names the offending config key. `main.ts` prints it and exits 1. */
export class ConfigError extends StartupError {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Trim, add a leading `/`, strip one trailing `/` (the plugin's `normalizeWebhookPath`). */
export function normalizeWebhookPath(raw: string): string {
  let p = raw.trim();
  if (!p.startsWith("/")) p = `/${p}`;
  if (p.length > 1 && p.endsWith("/")) p = p.slice(0, -1);
  return p;
}

export function parseConfigText(text: string, file: string): unknown {
  try {
    const ext = extname(file).toLowerCase();
    return ext === ".yaml" || ext === ".yml" ? parseYaml(text) : JSON5.parse(text);
  } catch (err) {
    throw new ConfigError(`${file}: cannot parse: ${(err as Error).message}`);
  }
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const key = issue.path.map(String).join(".") || "(root)";
  if (issue.code === "unrecognized_keys") {
    const where = issue.path.length ? `${key}.` : "";
    return `${issue.keys.map((k) => `${where}${k}`).join(", ")}: unknown key`;
  }
  return `${key}: ${issue.message}`;
}

/** Env overrides (docs/configuration.md): PORT, REDIS_URL, OPENCLAW_GATEWAY_URL, OPENCLAW_GATEWAY_TOKEN, LOG_LEVEL. */
function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  // The raw file is still unvalidated: each section is made an object before a key is set in it.
  type Section = Record<string, unknown>;
  const out = structuredClone(raw);
  const section = (k: string): Section => (out[k] = out[k] && typeof out[k] === "object" ? out[k] : {}) as Section;
  if (env.PORT !== undefined && env.PORT !== "") {
    const port = Number(env.PORT);
    if (!Number.isInteger(port)) throw new ConfigError(`PORT (env): not an integer: ${JSON.stringify(env.PORT)}`);
    section("server").port = port;
  }
  if (env.REDIS_URL) section("redis").url = env.REDIS_URL;
  if (env.LOG_LEVEL) section("log").level = env.LOG_LEVEL;
  if (env.OPENCLAW_GATEWAY_URL) {
    const gw = section("gateway");
    if (gw.mode === "embedded") delete gw.mode;
    gw.url = env.OPENCLAW_GATEWAY_URL;
  }
  if (env.OPENCLAW_GATEWAY_TOKEN) section("gateway").token = env.OPENCLAW_GATEWAY_TOKEN;
  return out;
}

function buildRoutes(parsed: ParsedConfig): Route[] {
  const plugin = parsed.plugins.entries.webhooks;
  if (!plugin.enabled) return [];
  const byPath = new Map<string, string>();
  const routes: Route[] = [];
  for (const [id, r] of Object.entries(plugin.config.routes)) {
    if (!r.enabled) continue;
    const path = normalizeWebhookPath(r.path ?? `/plugins/webhooks/${id}`);
    const existing = byPath.get(path);
    if (existing !== undefined) {
      throw new ConfigError(`plugins.entries.webhooks.config.routes.${id}.path conflicts with routes.${existing}.path (${path}).`);
    }
    byPath.set(path, id);
    routes.push({
      id,
      path,
      sessionKey: r.sessionKey,
      secret: r.secret,
      controllerId: r.controllerId ?? `webhooks/${id}`,
      ...(r.description !== undefined ? { description: r.description } : {}),
      rateLimit: r.rateLimit ?? parsed.limits.rateLimit,
      maxInFlight: r.maxInFlight ?? parsed.limits.maxInFlight,
      maxBodyBytes: r.maxBodyBytes ?? parsed.limits.maxBodyBytes,
    });
  }
  return routes;
}

/**
 * Every secret the service verifies a caller with or signs with, by config key: enabled routes'
 * secrets, inbound endpoints' auth secrets, endpoint signing secrets, the publish and admin
 * tokens. Not the Gateway's tokens: the service presents those, and the Gateway sets their rules.
 * `standardKey` marks the ones a `whsec_` value is decoded for (secrets/strength.ts).
 */
export type VerifiedSecret = { key: string; input: SecretInput; standardKey: boolean };
export function verifiedSecrets(parsed: ParsedConfig, routes: readonly Route[]): VerifiedSecret[] {
  const out: VerifiedSecret[] = [];
  const add = (key: string, input: SecretInput | readonly SecretInput[] | undefined, standardKey = false) => {
    if (input === undefined) return;
    if (Array.isArray(input)) for (const [i, s] of input.entries()) out.push({ key: `${key}.${i}`, input: s, standardKey });
    else out.push({ key, input: input as SecretInput, standardKey });
  };
  for (const r of routes) add(`plugins.entries.webhooks.config.routes.${r.id}.secret`, r.secret);
  const inbound = parsed.webhooks.inbound;
  if (inbound?.enabled) {
    for (const [name, e] of Object.entries(inbound.endpoints)) {
      if (!e.enabled) continue;
      const standard = e.auth.scheme === "standard-webhooks";
      add(`webhooks.inbound.endpoints.${name}.auth.secret`, e.auth.secret, standard);
      add(`webhooks.inbound.endpoints.${name}.auth.secrets`, e.auth.secrets, standard);
    }
  }
  // Signing secrets: a whsec_ one is the Standard Webhooks key, whichever schemes the endpoint uses.
  for (const [i, e] of parsed.webhooks.endpoints.entries()) add(`webhooks.endpoints.${i}.secret`, e.secret, true);
  add("webhooks.publishToken", parsed.webhooks.publishToken);
  add("admin.token", parsed.admin.token);
  return out;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Validates a raw config object (as read from a file) with env overrides applied, and returns the
 * frozen Config. Throws ConfigError naming the first bad key.
 */
export function buildConfig(raw: unknown, env: NodeJS.ProcessEnv = {}, source = "config"): Config {
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== "object" || Array.isArray(raw)) throw new ConfigError(`${source}: the top level must be an object`);
  const withEnv = applyEnv(raw as Record<string, unknown>, env);
  const result = configSchema.safeParse(withEnv);
  if (!result.success) {
    const first = result.error.issues[0];
    throw new ConfigError(`${source}: ${first ? formatIssue(first) : "invalid"}`);
  }
  const parsed = result.data;
  if (parsed.webhooks.endpoints.length > 0 && !hasRedis(parsed.redis)) {
    throw new ConfigError(`${source}: webhooks.endpoints: outgoing webhooks need redis.url, redis.cluster or redis.sentinel (deliveries are queued in Redis)`);
  }
  const routes = buildRoutes(parsed);
  const inbound = parsed.webhooks.inbound;
  if (inbound?.enabled) {
    for (const name of Object.keys(inbound.endpoints)) {
      const path = `${inbound.basePath}/${name}`;
      const clash = routes.find((r) => r.path === path);
      if (clash) throw new ConfigError(`${source}: webhooks.inbound.endpoints.${name}: its path ${path} is also TaskFlow route ${clash.id}'s path`);
    }
  }
  // Inline values now; SecretRefs (and ${VAR} shorthands) when they resolve (secrets/resolve.ts).
  for (const { key, input, standardKey } of verifiedSecrets(parsed, routes)) {
    if (asSecretRef(input)) continue;
    const problem = secretProblem(input as string, { standardKey });
    if (problem) throw new ConfigError(`${source}: ${key}: ${problem}`);
  }
  return deepFreeze({ ...parsed, routes });
}

/** Picks the config file: --config PATH, else OPENCLAW_WEBHOOKS_CONFIG, else config/default.json5. */
export function resolveConfigPath(argPath: string | undefined, env: NodeJS.ProcessEnv): string {
  return argPath ?? env.OPENCLAW_WEBHOOKS_CONFIG ?? DEFAULT_CONFIG_PATH;
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return buildConfig(parseConfigText(text, file), env, file);
}

/** Test and tooling helper: a Config from an object, without env overrides unless given. */
export function configFrom(input: ConfigInput, env: NodeJS.ProcessEnv = {}): Config {
  return buildConfig(input, env, "config");
}
