import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FakeClock } from "./clock.js";
import { decodeEnvelope, maxEnvelopeBytes, openEnvelope, pae, PAYLOAD_TYPES, signEnvelope } from "./envelope.js";
import { RejectReason } from "./errors.js";
import { KeyStatus, SignedEnvelope } from "./gen/lanekeeper/v1/envelope.js";
import { generateSealingKey, generateSigningKey, publicKeyFromRaw, sealingPublicKeyFromRaw } from "./keys.js";
import { MAX_ENVELOPE_BYTES_BY_KIND, MAX_INTENT_ENVELOPE_BYTES, MAX_INVENTORY_ENVELOPE_BYTES } from "./limits.js";
import { reasonOf } from "@lanekeeper/testing";


describe("pae", () => {
  it("matches the DSSE definition byte for byte", () => {
    // DSSE protocol.md example: PAE("http://example.com/HelloWorld", "hello world")
    expect(pae("intent", Buffer.from("hello world")).toString()).toBe("DSSEv1 20 lanekeeper.intent.v1 11 hello world");
    expect(pae("result", Buffer.alloc(0)).toString()).toBe("DSSEv1 20 lanekeeper.result.v1 0 ");
    expect(pae("inventory", Buffer.from("x")).toString()).toBe("DSSEv1 23 lanekeeper.inventory.v1 1 x");
    expect(pae("keyset", Buffer.from("x")).toString()).toBe("DSSEv1 20 lanekeeper.keyset.v1 1 x");
    expect(Object.keys(PAYLOAD_TYPES).sort()).toEqual(["intent", "inventory", "keyset", "result"]);
  });
});

describe("sign and open", () => {
  const key = generateSigningKey();
  const payload = Buffer.from("payload bytes");

  it("round-trips and returns the exact payload, key id and digest", () => {
    const bytes = signEnvelope("intent", payload, key);
    const env = SignedEnvelope.decode(bytes);
    expect(env.version).toBe(1);
    expect(env.keyId).toBe(key.keyId);
    expect(env.signature).toHaveLength(64);
    const opened = openEnvelope("intent", bytes, (id) => (id === key.keyId ? publicKeyFromRaw(key.publicKey) : undefined));
    expect(opened.payload.equals(payload)).toBe(true);
    expect(opened.keyId).toBe(key.keyId);
    expect(opened.digest.equals(createHash("sha256").update(payload).digest())).toBe(true);
  });

  it("separates kinds", () => {
    const bytes = signEnvelope("result", payload, key);
    const resolve = (): ReturnType<typeof publicKeyFromRaw> => publicKeyFromRaw(key.publicKey);
    expect(reasonOf(() => openEnvelope("result", bytes, resolve))).toBe("none");
    expect(reasonOf(() => openEnvelope("intent", bytes, resolve))).toBe(RejectReason.BAD_SIGNATURE);
    expect(reasonOf(() => openEnvelope("inventory", bytes, resolve))).toBe(RejectReason.BAD_SIGNATURE);
  });

  it("accepts a private KeyObject from the resolver and refuses non-Ed25519 keys", () => {
    const bytes = signEnvelope("intent", payload, key);
    expect(openEnvelope("intent", bytes, () => key.privateKey).keyId).toBe(key.keyId);
    const x = generateSealingKey();
    expect(reasonOf(() => openEnvelope("intent", bytes, () => sealingPublicKeyFromRaw(x.publicKey)))).toBe(RejectReason.UNKNOWN_KEY);
  });

  it("checks trusted-key status and window against the clock", () => {
    const bytes = signEnvelope("intent", payload, key);
    const clock = new FakeClock(1_000_000);
    const trusted = { keyId: key.keyId, publicKey: key.publicKey, status: KeyStatus.KEY_STATUS_ACTIVE, notBeforeMs: 500_000, notAfterMs: 2_000_000 };
    expect(openEnvelope("intent", bytes, () => trusted, clock).keyId).toBe(key.keyId);
    expect(reasonOf(() => openEnvelope("intent", bytes, () => ({ ...trusted, status: KeyStatus.KEY_STATUS_REVOKED }), clock))).toBe(
      RejectReason.KEY_REVOKED,
    );
    expect(reasonOf(() => openEnvelope("intent", bytes, () => ({ ...trusted, status: KeyStatus.KEY_STATUS_UNSPECIFIED }), clock))).toBe(
      RejectReason.KEY_REVOKED,
    );
    clock.set(2_000_001);
    expect(reasonOf(() => openEnvelope("intent", bytes, () => trusted, clock))).toBe(RejectReason.KEY_NOT_VALID_NOW);
    clock.set(499_999);
    expect(reasonOf(() => openEnvelope("intent", bytes, () => trusted, clock))).toBe(RejectReason.KEY_NOT_VALID_NOW);
    clock.set(500_000);
    expect(reasonOf(() => openEnvelope("intent", bytes, () => trusted, clock))).toBe("none");
  });

  it("refuses a resolver answer whose id is not the hash of its key", () => {
    const other = generateSigningKey();
    const bytes = signEnvelope("intent", payload, key);
    const liar = { keyId: key.keyId, publicKey: other.publicKey, status: KeyStatus.KEY_STATUS_ACTIVE, notBeforeMs: 0, notAfterMs: Number.MAX_SAFE_INTEGER };
    expect(reasonOf(() => openEnvelope("intent", bytes, () => liar))).toBe(RejectReason.UNKNOWN_KEY);
    expect(reasonOf(() => openEnvelope("intent", bytes, () => undefined))).toBe(RejectReason.UNKNOWN_KEY);
  });

  it("refuses to sign an envelope over the size limit", () => {
    expect(reasonOf(() => signEnvelope("intent", Buffer.alloc(64 * 1024), key))).toBe(RejectReason.ENVELOPE_TOO_LARGE);
  });

  it("applies each kind's own size cap before decoding", () => {
    // An envelope of one byte more than an intent may be: refused as an intent or a result, decoded as an inventory.
    const sized = (total: number): Uint8Array => {
      let n = total - 200;
      const enc = (len: number) => SignedEnvelope.encode({ version: 1, keyId: key.keyId, payload: Buffer.alloc(len, 1), signature: Buffer.alloc(64, 2) }).finish();
      while (enc(n).length < total) n++;
      return enc(n);
    };
    const big = sized(MAX_INTENT_ENVELOPE_BYTES + 1);
    expect(big.length).toBe(MAX_INTENT_ENVELOPE_BYTES + 1);
    expect(reasonOf(() => decodeEnvelope("intent", big))).toBe(RejectReason.ENVELOPE_TOO_LARGE);
    expect(reasonOf(() => decodeEnvelope("result", big))).toBe(RejectReason.ENVELOPE_TOO_LARGE);
    expect(reasonOf(() => decodeEnvelope("inventory", big))).toBe("none");
    const huge = sized(MAX_INVENTORY_ENVELOPE_BYTES + 1);
    expect(reasonOf(() => decodeEnvelope("inventory", huge))).toBe(RejectReason.ENVELOPE_TOO_LARGE);
    for (const kind of ["intent", "result", "inventory"] as const) expect(maxEnvelopeBytes(kind)).toBe(MAX_ENVELOPE_BYTES_BY_KIND[kind]);
    expect(() => maxEnvelopeBytes("keyset" as "intent")).toThrow(TypeError);
  });

  it("decodes the outer envelope in order: size, structure, version, signature, key id", () => {
    const good = SignedEnvelope.decode(signEnvelope("intent", payload, key));
    const enc = (m: Partial<SignedEnvelope>): Uint8Array => SignedEnvelope.encode({ ...good, ...m }).finish();
    expect(reasonOf(() => decodeEnvelope("intent", enc({ version: 2, signature: Buffer.alloc(1), keyId: "" })))).toBe(RejectReason.ENVELOPE_VERSION);
    expect(reasonOf(() => decodeEnvelope("intent", enc({ signature: Buffer.alloc(1), keyId: "" })))).toBe(RejectReason.SIGNATURE_LENGTH);
    expect(reasonOf(() => decodeEnvelope("intent", enc({ keyId: "" })))).toBe(RejectReason.KEY_ID_INVALID);
    expect(reasonOf(() => decodeEnvelope("intent", enc({ keyId: "A".repeat(64) })))).toBe(RejectReason.KEY_ID_INVALID);
    expect(reasonOf(() => decodeEnvelope("intent", enc({ keyId: "a".repeat(65) })))).toBe(RejectReason.KEY_ID_INVALID);
    expect(reasonOf(() => decodeEnvelope("intent", Buffer.from([0x0a])))).toBe(RejectReason.ENVELOPE_MALFORMED);
    expect(reasonOf(() => decodeEnvelope("intent", "x" as unknown as Uint8Array))).toBe(RejectReason.ENVELOPE_MALFORMED);
  });
});
