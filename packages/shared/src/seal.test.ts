import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { RejectReason } from "./errors.js";
import { generateSealingKey, sealingKeyFromSeed } from "./keys.js";
import { openSecret, sealContext, sealSecret, sealSecretWithEphemeral } from "./seal.js";
import { reasonOf } from "@lanekeeper/testing";

const sealFailure = reasonOf;

const INTENT_ID = "0123456789abcdef0123456789abcdef";
const ctx = sealContext({ purpose: "registration", hostId: "build01", laneId: "l1", intentId: INTENT_ID });

describe("sealed secrets", () => {
  it("round-trips and hides the plaintext", () => {
    const k = generateSealingKey();
    const secret = Buffer.from("AABBCCDDEEFF-registration-token");
    const sealed = sealSecret(k.publicKey, secret, ctx);
    expect(sealed.recipientKeyId).toBe(k.keyId);
    expect(sealed.ephemeralPublicKey).toHaveLength(32);
    expect(sealed.nonce).toHaveLength(12);
    expect(sealed.ciphertext).toHaveLength(secret.length + 16);
    expect(sealed.ciphertext.includes(secret)).toBe(false);
    expect(openSecret(k, sealed, ctx).equals(secret)).toBe(true);
    expect(ctx).toBe(`registration:build01/l1/${INTENT_ID}`);
  });

  it("uses a fresh ephemeral key and nonce every time", () => {
    const k = generateSealingKey();
    const a = sealSecret(k.publicKey, Buffer.from("x"), ctx);
    const b = sealSecret(k.publicKey, Buffer.from("x"), ctx);
    expect(a.ephemeralPublicKey.equals(b.ephemeralPublicKey)).toBe(false);
    expect(a.ciphertext.equals(b.ciphertext)).toBe(false);
  });

  it("is deterministic with a fixed ephemeral key and nonce", () => {
    const k = sealingKeyFromSeed(Buffer.alloc(32, 7));
    const eph = sealingKeyFromSeed(Buffer.alloc(32, 9)).privateKey;
    const a = sealSecretWithEphemeral(k.publicKey, Buffer.from("s"), ctx, eph, Buffer.alloc(12, 1));
    const b = sealSecretWithEphemeral(k.publicKey, Buffer.from("s"), ctx, eph, Buffer.alloc(12, 1));
    expect(a.ciphertext.equals(b.ciphertext)).toBe(true);
    expect(openSecret(k, a, ctx).toString()).toBe("s");
  });

  it("detects tampering anywhere", () => {
    const k = generateSealingKey();
    const sealed = sealSecret(k.publicKey, Buffer.from("token-value"), ctx);
    for (let i = 0; i < sealed.ciphertext.length; i++) {
      const c = Buffer.from(sealed.ciphertext);
      c[i] = (c[i] ?? 0) ^ 0x01;
      expect(sealFailure(() => openSecret(k, { ...sealed, ciphertext: c }, ctx))).toBe(RejectReason.SEAL_FAILED);
    }
    const n = Buffer.from(sealed.nonce);
    n[0] = (n[0] ?? 0) ^ 1;
    expect(sealFailure(() => openSecret(k, { ...sealed, nonce: n }, ctx))).toBe(RejectReason.SEAL_FAILED);
    const e = Buffer.from(sealed.ephemeralPublicKey);
    e[3] = (e[3] ?? 0) ^ 1;
    expect(sealFailure(() => openSecret(k, { ...sealed, ephemeralPublicKey: e }, ctx))).toBe(RejectReason.SEAL_FAILED);
  });

  it("binds the context and the recipient", () => {
    const k = generateSealingKey();
    const other = generateSealingKey();
    const sealed = sealSecret(k.publicKey, Buffer.from("t"), ctx);
    for (const elsewhere of [
      { purpose: "registration", hostId: "build01", laneId: "l2", intentId: INTENT_ID },
      { purpose: "remove-token", hostId: "build01", laneId: "l1", intentId: INTENT_ID },
      { purpose: "registration", hostId: "build02", laneId: "l1", intentId: INTENT_ID },
      // The same lane in another intent: a sealed blob cannot be lifted into a re-issue.
      { purpose: "registration", hostId: "build01", laneId: "l1", intentId: "f".repeat(32) },
    ] as const) {
      expect(sealFailure(() => openSecret(k, sealed, sealContext(elsewhere))), JSON.stringify(elsewhere)).toBe(RejectReason.SEAL_FAILED);
    }
    expect(sealFailure(() => openSecret(other, sealed, ctx))).toBe(RejectReason.SEAL_FAILED);
    // Even with the recipient id rewritten, the other key cannot open it.
    expect(sealFailure(() => openSecret(other, { ...sealed, recipientKeyId: other.keyId }, ctx))).toBe(RejectReason.SEAL_FAILED);
  });

  it("refuses malformed sealed secrets and low-order points", () => {
    const k = generateSealingKey();
    const sealed = sealSecret(k.publicKey, Buffer.from("t"), ctx);
    expect(sealFailure(() => openSecret(k, { ...sealed, nonce: Buffer.alloc(11) }, ctx))).toBe(RejectReason.SEAL_FAILED);
    expect(sealFailure(() => openSecret(k, { ...sealed, ciphertext: Buffer.alloc(15) }, ctx))).toBe(RejectReason.SEAL_FAILED);
    expect(sealFailure(() => openSecret(k, { ...sealed, ephemeralPublicKey: Buffer.alloc(31) }, ctx))).toBe(RejectReason.SEAL_FAILED);
    // The all-zero point is of low order: the shared secret would be zero.
    expect(sealFailure(() => openSecret(k, { ...sealed, ephemeralPublicKey: Buffer.alloc(32) }, ctx))).toBe(RejectReason.SEAL_FAILED);
    expect(sealFailure(() => sealSecret(Buffer.alloc(32), Buffer.from("t"), ctx))).toBe(RejectReason.SEAL_FAILED);
    expect(sealFailure(() => sealSecret(Buffer.alloc(31), Buffer.from("t"), ctx))).toBe(RejectReason.SEAL_FAILED);
    expect(sealFailure(() => sealSecret(k.publicKey, Buffer.alloc(17 * 1024), ctx))).toBe(RejectReason.SEAL_FAILED);
    const eph = generateKeyPairSync("x25519").privateKey;
    expect(sealFailure(() => sealSecretWithEphemeral(k.publicKey, Buffer.from("t"), ctx, eph, Buffer.alloc(8)))).toBe(
      RejectReason.SEAL_FAILED,
    );
  });

  it("builds the context only from valid ids, so it is unambiguous", () => {
    const base = { purpose: "registration", hostId: "build01", laneId: "l1", intentId: INTENT_ID } as const;
    for (const bad of [
      { ...base, hostId: "build01/l1" },
      { ...base, laneId: "../l1" },
      { ...base, laneId: "l1/" + INTENT_ID },
      { ...base, intentId: INTENT_ID.toUpperCase() },
      { ...base, intentId: "" },
    ]) {
      expect(sealFailure(() => sealContext(bad)), JSON.stringify(bad)).toBe(RejectReason.INVALID_NAME);
    }
    expect(sealFailure(() => sealContext({ ...base, purpose: "other" as "registration" }))).toBe(RejectReason.SEAL_FAILED);
  });
});
