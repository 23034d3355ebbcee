// security-cases.md group 4: tampering. Flipped bits anywhere, bad signature shapes, signatures moved between
// payloads or kinds, and a malleated Ed25519 signature (S + L), which must be tested rather than assumed.
import { sign } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  openEnvelope,
  pae,
  publicKeyFromRaw,
  RejectReason,
  ResultPayload,
  ResultStatus,
  SignedEnvelope,
  generateSigningKey,
  signEnvelope,
  signIntent,
  signResult,
  encodeIntent,
} from "@lanekeeper/shared";
import { intentFor, reasonOf, rewrapEnvelope, signRawIntent, verify, world } from "./envelope-fixture.js";

// Order of the Ed25519 base point (RFC 8032): L = 2^252 + 27742317777372353535851937790883648493.
const L = (1n << 252n) + 27742317777372353535851937790883648493n;

function leToBigInt(b: Buffer): bigint {
  return BigInt(`0x${Buffer.from(b).reverse().toString("hex") || "0"}`);
}
function bigIntToLe(n: bigint, len: number): Buffer {
  return Buffer.from(n.toString(16).padStart(len * 2, "0"), "hex").reverse();
}

describe("tampering", () => {
  const w = world();
  const intent = intentFor(w.coordinator);
  const bytes = signIntent(intent, w.coordinator);
  const env = SignedEnvelope.decode(bytes);

  it("accepts the untouched envelope", () => {
    expect(reasonOf(() => verify(bytes, w))).toBe("accepted");
  });

  it("rejects every single-bit flip in the payload with BAD_SIGNATURE", () => {
    for (let i = 0; i < env.payload.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const p = Buffer.from(env.payload);
        p[i] = (p[i] ?? 0) ^ (1 << bit);
        expect(reasonOf(() => verify(rewrapEnvelope(bytes, { payload: p }), w)), `byte ${i} bit ${bit}`).toBe(RejectReason.BAD_SIGNATURE);
      }
    }
  });

  it("rejects every single-bit flip in the signature with BAD_SIGNATURE", () => {
    for (let i = 0; i < 64; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const s = Buffer.from(env.signature);
        s[i] = (s[i] ?? 0) ^ (1 << bit);
        expect(reasonOf(() => verify(rewrapEnvelope(bytes, { signature: s }), w)), `byte ${i} bit ${bit}`).toBe(RejectReason.BAD_SIGNATURE);
      }
    }
  });

  it("never accepts a single-bit flip anywhere in the encoded envelope", () => {
    for (let i = 0; i < bytes.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const b = Buffer.from(bytes);
        b[i] = (b[i] ?? 0) ^ (1 << bit);
        expect(reasonOf(() => verify(b, w)), `byte ${i} bit ${bit}`).not.toBe("accepted");
      }
    }
  });

  it.each([
    ["truncated (63 bytes)", 63],
    ["empty (0 bytes)", 0],
    ["too long (65 bytes)", 65],
    ["doubled (128 bytes)", 128],
  ])("rejects a %s signature with SIGNATURE_LENGTH", (_name, len) => {
    const s = Buffer.alloc(len);
    env.signature.copy(s, 0, 0, Math.min(len, 64));
    expect(reasonOf(() => verify(rewrapEnvelope(bytes, { signature: s }), w))).toBe(RejectReason.SIGNATURE_LENGTH);
  });

  it("rejects an all-zero and an all-ones signature", () => {
    expect(reasonOf(() => verify(rewrapEnvelope(bytes, { signature: Buffer.alloc(64) }), w))).toBe(RejectReason.BAD_SIGNATURE);
    expect(reasonOf(() => verify(rewrapEnvelope(bytes, { signature: Buffer.alloc(64, 0xff) }), w))).toBe(RejectReason.BAD_SIGNATURE);
  });

  it("rejects a valid signature over a different payload", () => {
    const other = SignedEnvelope.decode(signIntent(intentFor(w.coordinator, { sequence: 2 }), w.coordinator));
    expect(reasonOf(() => verify(rewrapEnvelope(bytes, { signature: other.signature }), w))).toBe(RejectReason.BAD_SIGNATURE);
    expect(reasonOf(() => verify(rewrapEnvelope(bytes, { payload: other.payload }), w))).toBe(RejectReason.BAD_SIGNATURE);
  });

  it("rejects a result envelope presented as an intent (payload type confusion)", () => {
    // Same key, same bytes, other kind: the PAE differs, so the signature does not carry over.
    const asResult = signEnvelope("result", encodeIntent(intent), w.coordinator);
    expect(reasonOf(() => verify(asResult, w))).toBe(RejectReason.BAD_SIGNATURE);
    const asInventory = signEnvelope("inventory", encodeIntent(intent), w.coordinator);
    expect(reasonOf(() => verify(asInventory, w))).toBe(RejectReason.BAD_SIGNATURE);
    // A genuine agent result replayed at an agent: the agent key is not a trusted coordinator key.
    const agent = generateSigningKey();
    const result = signResult(
      ResultPayload.fromPartial({ intentId: intent.intentId, intentDigest: Buffer.alloc(32), hostId: "build01", sequence: 1, status: ResultStatus.RESULT_STATUS_OK }),
      agent,
    );
    expect(reasonOf(() => verify(result, w))).toBe(RejectReason.UNKNOWN_KEY);
    // And an intent cannot be presented as a result either.
    expect(reasonOf(() => openEnvelope("result", bytes, () => publicKeyFromRaw(w.coordinator.publicKey)))).toBe(RejectReason.BAD_SIGNATURE);
  });

  it("rejects a signature made over the raw payload without PAE", () => {
    const raw = sign(null, env.payload, w.coordinator.privateKey);
    expect(reasonOf(() => verify(rewrapEnvelope(bytes, { signature: raw }), w))).toBe(RejectReason.BAD_SIGNATURE);
    const otherType = sign(null, Buffer.concat([Buffer.from("DSSEv1 20 lanekeeper.intent.v2 "), Buffer.from(`${env.payload.length} `), env.payload]), w.coordinator.privateKey);
    expect(reasonOf(() => verify(rewrapEnvelope(bytes, { signature: otherType }), w))).toBe(RejectReason.BAD_SIGNATURE);
  });

  it("rejects a malleated Ed25519 signature (S + L)", () => {
    const s = leToBigInt(env.signature.subarray(32));
    expect(s < L).toBe(true);
    const malleated = Buffer.concat([env.signature.subarray(0, 32), bigIntToLe(s + L, 32)]);
    expect(malleated.equals(env.signature)).toBe(false);
    // S + L is congruent to S, so a verifier without the S < L check (RFC 8032 section 5.1.7) would accept it.
    expect(reasonOf(() => verify(rewrapEnvelope(bytes, { signature: malleated }), w))).toBe(RejectReason.BAD_SIGNATURE);
    // Setting the top bits of S directly is refused too.
    const topBit = Buffer.from(env.signature);
    topBit[63] = (topBit[63] ?? 0) | 0x80;
    expect(reasonOf(() => verify(rewrapEnvelope(bytes, { signature: topBit }), w))).toBe(RejectReason.BAD_SIGNATURE);
  });

  it("binds the signature to the exact bytes: a re-encoded equivalent payload does not verify", () => {
    // Same message, different bytes (operation_id written explicitly with its default ""): the signature must not transfer.
    const p = Buffer.concat([env.payload, Buffer.from([0x4a, 0x00])]);
    expect(reasonOf(() => verify(rewrapEnvelope(bytes, { payload: p }), w))).toBe(RejectReason.BAD_SIGNATURE);
    expect(pae("intent", p).equals(pae("intent", env.payload))).toBe(false);
    expect(reasonOf(() => verify(signRawIntent(env.payload, w.coordinator), w))).toBe("accepted");
  });
});
