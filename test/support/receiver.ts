import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";

export type Received = { headers: IncomingMessage["headers"]; body: string; at: number; verified: boolean | undefined; verifyError?: string };
type Answer = { status?: number; headers?: Record<string, string>; body?: string | Buffer; delayMs?: number; hang?: boolean; destroy?: boolean };

/**
 * A loopback HTTP receiver that records every delivery and, when given a secret, checks each
 * signature with the real `standardwebhooks` verifier. Answers are scripted one at a time
 * (`next`), else `fallback` (200 by default).
 */
export async function startReceiver(opts: { secret?: string | Uint8Array; raw?: boolean; host?: string; port?: number } = {}) {
  const received: Received[] = [];
  const queue: Answer[] = [];
  let fallback: Answer = { status: 200, body: "ok" };
  let active = 0;
  let maxActive = 0;
  const verifier = opts.secret !== undefined ? new Webhook(opts.secret as string, opts.raw ? { format: "raw" } : undefined) : undefined;
  const server: Server = createServer((req, res) => {
    active++;
    maxActive = Math.max(maxActive, active);
    let done = false;
    const finish = () => {
      if (!done) active--;
      done = true;
    };
    res.on("close", finish);
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks).toString("utf8");
      let verified: boolean | undefined;
      let verifyError: string | undefined;
      if (verifier) {
        try {
          verifier.verify(body, req.headers as Record<string, string>);
          verified = true;
        } catch (err) {
          verified = false;
          verifyError = (err as Error).message;
        }
      }
      received.push({ headers: req.headers, body, at: Date.now(), verified, ...(verifyError ? { verifyError } : {}) });
      const a = queue.shift() ?? fallback;
      if (a.delayMs) await new Promise((r) => setTimeout(r, a.delayMs));
      if (a.destroy) return req.socket.destroy();
      if (a.hang) return;
      res.writeHead(a.status ?? 200, a.headers ?? {});
      res.end(a.body ?? "");
    });
  });
  // `host: "::"` listens on both stacks, for names such as localhost that may resolve to ::1 first.
  await new Promise<void>((r) => server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    /** The most requests this receiver had open at once. */
    get maxActive() {
      return maxActive;
    },
    next(a: Answer) {
      queue.push(a);
    },
    setFallback(a: Answer) {
      fallback = a;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
