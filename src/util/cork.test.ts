import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, connect, type AddressInfo, type Socket } from "node:net";
import { Writable } from "node:stream";
import { test, type TestContext } from "node:test";
import { atTurnEnd, corkUntilTurnEnds } from "./cork.js";

test("corkUntilTurnEnds: a turn's writes wait for the turn's end, then leave together and arrive", async (t) => {
  const { client, received } = await loopbackPair(t);

  corkUntilTurnEnds(client);
  corkUntilTurnEnds(client); // a second call in the same turn does not cork twice
  client.write("first ");
  client.write("second");
  assert.equal(client.writableCorked, 1);
  assert.equal(client.writableLength, "first second".length, "nothing has been written yet");

  await new Promise((r) => setImmediate(r));
  assert.equal(client.writableCorked, 0, "uncorked at the end of the turn");
  await arrives(received, "first second");

  // The next turn corks again; a destroyed stream is left alone.
  corkUntilTurnEnds(client);
  assert.equal(client.writableCorked, 1);
  await new Promise((r) => setImmediate(r));
  client.destroy();
  corkUntilTurnEnds(client);
  assert.equal(client.writableCorked, 0);
});

test("atTurnEnd: a job runs at the turn's end and what it writes leaves in that same callback", async (t) => {
  const { client, received } = await loopbackPair(t);

  const order: string[] = [];
  corkUntilTurnEnds(client);
  client.write("a ");
  atTurnEnd(() => {
    order.push("job");
    // A job writes like any caller: the stream is corked for the turn and sent with the rest.
    corkUntilTurnEnds(client);
    client.write("from-job");
    atTurnEnd(() => order.push("job added by a job"));
  });
  assert.equal(order.length, 0, "nothing runs before the turn ends");
  // A setImmediate queued after the job runs after it, in the same turn end, and by then the
  // job's write has been handed to the socket.
  await new Promise<void>((r) =>
    setImmediate(() => {
      order.push("next immediate");
      assert.equal(client.writableCorked, 0, "uncorked in the turn-end callback");
      assert.equal(client.writableLength, 0, "the job's write did not wait for another turn");
      r();
    }),
  );
  assert.deepEqual(order, ["job", "job added by a job", "next immediate"]);
  await arrives(received, "a from-job");
});

test("a stream whose uncork throws is destroyed with the error, and the turn's other streams are still uncorked", async (t) => {
  const { client, received } = await loopbackPair(t);
  const bad = new Writable({ write: (_c, _e, cb) => cb() });
  let throwOnce = true;
  const uncork = bad.uncork.bind(bad);
  bad.uncork = () => {
    uncork();
    if (throwOnce) {
      throwOnce = false;
      throw new Error("uncork failed");
    }
  };
  const errored = new Promise<Error>((r) => bad.once("error", r));
  corkUntilTurnEnds(bad); // first in the set: uncorked (and throws) before the socket
  corkUntilTurnEnds(client);
  client.write("after");
  await new Promise((r) => setImmediate(r));
  assert.equal(client.writableCorked, 0, "the socket was uncorked despite the other stream's throw");
  await arrives(received, "after");
  assert.equal((await errored).message, "uncork failed", "the stream that threw is destroyed with its error, for its owner to see");
  assert.ok(bad.destroyed);
  // The next turn corks and uncorks the socket as before.
  corkUntilTurnEnds(client);
  assert.equal(client.writableCorked, 1);
  await new Promise((r) => setImmediate(r));
  assert.equal(client.writableCorked, 0);
});

/** Waits (2 s at most) until the server has received exactly `text`, and asserts it. */
async function arrives(received: Buffer[], text: string): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (Buffer.concat(received).toString() !== text && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.equal(Buffer.concat(received).toString(), text);
}

/** A client socket connected to a loopback server that keeps what it receives. */
async function loopbackPair(t: TestContext): Promise<{ client: Socket; received: Buffer[] }> {
  const received: Buffer[] = [];
  const server = createServer((s) => s.on("data", (d) => received.push(d)));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const client = connect((server.address() as AddressInfo).port, "127.0.0.1");
  await once(client, "connect");
  t.after(() => {
    client.destroy();
    server.close();
  });
  return { client, received };
}
