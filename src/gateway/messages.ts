/** Reading the Gateway's own shapes (session keys, transcript messages), in one place. */

/**
 * The agent id in a session key of the Gateway's form `agent:<agentId>:<rest>`, by the Gateway's
 * own rule (its parseAgentSessionKey): the prefix in any case, a non-empty id and a non-empty rest
 * that does not start with `:`.
 */
export function agentOfSessionKey(key: string | undefined): string | undefined {
  if (key?.slice(0, 6).toLowerCase() !== "agent:") return undefined;
  const end = key.indexOf(":", 6);
  if (end === -1) return undefined;
  const agentId = key.slice(6, end).trim();
  const rest = key.slice(end + 1);
  return agentId && rest && !rest.startsWith(":") ? agentId : undefined;
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
