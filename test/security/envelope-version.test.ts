// security-cases.md group 6: envelope version. Only version 1 is accepted; there is no downgrade path, even for a
// correctly signed payload.
import { describe, expect, it } from "vitest";
import { RejectReason, signIntent } from "@lanekeeper/shared";
import { intentFor, reasonOf, rewrapEnvelope, signRawIntent, verify, wire, world } from "./envelope-fixture.js";

describe("envelope version", () => {
  const w = world();
  const bytes = signIntent(intentFor(w.coordinator), w.coordinator);

  it("accepts version 1", () => {
    expect(reasonOf(() => verify(bytes, w))).toBe("accepted");
  });

  it.each([0, 2, 3, 0x7fffffff, 0xffffffff])("rejects version %d with a valid signature", (version) => {
    expect(reasonOf(() => verify(rewrapEnvelope(bytes, { version }), w))).toBe(RejectReason.ENVELOPE_VERSION);
  });

  it("rejects a missing version and an explicitly encoded version 0", () => {
    const env = rewrapEnvelope(bytes, { version: 0 });
    expect(env[0]).not.toBe(0x08); // ts-proto omits the default: no version field at all
    expect(reasonOf(() => verify(env, w))).toBe(RejectReason.ENVELOPE_VERSION);
    const explicitZero = Buffer.concat([wire.uint(1, 0), Buffer.from(env)]);
    expect(reasonOf(() => verify(explicitZero, w))).toBe(RejectReason.ENVELOPE_VERSION);
  });

  it("rejects a version written twice, whatever the last value says", () => {
    // A downgrade smuggled as a duplicate field: decoders keep the last value (1) but the encoding is not ours.
    const twice = Buffer.concat([wire.uint(1, 2), Buffer.from(bytes)]);
    expect(reasonOf(() => verify(twice, w))).toBe(RejectReason.ENVELOPE_MALFORMED);
    const lastIsTwo = Buffer.concat([Buffer.from(bytes), wire.uint(1, 2)]);
    expect(reasonOf(() => verify(lastIsTwo, w))).toBe(RejectReason.ENVELOPE_VERSION);
  });

  it("checks the version before the signature, so a v2 sender learns nothing else", () => {
    const garbageSig = rewrapEnvelope(bytes, { version: 2, signature: Buffer.alloc(3), keyId: "" });
    expect(reasonOf(() => verify(garbageSig, w))).toBe(RejectReason.ENVELOPE_VERSION);
    expect(reasonOf(() => verify(signRawIntent(Buffer.from("x"), w.coordinator, { version: 2 }), w))).toBe(RejectReason.ENVELOPE_VERSION);
  });
});
