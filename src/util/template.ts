/**
 * `{{path}}` templates, for delivery transforms (`{{data.error.message}}`, `{{timestamp}}`) and
 * inbound messages (`{{body.items[0].name}}`, `{{headers.x-event-type}}`), with the Gateway's
 * hooks.mappings rules: a missing value renders empty, an object or array renders as JSON, other
 * values as text. Paths are dot segments and `[n]` indexes; a segment may contain `-` (headers).
 * Only own properties are read, so `{{constructor}}` or `{{__proto__}}` render empty.
 * Hand-written: the template libraries (Handlebars, Mustache) bring helpers, partials and HTML
 * escaping that a webhook body must not have.
 */
const TOKEN = /\{\{\s*([A-Za-z0-9_$-]+(?:\.[A-Za-z0-9_$-]+|\[\d+\])*)\s*\}\}/g;

export function lookupPath(ctx: unknown, path: string): unknown {
  let cur: unknown = ctx;
  for (const m of path.matchAll(/([A-Za-z0-9_$-]+)|\[(\d+)\]/g)) {
    const key = m[1] ?? Number(m[2]);
    if (cur === null || typeof cur !== "object" || !Object.hasOwn(cur, key)) return undefined;
    cur = (cur as Record<string | number, unknown>)[key];
  }
  return cur;
}

const asText = (v: unknown): string => (v === undefined || v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));

export function renderTemplate(template: string, ctx: unknown): string {
  return template.replace(TOKEN, (_, path: string) => asText(lookupPath(ctx, path)));
}

/**
 * Renders every string inside a JSON-like value. A string that is exactly one `{{path}}` keeps the
 * value's type (a number stays a number, an object stays an object), so `{ "data": "{{data}}" }`
 * forwards the whole object rather than its JSON text.
 */
export function renderDeep(value: unknown, ctx: unknown): unknown {
  if (typeof value === "string") {
    const whole = /^\{\{\s*([A-Za-z0-9_$.[\]-]+)\s*\}\}$/.exec(value);
    if (whole) return lookupPath(ctx, whole[1]!) ?? "";
    return renderTemplate(value, ctx);
  }
  if (Array.isArray(value)) return value.map((v) => renderDeep(v, ctx));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderDeep(v, ctx)]));
  }
  return value;
}
