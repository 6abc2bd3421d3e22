/**
 * Writes docs/configuration.md from the config schema (src/config/schema.ts, which takes in
 * src/config/endpoints.ts and src/config/inbound.ts): every key with its type, default and
 * `.describe()` text, through zod's own JSON Schema output. `npm run docs:config` writes it;
 * test/config-reference.test.ts fails when the file is not what this would write now.
 */
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { z } from "zod";
import { configSchema } from "../src/config/schema.js";

export const CONFIG_REFERENCE_PATH = resolve(import.meta.dirname, "../docs/configuration.md");

type Schema = {
  type?: string | string[];
  description?: string;
  default?: unknown;
  const?: unknown;
  enum?: unknown[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: Schema | boolean;
  items?: Schema;
  anyOf?: Schema[];
  oneOf?: Schema[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  maxItems?: number;
  format?: string;
};

type Row = { key: string; type: string; def: string; text: string };
type Section = { title: string; prefix: string; rows: Row[] };

/** The config schema as JSON Schema, input side, with the defaults zod drops from transforming schemas put back. */
export function configJsonSchema(): Schema {
  return z.toJSONSchema(configSchema, {
    io: "input",
    unrepresentable: "any",
    // zod leaves out a default whose schema transforms (durations, the gateway block); it is still the default.
    override: (ctx) => {
      const def = ctx.zodSchema._zod.def as { type: string; defaultValue?: unknown };
      if (def.type === "default" && ctx.jsonSchema.default === undefined) ctx.jsonSchema.default = JSON.parse(JSON.stringify(def.defaultValue));
    },
  }) as Schema;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const isObject = (s: Schema) => s.type === "object" || s.properties !== undefined;
const isRecord = (s: Schema) => isObject(s) && s.properties === undefined && typeof s.additionalProperties === "object";
const valuesOf = (s: Schema) => (typeof s.additionalProperties === "object" ? s.additionalProperties : {});
const isSecretRef = (s: Schema) => isObject(s) && ["source", "provider", "id"].every((k) => s.properties?.[k] !== undefined);
const isSecret = (s: Schema) => (s.anyOf?.length === 2 && s.anyOf[0]?.type === "string" && isSecretRef(s.anyOf[1]!)) || false;
const isDuration = (s: Schema) => Array.isArray(s.type) && s.type.join() === "number,string";
const union = (s: Schema) => s.oneOf ?? s.anyOf;
const objectUnion = (s: Schema) => {
  const u = union(s);
  return u !== undefined && !isSecret(s) && u.every(isObject) ? u : undefined;
};

/** A short type: `integer > 0`, `"a" \| "b"`, `secret`, `duration`, `string[]`, … */
function typeOf(s: Schema): string {
  if (isSecret(s)) return "secret";
  if (isDuration(s)) return "duration";
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  const u = union(s);
  if (u) {
    if (u.length === 2 && isSecret(u[0]!) && u[1]!.type === "array") return "secret or secret[]";
    return u.map(typeOf).join(" or ");
  }
  if (s.type === "array") return s.items && Object.keys(s.items).length > 0 ? `${s.items.enum ? `(${typeOf(s.items)})` : typeOf(s.items)}[]` : "array";
  if (isRecord(s)) return Object.keys(valuesOf(s)).length > 0 ? `map of ${typeOf(valuesOf(s))}` : "object";
  if (isObject(s)) return "object";
  if (s.type === "integer" || s.type === "number") {
    const lo = s.exclusiveMinimum !== undefined ? `> ${s.exclusiveMinimum}` : s.minimum !== undefined ? `≥ ${s.minimum}` : "";
    const hi = s.maximum !== undefined && s.maximum < MAX_SAFE ? `≤ ${s.maximum}` : "";
    return [s.type, lo, hi]
      .filter(Boolean)
      .join(" ")
      .replace(/ ≥ (\d+) ≤ (\d+)$/, " $1–$2");
  }
  if (s.format === "uri") return "URL";
  return typeof s.type === "string" ? s.type : "any";
}

const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");
const defaultOf = (s: Schema) => (s.default === undefined || (isObject(s) && !isRecord(s)) ? "" : `\`${JSON.stringify(s.default)}\``);

function walk(s: Schema, path: string, required: boolean, section: Section, sections: Section[]): void {
  const key = path.slice(section.prefix.length).replace(/^\./, "");
  const text = s.description ?? "";
  const req = required && s.default === undefined ? " (required)" : "";
  const variants = objectUnion(s);
  if (variants) {
    section.rows.push({
      key,
      type: `one of the forms below${req}`,
      def: s.default === undefined ? "" : `\`${JSON.stringify(s.default)}\``,
      text: key === "" ? "" : text,
    });
    for (const v of variants) {
      const tag = Object.entries(v.properties ?? {}).find(([, p]) => p.const !== undefined);
      const form = tag ? `${tag[0]}: ${JSON.stringify(tag[1].const)}` : `with ${Object.keys(v.properties ?? {}).join(", ")}`;
      const sub: Section = { title: `\`${path}\` ${form}`, prefix: path, rows: [] };
      sections.push(sub);
      walkProperties(v, path, sub, sections);
    }
    return;
  }
  const record = isRecord(s) && (isObject(valuesOf(s)) || objectUnion(valuesOf(s)) !== undefined);
  if (record || (s.type === "array" && s.items !== undefined && isObject(s.items) && !isSecretRef(s.items))) {
    const child = (record ? valuesOf(s) : s.items) as Schema;
    const childPath = record ? `${path}.<name>` : `${path}[]`;
    const what = record ? "A map of name → entry" : "A list of entries";
    section.rows.push({
      key,
      type: `${record ? "map" : "list"}${req}`,
      def: defaultOf(s),
      text: [text, `${what}: see \`${childPath}\` below.`].filter(Boolean).join(" "),
    });
    if (objectUnion(child)) {
      walk(child, childPath, false, section, sections);
      return;
    }
    const sub: Section = { title: `\`${childPath}\``, prefix: childPath, rows: [] };
    sections.push(sub);
    if (child.description) sub.rows.push({ key: "", type: "", def: "", text: child.description });
    walkProperties(child, childPath, sub, sections);
    return;
  }
  if (isObject(s) && !isSecretRef(s) && s.properties) {
    const def = s.default === undefined ? "" : JSON.stringify(s.default);
    if (key !== "" && (text || req)) section.rows.push({ key, type: `object${req}`, def: def.length > 0 && def.length <= 60 ? `\`${def}\`` : "", text });
    walkProperties(s, path, section, sections);
    return;
  }
  section.rows.push({ key, type: typeOf(s) + req, def: defaultOf(s), text });
}

function walkProperties(s: Schema, path: string, section: Section, sections: Section[]): void {
  for (const [name, prop] of Object.entries(s.properties ?? {})) {
    walk(prop, path === "" ? name : `${path}.${name}`, s.required?.includes(name) ?? false, section, sections);
  }
}

const PREAMBLE = `# Configuration reference

<!-- Generated by \`npm run docs:config\` (scripts/config-reference.ts) from the zod schema in
src/config/schema.ts, endpoints.ts and inbound.ts. Do not edit by hand: change a key's
\`.describe()\` and run the script; test/config-reference.test.ts fails when this file is stale. -->

Config comes from \`--config PATH\`, else \`$OPENCLAW_WEBHOOKS_CONFIG\`, else \`config/default.json5\`
(JSON5, or YAML for \`.yaml\`/\`.yml\`). The environment variables \`PORT\`, \`REDIS_URL\`,
\`OPENCLAW_GATEWAY_URL\`, \`OPENCLAW_GATEWAY_TOKEN\` and \`LOG_LEVEL\` override the file.
\`npx openclaw-webhooks config check FILE\` checks a file without starting anything (exit 0 valid,
1 invalid with the key named, 2 usage).

- Keys are strict: an unknown key stops startup with exit 1 and a message naming it, as does a bad
  value (\`plugins.entries.webhooks.config.routes.a.maxInFlight: Too small: expected number to be >0\`).
  Strings are trimmed.
- A Gateway config's \`plugins.entries.webhooks\` block pastes in verbatim.
- Route paths are normalised (a leading \`/\` added, one trailing \`/\` removed), a route answers on
  both \`/x\` and \`/x/\`, and two routes with the same normalised path are refused.
- A Redis whose \`maxmemory-policy\` is \`allkeys-*\` is refused (BullMQ and the delivery log cannot
  lose keys); \`volatile-*\`, or no persistence at all, gets a warning.
- **duration**: milliseconds, or a string such as \`"200ms"\`, \`"30s"\`, \`"5m"\`, \`"1h"\`, \`"7d"\`.
  Defaults are shown in milliseconds.

**Secrets.** A key of type **secret** takes a plain string or a SecretRef
\`{ source, provider, id }\`, re-resolved on every request, so rotation needs no restart:
- \`env\`: \`id\` is the variable name (also the shorthands \`"\${VAR}"\` and \`"$VAR"\`);
- \`file\`: with provider \`default\`, \`id\` is the path of a file holding the secret; with a
  \`secrets.providers\` entry, \`id\` is a JSON pointer into its file (\`mode: "json"\`) or the whole file
  (\`mode: "singleValue"\`);
- \`exec\`: the provider's command runs without a shell, gets
  \`{"protocolVersion":1,"provider","ids":[id]}\` on stdin and prints
  \`{"protocolVersion":1,"values":{id: value}}\`; its answer is cached at most one second;
- \`store\` (the Gateway's own secret store) cannot be read from outside the Gateway: such a route
  stays registered and answers 401, and startup warns.

A secret that does not resolve leaves its route registered and answering 401. Comparison is
constant-time. Logs show only how a secret is configured (\`secret_configured: "env:default:NAME"\`).

**A floor for secrets** (src/secrets/strength.ts). Every secret the service verifies a caller with
or signs with (route secrets, inbound auth secrets, endpoint signing secrets,
\`webhooks.publishToken\`, \`admin.token\`) must be at least 16 characters; a Standard Webhooks key
(endpoint secrets, the \`standard-webhooks\` inbound scheme) given as \`whsec_…\` must be canonical
base64 of at least 16 bytes. An inline value that falls short stops startup and \`config check\`
with the key named. An \`env\` or \`file\` SecretRef that resolves at startup is held to the same
floor (exit 1); one that resolves to a short value later counts as not resolving (401, or "no
signing secret resolves"), logged once per ref at error level without the value. The Gateway's
tokens (\`gateway.token\`, \`gateway.hooks.token\`) are the Gateway's to choose and are not checked.

Examples: \`config/default.json5\` (the embedded defaults \`npm start\` uses) and
\`config/example.json5\` (the compose stack's); outgoing endpoints in
[outgoing-webhooks.md](outgoing-webhooks.md), inbound endpoints in [inbound.md](inbound.md).
`;

/** The whole of docs/configuration.md. */
export function renderConfigReference(): string {
  const root = configJsonSchema();
  const sections: Section[] = [];
  for (const [name, prop] of Object.entries(root.properties ?? {})) {
    const section: Section = { title: `\`${name}\``, prefix: name, rows: [] };
    sections.push(section);
    if (prop.description) section.rows.push({ key: "", type: "", def: "", text: prop.description });
    walk(prop, name, root.required?.includes(name) ?? false, section, sections);
  }
  const out = [PREAMBLE];
  for (const s of sections) {
    if (s.rows.length === 0) continue;
    out.push(`## ${s.title}\n`);
    const intro = s.rows[0]!.key === "" && s.rows[0]!.type === "" ? s.rows.shift()!.text : "";
    if (intro) out.push(`${intro}\n`);
    if (s.rows.length === 0) continue;
    out.push("| key | type | default | description |\n|---|---|---|---|");
    out.push(`${s.rows.map((r) => `| ${r.key === "" ? "(itself)" : `\`${r.key}\``} | ${cell(r.type)} | ${cell(r.def)} | ${cell(r.text)} |`).join("\n")}\n`);
  }
  return out.join("\n");
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  writeFileSync(CONFIG_REFERENCE_PATH, renderConfigReference());
  console.log(`wrote ${CONFIG_REFERENCE_PATH}`);
}
