import assert from "node:assert/strict";
import { test } from "node:test";
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { AppError, toErrorResponse } from "./errors.js";

/** The one renderer: what a client gets for each kind of thrown value. */
test("an AppError answers its code's status, with Retry-After and Connection: close when it asks", () => {
  const r = toErrorResponse(new AppError("rate_limited", "Too Many Requests", { retryAfterS: 3, closeConnection: true }), "a");
  assert.equal(r.status, 429);
  assert.deepEqual(r.body, { ok: false, routeId: "a", code: "rate_limited", error: "Too Many Requests", result: {} });
  assert.equal(r.headers["Retry-After"], "3");
  assert.equal(r.headers.Connection, "close");
});

test("Hono's HTTPException keeps its 4xx status and gets a code (a bearer-auth 401 is not a 500)", async () => {
  const app = new Hono();
  app.get("/x", () => {
    throw new HTTPException(401, { message: "Unauthorized" });
  });
  app.onError((err, c) => {
    const { status, body } = toErrorResponse(err, null);
    return c.json(body, status);
  });
  const res = await app.request("/x");
  assert.equal(res.status, 401);
  assert.deepEqual(await res.json(), { ok: false, routeId: null, code: "unauthorized", error: "Unauthorized", result: {} });
});

test("anything else is 500 internal with a fixed text: an unknown error's message never leaks", () => {
  for (const err of [new Error("password=hunter2"), new HTTPException(503, { message: "upstream secret" }), "boom"]) {
    const r = toErrorResponse(err, null);
    assert.equal(r.status, 500);
    assert.equal(r.body.error, "Internal error.");
  }
});
