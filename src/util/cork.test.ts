import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, connect, type AddressInfo, type Socket } from "node:net";
import { test } from "node:test";
import { corkUntilTurnEnds } from "./cork.js";

test("corkUntilTurnEnds: a turn's writes wait for the turn's end, then leave together and arrive", async (t) => {
  const received: Buffer[] = [];
  const server = createServer((s) => s.on("data", (d) => received.push(d)));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const client: Socket = connect((server.address() as AddressInfo).port, "127.0.0.1");
  await once(client, "connect");
  t.after(() => {
    client.destroy();
    server.close();
  });

  corkUntilTurnEnds(client);
  corkUntilTurnEnds(client); // a second call in the same turn does not cork twice
  client.write("first ");
  client.write("second");
  assert.equal(client.writableCorked, 1);
  assert.equal(client.writableLength, "first second".length, "nothing has been written yet");

  await new Promise((r) => setImmediate(r));
  assert.equal(client.writableCorked, 0, "uncorked at the end of the turn");
  const deadline = Date.now() + 2_000;
  while (Buffer.concat(received).toString() !== "first second" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.equal(Buffer.concat(received).toString(), "first second");

  // The next turn corks again; a destroyed stream is left alone.
  corkUntilTurnEnds(client);
  assert.equal(client.writableCorked, 1);
  await new Promise((r) => setImmediate(r));
  client.destroy();
  corkUntilTurnEnds(client);
  assert.equal(client.writableCorked, 0);
});
