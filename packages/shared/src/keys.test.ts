import { createHash, sign, verify } from "node:crypto";
import { describe, expect, it } from "vitest";
import { KeyError } from "./errors.js";
import {
  generateSealingKey,
  generateSigningKey,
  keyIdOf,
  parseSealingPublicKey,
  parseSigningPublicKey,
  publicKeyFromRaw,
  publicKeyToPem,
  rawPublicKeyOf,
  sealingKeyFromPem,
  sealingKeyFromSeed,
  sealingKeyToPem,
  signingKeyFromPem,
  signingKeyFromSeed,
  signingKeyToPem,
} from "./keys.js";

describe("signing keys", () => {
  it("derives the key id from the raw public key", () => {
    const k = generateSigningKey();
    expect(k.publicKey).toHaveLength(32);
    expect(k.keyId).toBe(createHash("sha256").update(k.publicKey).digest("hex"));
    expect(keyIdOf(k.publicKey)).toBe(k.keyId);
    expect(rawPublicKeyOf(k.privateKey).equals(k.publicKey)).toBe(true);
  });

  it("round-trips through PEM and verifies with the raw public key", () => {
    const k = generateSigningKey();
    const pem = signingKeyToPem(k);
    expect(pem).toContain("-----BEGIN PRIVATE KEY-----");
    const back = signingKeyFromPem(pem);
    expect(back.keyId).toBe(k.keyId);
    const sig = sign(null, Buffer.from("hello"), back.privateKey);
    expect(verify(null, Buffer.from("hello"), publicKeyFromRaw(k.publicKey), sig)).toBe(true);
  });

  it("refuses the wrong key type and garbage", () => {
    expect(() => signingKeyFromPem(sealingKeyToPem(generateSealingKey()))).toThrow(KeyError);
    expect(() => sealingKeyFromPem(signingKeyToPem(generateSigningKey()))).toThrow(KeyError);
    expect(() => signingKeyFromPem("not a key")).toThrow(/PKCS#8/);
    expect(() => signingKeyFromPem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")).toThrow(KeyError);
    expect(() => publicKeyFromRaw(Buffer.alloc(31))).toThrow(/32 bytes/);
  });

  it("derives fixed keys from seeds (golden vectors only)", () => {
    const a = signingKeyFromSeed(Buffer.alloc(32, 1));
    const b = signingKeyFromSeed(Buffer.alloc(32, 1));
    expect(a.keyId).toBe(b.keyId);
    // RFC 8032 test 1: secret 9d61b19d..., public d75a9801...
    const rfc = signingKeyFromSeed(Buffer.from("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "hex"));
    expect(rfc.publicKey.toString("hex")).toBe("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    expect(() => signingKeyFromSeed(Buffer.alloc(31))).toThrow(KeyError);
  });
});

describe("sealing keys", () => {
  it("round-trips through PEM", () => {
    const k = generateSealingKey();
    const back = sealingKeyFromPem(sealingKeyToPem(k));
    expect(back.keyId).toBe(k.keyId);
    expect(back.publicKey.equals(k.publicKey)).toBe(true);
  });

  it("derives fixed keys from seeds", () => {
    // RFC 7748 section 6.1: Alice's private and public keys.
    const alice = sealingKeyFromSeed(Buffer.from("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", "hex"));
    expect(alice.publicKey.toString("hex")).toBe("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  });
});

describe("public key text", () => {
  it("accepts base64, base64url and PEM", () => {
    const s = generateSigningKey();
    expect(parseSigningPublicKey(s.publicKey.toString("base64")).equals(s.publicKey)).toBe(true);
    expect(parseSigningPublicKey(s.publicKey.toString("base64url")).equals(s.publicKey)).toBe(true);
    expect(parseSigningPublicKey(publicKeyToPem(s.publicKey, "ed25519")).equals(s.publicKey)).toBe(true);
    const x = generateSealingKey();
    expect(parseSealingPublicKey(` ${x.publicKey.toString("base64")}\n`).equals(x.publicKey)).toBe(true);
    expect(parseSealingPublicKey(publicKeyToPem(x.publicKey, "x25519")).equals(x.publicKey)).toBe(true);
  });

  it("refuses the wrong curve, wrong lengths and junk", () => {
    const s = generateSigningKey();
    const x = generateSealingKey();
    expect(() => parseSigningPublicKey(publicKeyToPem(x.publicKey, "x25519"))).toThrow(/ed25519/);
    expect(() => parseSealingPublicKey(publicKeyToPem(s.publicKey, "ed25519"))).toThrow(/x25519/);
    expect(() => parseSigningPublicKey(Buffer.alloc(31).toString("base64"))).toThrow(KeyError);
    expect(() => parseSigningPublicKey("not base64 at all!")).toThrow(KeyError);
    expect(() => parseSigningPublicKey("-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----")).toThrow(KeyError);
  });
});
