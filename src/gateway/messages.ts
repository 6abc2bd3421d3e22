/** Reading the Gateway's own shapes (session keys, transcript messages), in one place. */

/** The agent id in a session key of the Gateway's form `agent:<agentId>:<rest>`. */
export function agentOfSessionKey(key: string | undefined): string | undefined {
  return key ? /^agent:([^:]+):/.exec(key)?.[1] : undefined;
}

/**
 * The text of a transcript message or tool result: a string as it is, else its `content` when that
 * is a string, else the `text` parts of its content array joined; undefined when it has none of these.
 */
export function messageText(message: unknown): string | undefined {
  if (typeof message === "string") return message;
  if (!message || typeof message !== "object") return undefined;
  const c = (message as { content?: unknown }).content;
  if (typeof c === "string") return c;
  if (!Array.isArray(c)) return undefined;
  return c
    .filter((part): part is { type: "text"; text: string } => !!part && typeof part === "object" && part.type === "text" && typeof part.text === "string")
    .map((part) => part.text)
    .join("");
}
