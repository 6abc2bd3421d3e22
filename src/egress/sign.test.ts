import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { test } from "node:test";
import { Webhook } from "standardwebhooks";
import { signatureHeaders } from "./sign.js";

/** Seed 002's verification function, verbatim in behaviour. */
function verifyWebhook(payload: string, signature: string, timestamp: string, secret: string) {
  const expected = createHmac("sha256", secret).update(`${timestamp}.${payload}`).digest("hex");
  return `sha256=${expected}` === signature;
}

const body = JSON.stringify({ id: "evt_1", type: "message.sent", timestamp: "2026-11-22T12:00:00Z", instanceId: "i", data: { text: "héllo" } });
const now = () => Math.floor(Date.now() / 1000);

test("a whsec_ secret verifies with standardwebhooks and with the seed's function", () => {
  const secret = `whsec_${randomBytes(24).toString("base64")}`;
  const h = signatureHeaders({ id: "msg_1", timestamp: now(), body, secrets: [secret] });
  assert.deepEqual(new Webhook(secret).verify(body, h), JSON.parse(body));
  assert.ok(verifyWebhook(body, h["x-openclaw-signature"]!, h["x-openclaw-timestamp"]!, secret));
  assert.ok(!verifyWebhook(`${body} `, h["x-openclaw-signature"]!, h["x-openclaw-timestamp"]!, secret), "tampered body fails");
});

test("a plain secret is used as its UTF-8 bytes by both schemes", () => {
  const secret = "plain-secret-ñ-123";
  const h = signatureHeaders({ id: "msg_2", timestamp: now(), body, secrets: [secret] });
  // format "raw" with a string takes char codes (Latin-1), so a receiver passes the UTF-8 bytes.
  assert.ok(new Webhook(Buffer.from(secret, "utf8"), { format: "raw" }).verify(body, h));
  assert.ok(new Webhook(`whsec_${Buffer.from(secret, "utf8").toString("base64")}`).verify(body, h), "whsec_ + base64(bytes) is the same key");
  assert.ok(verifyWebhook(body, h["x-openclaw-signature"]!, h["x-openclaw-timestamp"]!, secret));
});

test("rotation: one v1 entry per active secret, each verifies on its own", () => {
  const oldS = `whsec_${randomBytes(24).toString("base64")}`;
  const newS = `whsec_${randomBytes(24).toString("base64")}`;
  const h = signatureHeaders({ id: "msg_3", timestamp: now(), body, secrets: [newS, oldS] });
  assert.equal(h["webhook-signature"]!.split(" ").length, 2);
  assert.ok(new Webhook(newS).verify(body, h));
  assert.ok(new Webhook(oldS).verify(body, h));
  assert.throws(() => new Webhook(`whsec_${randomBytes(24).toString("base64")}`).verify(body, h), /No matching signature/);
});

test("the timestamp is part of both signatures; a stale one is refused by standardwebhooks", () => {
  const secret = `whsec_${randomBytes(24).toString("base64")}`;
  const old = signatureHeaders({ id: "msg_4", timestamp: now() - 3600, body, secrets: [secret] });
  assert.throws(() => new Webhook(secret).verify(body, old), /too old/);
  const h = signatureHeaders({ id: "msg_4", timestamp: now(), body, secrets: [secret] });
  const shifted = String(Number(h["x-openclaw-timestamp"]) - 1);
  assert.ok(!verifyWebhook(body, h["x-openclaw-signature"]!, shifted, secret), "another timestamp does not verify");
});

test("legacy-body scheme (seed 003): HMAC of the body alone, no timestamp header", () => {
  const secret = "legacy";
  const h = signatureHeaders({ id: "msg_5", timestamp: now(), body, secrets: [secret], schemes: ["legacy-body"] });
  assert.equal(h["x-openclaw-signature"], `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`);
  assert.equal(h["x-openclaw-timestamp"], undefined);
  assert.equal(h["webhook-signature"], undefined);
});
