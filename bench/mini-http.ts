import { createServer, type Server, type Socket } from "node:net";

/**
 * A loopback receiver that speaks just enough HTTP/1.1 over `net` to stay out of a measurement
 * (node:http cost ~130 µs of CPU a request on these two cores): a header block, then
 * Content-Length bytes of body; deliveries are never chunked. `onRequest` gets each request's
 * head (latin1) once the whole request is in, and the socket to answer on.
 */
export function createMiniHttpServer(onRequest: (head: string, sock: Socket) => void): Server {
  return createServer({ noDelay: true }, (sock) => {
    let buf: Buffer = Buffer.alloc(0);
    sock.on("data", (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      for (;;) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buf.subarray(0, end).toString("latin1");
        const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        buf = buf.subarray(end + 4 + len);
        onRequest(head, sock);
      }
    });
    sock.on("error", () => {});
  });
}

/** The `webhook-id` of a request head ("" when it has none). */
export const webhookIdOf = (head: string) => /\r\nwebhook-id:\s*([^\r]+)/i.exec(head)?.[1] ?? "";
