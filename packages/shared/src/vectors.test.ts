// Golden vectors (test/fixtures/vectors): the committed files must verify with the public keys they carry, and
// re-deriving them from their seeds must reproduce every byte.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { deriveVectors, VECTOR_TIME_MS } from "../../../test/fixtures/vectors/derive-vectors.js";
import { FakeClock } from "./clock.js";
import { openEnvelope, pae } from "./envelope.js";
import { applyKeySetUpdate, buildKeySet, decodeSignedKeySet, TrustedKeyStore } from "./keyset.js";
import { decodeIntentPayload, verifyIntent } from "./intent.js";
import { decodeInventorySnapshot } from "./inventory.js";
import { publicKeyFromRaw, sealingKeyFromSeed, signingKeyFromSeed } from "./keys.js";
import { decodeResultPayload } from "./result.js";
import { openSecret, sealContext } from "./seal.js";

type Vec = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const load = (name: string): Vec => JSON.parse(readFileSync(new URL(`../../../test/fixtures/vectors/${name}`, import.meta.url), "utf8")) as Vec;
const buf = (h: string): Buffer => Buffer.from(h, "hex");

describe("golden vectors", () => {
  const keys = load("keys.json");

  it("derive the same keys from the same seeds", () => {
    for (const name of ["coordinator", "coordinatorNext", "root", "agent"]) {
      const k = signingKeyFromSeed(buf(keys[name].seedHex));
      expect(k.publicKey.toString("hex")).toBe(keys[name].publicKeyHex);
      expect(k.keyId).toBe(keys[name].keyId);
    }
    const s = sealingKeyFromSeed(buf(keys.agentSealing.privateKeyHex));
    expect(s.publicKey.toString("hex")).toBe(keys.agentSealing.publicKeyHex);
  });

  it.each([
    ["intent.json", "intent", decodeIntentPayload],
    ["result.json", "result", decodeResultPayload],
    ["inventory.json", "inventory", decodeInventorySnapshot],
  ] as const)("%s verifies with its public key and decodes strictly", (file, kind, decode) => {
    const v = load(file);
    const payload = buf(v.payloadHex);
    expect(pae(kind, payload).toString("hex")).toBe(v.paeHex);
    const opened = openEnvelope(kind, buf(v.envelopeHex), (id) => (id === v.keyId ? publicKeyFromRaw(buf(v.publicKeyHex)) : undefined));
    expect(opened.payload.equals(payload)).toBe(true);
    expect(opened.digest.toString("hex")).toBe(v.payloadSha256Hex);
    expect(() => decode(payload)).not.toThrow();
  });

  it("intent passes verifyIntent at its issue time and opens its sealed registration", () => {
    const v = load("intent.json");
    const clock = new FakeClock(VECTOR_TIME_MS);
    const coordinator = signingKeyFromSeed(buf(keys.coordinator.seedHex));
    const store = new TrustedKeyStore(buildKeySet({ version: 1, issuedAtMs: VECTOR_TIME_MS, members: [{ key: coordinator }] }));
    const { intent } = verifyIntent(buf(v.envelopeHex), { hostId: "build01", subjectHost: "build01", keys: store, clock });
    expect(intent.sequence).toBe(42);
    if (intent.action?.$case !== "create" || !intent.action.value.registration) throw new Error("expected a create intent");
    const sealing = sealingKeyFromSeed(buf(keys.agentSealing.privateKeyHex));
    const sealedVector = load("sealed-secret.json");
    // The context the agent derives from the intent itself, not the one the vector states, must open it.
    const context = sealContext({ purpose: "registration", hostId: "build01", laneId: intent.action.value.spec!.laneId, intentId: intent.intentId });
    expect(sealedVector.context).toBe(context);
    expect(openSecret(sealing, intent.action.value.registration, context).toString("hex")).toBe(sealedVector.plaintextHex);
  });

  it("key set update verifies against a version-1 set pinning the root key", () => {
    const v = load("keyset.json");
    const coordinator = signingKeyFromSeed(buf(keys.coordinator.seedHex));
    const root = signingKeyFromSeed(buf(keys.root.seedHex));
    const v1 = buildKeySet({ version: 1, issuedAtMs: VECTOR_TIME_MS - 1000, members: [{ key: coordinator, notBeforeMs: 0 }], roots: [{ key: root }] });
    const next = applyKeySetUpdate(v1, decodeSignedKeySet(buf(v.signedKeySetHex)), new FakeClock(VECTOR_TIME_MS));
    expect(next.version).toBe(2);
    expect(next.keys).toHaveLength(2);
  });

  it("re-derive byte for byte", () => {
    for (const [name, content] of Object.entries(deriveVectors())) {
      expect(JSON.parse(JSON.stringify(content)), name).toEqual(load(name));
    }
  });
});
