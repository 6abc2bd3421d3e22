import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, test } from "node:test";
import { Webhook } from "standardwebhooks";
import { inboundAuthSchema } from "../config/inbound.js";
import { verifyInbound } from "./verify.js";

const body = Buffer.from(JSON.stringify({ repo: "my-app", branch: "main", status: "succeeded", note: "déploiement ✓" }));
/** The same JSON, re-serialised with other spacing: a verifier that parses first would accept it. */
const reserialised = Buffer.from(JSON.stringify(JSON.parse(body.toString()), null, 2));
const auth = (a: Record<string, unknown>) => inboundAuthSchema.parse(a);
const headersOf = (h: Record<string, string>) => (n: string) => h[n.toLowerCase()];
const now = Date.now();

describe("inbound signatures, against vectors from the real libraries", () => {
  const whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  const oldWhsec = "whsec_dGhlLW9sZC1zZWNyZXQtMDEyMzQ1Njc4OWFi";
  const sw = (secret: string, id: string, at: Date, payload: Buffer) => ({
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": new Webhook(secret).sign(id, at, payload.toString()),
  });

  test("standard-webhooks: good, bad, expired, future-dated, rotated, re-serialised", () => {
    const a = auth({ scheme: "standard-webhooks", secret: whsec });
    const good = sw(whsec, "msg_1", new Date(now), body);
    assert.deepEqual(verifyInbound(a, [whsec], body, headersOf(good), now), { ok: true });
    assert.equal(verifyInbound(a, [whsec], reserialised, headersOf(good), now).ok, false);
    assert.equal(verifyInbound(a, [whsec], body, headersOf({ ...good, "webhook-id": "msg_2" }), now).ok, false, "the id is signed");
    assert.equal(verifyInbound(a, [oldWhsec], body, headersOf(good), now).ok, false, "wrong secret");
    const old = sw(whsec, "msg_1", new Date(now - 301_000), body);
    assert.deepEqual(verifyInbound(a, [whsec], body, headersOf(old), now), { ok: false, reason: "timestamp too old" });
    const future = sw(whsec, "msg_1", new Date(now + 301_000), body);
    assert.deepEqual(verifyInbound(a, [whsec], body, headersOf(future), now), { ok: false, reason: "timestamp in the future" });
    assert.equal(verifyInbound(auth({ scheme: "standard-webhooks", secret: whsec, toleranceSeconds: 600 }), [whsec], body, headersOf(old), now).ok, true);
    // Rotation: the sender still signs with the old secret; both are active here.
    const byOld = sw(oldWhsec, "msg_3", new Date(now), body);
    assert.equal(verifyInbound(a, [whsec, oldWhsec], body, headersOf(byOld), now).ok, true);
    // A sender signing with both (a space-separated list) passes with either.
    const both = { ...good, "webhook-signature": `${sw(oldWhsec, "msg_1", new Date(now), body)["webhook-signature"]} ${good["webhook-signature"]}` };
    assert.equal(verifyInbound(a, [whsec], body, headersOf(both), now).ok, true);
    assert.equal(verifyInbound(a, [whsec], body, headersOf({ "webhook-id": "msg_1", "webhook-timestamp": good["webhook-timestamp"] }), now).ok, false);
  });

  test("github: X-Hub-Signature-256 over the raw body; rotation; re-serialised fails", () => {
    const secret = "It's a Secret to Everybody";
    // GitHub's documented test vector (docs: validating webhook deliveries).
    const vector = Buffer.from("Hello, World!");
    const a = auth({ scheme: "github", secrets: ["other", secret] });
    const h = { "x-hub-signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17" };
    assert.equal(verifyInbound(a, ["other", secret], vector, headersOf(h), now).ok, true);
    const sig = { "x-hub-signature-256": `sha256=${createHmac("sha256", secret).update(body).digest("hex")}` };
    assert.equal(verifyInbound(a, [secret], body, headersOf(sig), now).ok, true);
    assert.equal(verifyInbound(a, [secret], reserialised, headersOf(sig), now).ok, false);
    assert.equal(verifyInbound(a, ["other"], body, headersOf(sig), now).ok, false);
    assert.equal(verifyInbound(a, [secret], body, headersOf({ "x-hub-signature-256": "sha256=zz" }), now).ok, false);
    assert.equal(verifyInbound(a, [secret], body, headersOf({}), now).ok, false);
  });

  test("stripe: t=…,v1=… with tolerance both ways; several v1 entries; re-serialised fails", () => {
    const secret = "whsec_stripe_test_secret_0123456789";
    const stripeHeader = (t: number, key: string, payload: Buffer) => `t=${t},v1=${createHmac("sha256", key).update(`${t}.`).update(payload).digest("hex")}`;
    const a = auth({ scheme: "stripe", secret });
    const t = Math.floor(now / 1000);
    assert.equal(verifyInbound(a, [secret], body, headersOf({ "stripe-signature": stripeHeader(t, secret, body) }), now).ok, true);
    assert.equal(verifyInbound(a, [secret], reserialised, headersOf({ "stripe-signature": stripeHeader(t, secret, body) }), now).ok, false);
    assert.deepEqual(verifyInbound(a, [secret], body, headersOf({ "stripe-signature": stripeHeader(t - 400, secret, body) }), now), {
      ok: false,
      reason: "timestamp too old",
    });
    assert.deepEqual(verifyInbound(a, [secret], body, headersOf({ "stripe-signature": stripeHeader(t + 400, secret, body) }), now), {
      ok: false,
      reason: "timestamp in the future",
    });
    // During Stripe's own secret rotation the header carries two v1 entries.
    const two = `${stripeHeader(t, "old-secret", body)},v1=${createHmac("sha256", secret).update(`${t}.`).update(body).digest("hex")}`;
    assert.equal(verifyInbound(a, [secret], body, headersOf({ "stripe-signature": two }), now).ok, true);
    assert.equal(verifyInbound(a, [secret], body, headersOf({ "stripe-signature": `t=${t}` }), now).ok, false);
  });

  test("hmac: configurable header, prefix, encoding and algorithm", () => {
    const secret = "shared-hmac-secret";
    const a = auth({ scheme: "hmac", secret, header: "X-Signature", prefix: "sha512=", encoding: "base64", algorithm: "sha512" });
    const sig = `sha512=${createHmac("sha512", secret).update(body).digest("base64")}`;
    assert.equal(verifyInbound(a, [secret], body, headersOf({ "x-signature": sig }), now).ok, true);
    assert.equal(verifyInbound(a, [secret], body, headersOf({ "x-signature": sig.slice(7) }), now).ok, false, "prefix required");
    assert.equal(verifyInbound(a, [secret], reserialised, headersOf({ "x-signature": sig }), now).ok, false);
    const hex = auth({ scheme: "hmac", secret, header: "x-sig" });
    assert.equal(verifyInbound(hex, [secret], body, headersOf({ "x-sig": createHmac("sha256", secret).update(body).digest("hex") }), now).ok, true);
  });

  test("token: Authorization: Bearer or the named header; rotation; constant-time compare", () => {
    const a = auth({ scheme: "token", secrets: ["new-token-123", "old-token-456"], header: "x-ci-token" });
    assert.equal(verifyInbound(a, ["new-token-123", "old-token-456"], body, headersOf({ authorization: "Bearer old-token-456" }), now).ok, true);
    assert.equal(verifyInbound(a, ["new-token-123"], body, headersOf({ "x-ci-token": "new-token-123" }), now).ok, true);
    assert.equal(verifyInbound(a, ["new-token-123"], body, headersOf({ authorization: "Bearer nope" }), now).ok, false);
    assert.equal(
      verifyInbound(a, ["new-token-123"], body, headersOf({ "x-openclaw-webhook-secret": "new-token-123" }), now).ok,
      false,
      "only the named header",
    );
    assert.equal(verifyInbound(a, [], body, headersOf({ authorization: "Bearer new-token-123" }), now).ok, false, "no secret resolves");
  });

  test("config: an auth needs a secret, hmac needs its header", () => {
    assert.throws(() => auth({ scheme: "token" }));
    assert.throws(() => auth({ scheme: "hmac", secret: "s" }));
    assert.throws(() => auth({ scheme: "rot13", secret: "s" }));
  });
});
