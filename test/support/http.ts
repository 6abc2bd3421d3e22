import { connect, type Socket } from "node:net";

export type RawResponse = { status: number; headers: Record<string, string>; body: string; raw: string };

function parseResponse(raw: string): RawResponse {
  const end = raw.indexOf("\r\n\r\n");
  const head = raw.slice(0, end < 0 ? raw.length : end).split("\r\n");
  const status = Number(head[0]?.split(" ")[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(":");
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  let body = end < 0 ? "" : raw.slice(end + 4);
  if (headers["transfer-encoding"] === "chunked") {
    let out = "";
    let rest = body;
    for (;;) {
      const nl = rest.indexOf("\r\n");
      const size = parseInt(rest.slice(0, nl), 16);
      if (!size) break;
      out += rest.slice(nl + 2, nl + 2 + size);
      rest = rest.slice(nl + 2 + size + 2);
    }
    body = out;
  }
  return { status, headers, body, raw };
}

/**
 * Sends a request over a raw TCP socket, part by part, with pauses between parts: slow bodies,
 * chunked bodies, stalls. Resolves with the first response once the server ends it or closes.
 * Every wait is bounded by `timeoutMs`.
 */
export function rawRequest(
  port: number,
  parts: (string | Buffer | { pauseMs: number })[],
  opts: { timeoutMs?: number; host?: string } = {},
): Promise<RawResponse & { closedByServer: boolean; elapsedMs: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, opts.host ?? "127.0.0.1");
    let raw = "";
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parseResponse(raw), closedByServer, elapsedMs: Date.now() - started });
    };
    const timer = setTimeout(() => {
      if (raw) finish(false);
      else {
        done = true;
        socket.destroy();
        reject(new Error(`no response within ${opts.timeoutMs ?? 20_000} ms`));
      }
    }, opts.timeoutMs ?? 20_000);
    socket.on("data", (d) => {
      raw += d.toString("latin1");
      const r = parseResponse(raw);
      const len = Number(r.headers["content-length"] ?? NaN);
      if (Number.isFinite(len) && Buffer.byteLength(r.body, "latin1") >= len && r.headers.connection !== "close") finish(false);
    });
    socket.on("close", () => finish(true));
    socket.on("error", () => finish(true));
    socket.on("connect", async () => {
      for (const part of parts) {
        if (done || socket.destroyed) return;
        if (typeof part === "object" && "pauseMs" in part) await new Promise((r) => setTimeout(r, part.pauseMs));
        else socket.write(part);
      }
    });
  });
}

/** Request head for `rawRequest`. */
export function head(path: string, headers: Record<string, string | number>): string {
  const lines = [`POST ${path} HTTP/1.1`, "Host: 127.0.0.1"];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  return `${lines.join("\r\n")}\r\n\r\n`;
}

export const chunk = (s: string | Buffer) => {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
  return Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from("\r\n")]);
};
export const lastChunk = "0\r\n\r\n";
