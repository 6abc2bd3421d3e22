import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { after, test } from "node:test";
import { Socket } from "node:net";
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import { WebSocket, WebSocketServer } from "ws";
import { startRedis } from "./support/redis.js";

/**
 * Canaries for the three places the service reaches into a library's internals (each justified
 * where it is used). The packages are pinned to exact versions in package.json; an upgrade that
 * moves one of these fails here, loudly, instead of silently changing behaviour.
 */
const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { dependencies: Record<string, string> };
const redis = await startRedis();
after(() => redis.dispose());

test("bullmq, ioredis and ws are pinned to exact versions", () => {
  for (const name of ["bullmq", "ioredis", "ws"]) assert.match(pkg.dependencies[name]!, /^\d+\.\d+\.\d+$/, `${name} is pinned`);
});

test("BullMQ's Worker still has stalledCheckStopper and lockManager.close (egress/engine.ts stops them when close is stuck)", async () => {
  const w = new Worker("canary", async () => {}, { connection: new Redis(redis.url, { maxRetriesPerRequest: null }), prefix: `${redis.prefix()}bull` });
  try {
    await w.waitUntilReady();
    await new Promise((r) => setTimeout(r, 100));
    const internals = w as unknown as { stalledCheckStopper?: unknown; lockManager?: { close?: unknown } };
    assert.equal(typeof internals.stalledCheckStopper, "function", "stalledCheckStopper");
    assert.equal(typeof internals.lockManager?.close, "function", "lockManager.close");
  } finally {
    await w.close(true);
    (w.opts.connection as Redis).disconnect();
  }
});

test("ioredis sends every command through a replaceable sendCommand, and exposes its socket as .stream (redis.ts corks it)", async () => {
  const r = new Redis(redis.url, { lazyConnect: true });
  try {
    let seen = 0;
    const send = r.sendCommand.bind(r);
    r.sendCommand = (command, stream) => {
      seen++;
      return send(command, stream);
    };
    await r.connect();
    await r.set("canary", "1");
    assert.equal(await r.get("canary"), "1");
    assert.ok(seen >= 2, `${seen} commands went through the replacement`);
    assert.ok(r.stream instanceof Socket, "redis.stream is the net.Socket");
  } finally {
    r.disconnect();
  }
});

test("ws keeps its net.Socket as _socket (the Gateway client corks it per turn)", async () => {
  const port = await new Promise<number>((res) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
  const wss = new WebSocketServer({ host: "127.0.0.1", port });
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`);
    await new Promise((res, rej) => ws.once("open", res).once("error", rej));
    assert.ok((ws as unknown as { _socket?: unknown })._socket instanceof Socket, "ws._socket is the net.Socket");
    ws.close();
  } finally {
    await new Promise((r) => wss.close(r));
  }
});
