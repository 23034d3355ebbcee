import { describe, expect, it } from "vitest";
import {
  enrollmentBundleJson,
  enrollmentBundleYaml,
  EnrollmentBundleReason,
  makeEnrollmentBundle,
  parseEnrollmentBundle,
  type EnrollmentBundle,
} from "./enrollment-bundle.js";
import { generateSealingKey, generateSigningKey } from "./keys.js";

const identity = generateSigningKey();
const sealing = generateSealingKey();
const capabilities = { os: "linux", arch: "x64", cores: 8, memoryBytes: 16 * 2 ** 30, diskFreeBytes: 1e9, containerEngine: "podman", gpus: [], kernel: "6.1.0" };
const bundle: EnrollmentBundle = makeEnrollmentBundle({
  hostId: "build01",
  identityPublicKey: identity.publicKey,
  sealingPublicKey: sealing.publicKey,
  agentVersion: "1.2.3",
  capabilities,
});

function reasonOf(text: string): unknown {
  try {
    parseEnrollmentBundle(text);
    return undefined;
  } catch (err) {
    expect(err).toMatchObject({ code: "ENROLLMENT_INVALID" });
    return (err as { reason?: unknown }).reason;
  }
}

describe("enrollment bundle", () => {
  it("prints key ids as fields, optIn false, and reads back the same bundle from YAML and JSON", () => {
    expect(bundle).toMatchObject({ identityKeyId: identity.keyId, sealingKeyId: sealing.keyId, optIn: false, capacity: 0 });
    const yaml = enrollmentBundleYaml(bundle);
    expect(yaml).toMatch(new RegExp(`^identityKeyId: ${identity.keyId}$`, "m"));
    expect(yaml).toMatch(/^optIn: false$/m);
    expect(yaml).toContain("lanekeeper hosts add");
    expect(parseEnrollmentBundle(yaml)).toEqual(bundle);
    expect(parseEnrollmentBundle(enrollmentBundleJson(bundle))).toEqual(bundle);
  });

  it("refuses a key that does not hash to its id, in both forms and for both keys", () => {
    const other = generateSigningKey().publicKey.toString("base64");
    const otherSealing = generateSealingKey().publicKey.toString("base64");
    for (const altered of [{ identityKey: other }, { sealingKey: otherSealing }, { identityKeyId: "f".repeat(64) }]) {
      const b = { ...bundle, ...altered };
      expect(reasonOf(JSON.stringify(b))).toBe(EnrollmentBundleReason.KEY_ID_MISMATCH);
      expect(reasonOf(enrollmentBundleYaml(bundle).replace(/^(identityKey|sealingKey|identityKeyId): .*$/gm, (line, k: string) => (k in altered ? `${k}: ${(altered as Partial<Record<string, string>>)[k]}` : line)))).toBe(
        EnrollmentBundleReason.KEY_ID_MISMATCH,
      );
    }
  });

  it("refuses missing key ids, the old snippet, optIn true and bad input, each with its reason", () => {
    const { identityKeyId: _drop, ...noId } = bundle;
    expect(reasonOf(JSON.stringify(noId))).toBe(EnrollmentBundleReason.MALFORMED);
    const old = `build01:\n  enrolled:\n    identityKey: ${bundle.identityKey}\n    sealingKey: ${bundle.sealingKey}\n  optIn: true\n  capacity: 0\n`;
    expect(reasonOf(old)).toBe(EnrollmentBundleReason.OLD_FORMAT);
    expect(reasonOf(JSON.stringify({ ...bundle, optIn: true }))).toBe(EnrollmentBundleReason.OPT_IN);
    expect(reasonOf(JSON.stringify({ ...bundle, identityKey: "AAAA" }))).toBe(EnrollmentBundleReason.KEY_INVALID);
    expect(reasonOf(JSON.stringify({ ...bundle, hostId: "Bad_Host" }))).toBe(EnrollmentBundleReason.MALFORMED);
    expect(reasonOf(JSON.stringify({ ...bundle, extra: 1 }))).toBe(EnrollmentBundleReason.MALFORMED);
    expect(reasonOf("__proto__:\n  enrolled: {identityKey: x, sealingKey: y}\n")).toBe(EnrollmentBundleReason.UNREADABLE);
    expect(reasonOf(`${enrollmentBundleYaml(bundle)}hostId: build02\n`)).toBe(EnrollmentBundleReason.UNREADABLE);
    expect(reasonOf("[1, 2]")).toBe(EnrollmentBundleReason.MALFORMED);
    expect(reasonOf("x: &a [1]\ny: *a\n")).toBe(EnrollmentBundleReason.MALFORMED);
  });

  it("says what was refused and what to do in the message", () => {
    expect(() => parseEnrollmentBundle(JSON.stringify({ ...bundle, identityKey: generateSigningKey().publicKey.toString("base64") }))).toThrow(
      /enrollment bundle refused \(KEY_ID_MISMATCH\): identityKey does not match identityKeyId .*copy it again from the host/,
    );
  });

  it("never prints a bundle it would refuse", () => {
    expect(() => enrollmentBundleYaml({ ...bundle, identityKeyId: "f".repeat(64) })).toThrow(expect.objectContaining({ reason: EnrollmentBundleReason.KEY_ID_MISMATCH }));
    expect(() => enrollmentBundleJson({ ...bundle, optIn: true })).toThrow(expect.objectContaining({ reason: EnrollmentBundleReason.OPT_IN }));
  });
});
