import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { CONFIG_REFERENCE_PATH, configJsonSchema, renderConfigReference } from "../scripts/config-reference.js";

test("docs/configuration.md is what npm run docs:config writes from the config schema", () => {
  const onDisk = readFileSync(CONFIG_REFERENCE_PATH, "utf8");
  assert.ok(onDisk === renderConfigReference(), "docs/configuration.md is stale: run npm run docs:config");
});

test("every config key has a description", () => {
  const missing: string[] = [];
  // A secret is one key (a string or a SecretRef), described where it is used.
  const isSecretRef = (b: Record<string, unknown>) => ["source", "provider", "id"].every((k) => k in (b.properties as object));
  const visit = (s: Record<string, unknown>, path: string, described: boolean) => {
    const has = described || typeof s.description === "string";
    const props = s.properties as Record<string, Record<string, unknown>> | undefined;
    const branches = (s.oneOf ?? s.anyOf) as Record<string, unknown>[] | undefined;
    const values = typeof s.additionalProperties === "object" ? (s.additionalProperties as Record<string, unknown>) : undefined;
    if (props) for (const [k, v] of Object.entries(props)) visit(v, `${path}.${k}`, false);
    else if (branches?.some((b) => b.properties && !isSecretRef(b))) for (const b of branches) visit(b, path, has);
    else if (values && Object.keys(values).length > 0 && (values.properties || values.oneOf)) visit(values, `${path}.<name>`, true);
    else if (s.type === "array" && (s.items as Record<string, unknown> | undefined)?.properties) visit(s.items as Record<string, unknown>, `${path}[]`, true);
    else if (!has) missing.push(path.slice(1));
  };
  visit(configJsonSchema() as Record<string, unknown>, "", false);
  assert.deepEqual(missing, [], `keys without .describe(): ${missing.join(", ")}`);
});
