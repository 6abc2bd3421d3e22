import { Ajv2020 } from "ajv/dist/2020.js";

type Doc = {
  webhooks: Record<string, { post: { requestBody: { content: Record<string, { schema: { $ref: string } }> } } }>;
  components: { schemas: Record<string, unknown> };
};

/** A JSON Schema 2020-12 validator that knows the formats the document uses (zod writes `date-time`). */
export function newAjv() {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addFormat("date-time", (s: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(s) && !Number.isNaN(Date.parse(s)));
  return ajv;
}

/**
 * Validates delivered payloads against the event catalogue of a served `/openapi.json` (its
 * `webhooks`), with a JSON Schema 2020-12 validator (Ajv), not with the zod schemas it came from:
 * what a receiver generating code from the document would check. A type the catalogue does not
 * list is an agent's event (id `agent_…`) or a published one.
 */
export function catalogueValidator(doc: Doc) {
  const ajv = newAjv();
  ajv.addSchema({ $id: "doc", components: doc.components });
  const compiled = new Map<string, ReturnType<typeof ajv.compile>>();
  const validatorFor = (name: string) => {
    let v = compiled.get(name);
    if (!v) {
      const ref = doc.webhooks[name]!.post.requestBody.content["application/json"]!.schema.$ref;
      v = ajv.compile({ $ref: `doc${ref}` });
      compiled.set(name, v);
    }
    return v;
  };
  const entryFor = (e: { type?: unknown; id?: unknown }) =>
    typeof e.type === "string" && doc.webhooks[e.type] ? e.type : typeof e.id === "string" && e.id.startsWith("agent_") ? "agent event" : "published event";
  return {
    types: Object.keys(doc.webhooks),
    entryFor,
    /** The problems with one delivered envelope, or [] when it meets its catalogue entry. */
    problems(envelope: unknown): string[] {
      const name = entryFor((envelope ?? {}) as { type?: unknown; id?: unknown });
      const v = validatorFor(name);
      return v(envelope) ? [] : (v.errors ?? []).map((e) => `${name}: ${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`);
    },
  };
}
