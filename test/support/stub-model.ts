import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * What the stub model does with one chat-completions request.
 * - `text`: streams `text` in a few SSE chunks, then a usage chunk;
 * - `tool`: streams one tool call (`name`, `args`), finish reason `tool_calls`; the Gateway runs the
 *   tool and asks again with the result, and the stub then answers with `after` (a text reply);
 * - `status`: answers that HTTP status with an OpenAI-style error body (400 fails the run at once,
 *   500 makes the Gateway retry the model for about a minute, docs/openclaw-contract.md §4.2).
 */
export type StubReply =
  | { kind: "text"; text: string; usage?: { prompt: number; completion: number } }
  | { kind: "tool"; name: string; args: Record<string, unknown>; after?: string }
  | { kind: "status"; status: number; message?: string };

export type StubRequest = { model: string; userText: string; messages: any[]; hasToolResult: boolean };

/**
 * A loopback model provider speaking the OpenAI chat-completions API as the Gateway calls it
 * (docs/openclaw-contract.md §4.2: always `stream: true` with `stream_options.include_usage`, plus `GET /v1/models`).
 *
 * Scripting, per test: the reply comes from the first matching rule added with `when`, else from
 * directives in the user's own text, so concurrent turns stay independent:
 * `[stub:tool <name> <json args>]`, `[stub:status <code>]`, else a text reply `Echo: <text>`.
 * The Gateway sends `[system, user (the real text, timestamped), user (internal context)]`, so
 * every user message is searched for a directive.
 */
export async function startStubModel(opts: { port?: number } = {}) {
  const requests: StubRequest[] = [];
  const rules: { match: (r: StubRequest) => boolean; reply: (r: StubRequest) => StubReply; times: number }[] = [];
  let seq = 0;

  function decide(r: StubRequest): StubReply {
    for (const rule of rules) {
      if (rule.times !== 0 && rule.match(r)) {
        if (rule.times > 0) rule.times--;
        return rule.reply(r);
      }
    }
    const status = /\[stub:status (\d{3})\]/.exec(r.userText);
    if (status) return { kind: "status", status: Number(status[1]) };
    const tool = /\[stub:tool (\S+) (\{.*?\})\]/.exec(r.userText);
    if (tool && !r.hasToolResult) return { kind: "tool", name: tool[1]!, args: JSON.parse(tool[2]!) };
    if (tool) return { kind: "text", text: "The tool ran." };
    // The first user message of the turn is the user's text, after a `[timestamp]` prefix.
    const first = r.userText
      .split("\n")[0]!
      .replace(/^\[[^\]]*\]\s*/, "")
      .replace(/\[stub:[^\]]*\]/g, "")
      .trim();
    return { kind: "text", text: `Echo: ${first.slice(0, 200)}` };
  }

  const server = createServer((req, res) => {
    void handle(req, res).catch(() => res.destroy());
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    if (req.method === "GET" && req.url?.startsWith("/v1/models")) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ object: "list", data: [{ id: "stub-1", object: "model", created: 0, owned_by: "stub" }] }));
      return;
    }
    if (req.method !== "POST" || !req.url?.startsWith("/v1/chat/completions")) {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    const messages: any[] = Array.isArray(body.messages) ? body.messages : [];
    const textOf = (m: any) => (typeof m.content === "string" ? m.content : Array.isArray(m.content) ? m.content.map((p: any) => p?.text ?? "").join("") : "");
    // The current turn starts at the last user message that is not the Gateway's internal-context
    // block; a tool result after it means the turn's tool call ran and the reply is due.
    const isContext = (m: any) => m.role === "user" && textOf(m).startsWith("<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT");
    const start = messages.findLastIndex((m) => m.role === "user" && !isContext(m));
    const turn = start < 0 ? [] : messages.slice(start);
    const hasToolResult = turn.some((m) => m.role === "tool");
    const userText = turn
      .filter((m) => m.role === "user")
      .map(textOf)
      .join("\n");
    const r: StubRequest = { model: String(body.model ?? ""), userText, messages, hasToolResult };
    requests.push(r);
    if (requests.length > 5_000) requests.splice(0, 2_500);
    const reply = decide(r);
    if (reply.kind === "status") {
      res.writeHead(reply.status, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          error: {
            message: reply.message ?? `stub model answered ${reply.status}`,
            type: reply.status >= 500 ? "server_error" : "invalid_request_error",
            code: null,
          },
        }),
      );
      return;
    }
    const id = `chatcmpl-stub-${++seq}`;
    const created = Math.floor(Date.now() / 1000);
    const chunk = (delta: unknown, finish: string | null) => ({
      id,
      object: "chat.completion.chunk",
      created,
      model: r.model || "stub-1",
      choices: [{ index: 0, delta, finish_reason: finish }],
    });
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    const send = (o: unknown) => res.write(`data: ${JSON.stringify(o)}\n\n`);
    if (reply.kind === "tool") {
      send(
        chunk(
          { role: "assistant", content: null, tool_calls: [{ index: 0, id: `call_${seq}`, type: "function", function: { name: reply.name, arguments: "" } }] },
          null,
        ),
      );
      send(chunk({ tool_calls: [{ index: 0, function: { arguments: JSON.stringify(reply.args) } }] }, null));
      send(chunk({}, "tool_calls"));
      send({ id, object: "chat.completion.chunk", created, model: r.model, choices: [], usage: { prompt_tokens: 40, completion_tokens: 9, total_tokens: 49 } });
    } else {
      const words = reply.text.match(/\S+\s*/g) ?? [reply.text];
      send(chunk({ role: "assistant", content: "" }, null));
      for (const w of words) send(chunk({ content: w }, null));
      send(chunk({}, "stop"));
      const u = reply.usage ?? { prompt: 32, completion: words.length };
      send({
        id,
        object: "chat.completion.chunk",
        created,
        model: r.model,
        choices: [],
        usage: { prompt_tokens: u.prompt, completion_tokens: u.completion, total_tokens: u.prompt + u.completion },
      });
    }
    res.end("data: [DONE]\n\n");
  }

  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    /** Answers requests matching `match` with `reply`, `times` times (-1: always), before the directives. */
    when(match: (r: StubRequest) => boolean, reply: StubReply | ((r: StubRequest) => StubReply), times = -1) {
      rules.push({ match, reply: typeof reply === "function" ? reply : () => reply, times });
    },
    reset() {
      rules.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export type StubModel = Awaited<ReturnType<typeof startStubModel>>;
