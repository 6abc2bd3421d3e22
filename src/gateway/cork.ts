import type { Socket } from "node:net";
import type WebSocket from "ws";

/**
 * Corks `socket` until the end of the current event-loop turn (`setImmediate` runs right after
 * the poll phase), so writes made by the callbacks of one poll phase leave as one `writev`.
 * Returns a function to call before each write.
 */
export function createTurnCork(socket: () => Socket | undefined): () => void {
  let corked = false;
  return () => {
    const raw = socket();
    if (!raw || corked) return;
    corked = true;
    raw.cork();
    setImmediate(() => {
      corked = false;
      raw.uncork();
    });
  };
}

/**
 * Coalesces the frames sent during one event-loop turn into one write. Under load many requests
 * reach their Gateway call in the same poll phase; without this each `send` is its own syscall
 * (a third of the ingress CPU in `npm run bench:ingress` profiles). The socket is corked on the
 * first send of a turn and uncorked in `setImmediate`, which runs right after the poll phase, so
 * no frame waits for more than the rest of the current turn.
 *
 * ws exposes no public accessor for its TCP socket; `_socket` has been stable across ws 7–8. If it
 * is absent, frames are simply sent uncorked.
 */
export function createCorkedSender(ws: WebSocket): (data: string, cb?: (err?: Error) => void) => void {
  const cork = createTurnCork(() => (ws as unknown as { _socket?: Socket })._socket);
  return (data, cb) => {
    cork();
    ws.send(data, cb);
  };
}
