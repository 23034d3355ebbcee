/**
 * Ed25519 signing keys and X25519 sealing keys, with node:crypto only. A key id is the hex SHA-256 of the raw
 * 32-byte public key: derived from the key, never a name, so it cannot be chosen to collide.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { KeyError } from "./errors.js";
import { RAW_PUBLIC_KEY_BYTES } from "./limits.js";

/** An Ed25519 key pair that signs envelopes (coordinator intents, agent results and inventories). */
export interface SigningKey {
  /** Hex SHA-256 of {@link SigningKey.publicKey}. */
  readonly keyId: string;
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Buffer;
  readonly privateKey: KeyObject;
}

/** An X25519 key pair secrets are sealed to (one per agent). */
export interface SealingKey {
  /** Hex SHA-256 of {@link SealingKey.publicKey}. */
  readonly keyId: string;
  /** Raw 32-byte X25519 public key. */
  readonly publicKey: Buffer;
  readonly privateKey: KeyObject;
}

// DER prefixes of SubjectPublicKeyInfo and PKCS#8 for the two curves (RFC 8410); the raw key follows them.
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
const X25519_SPKI_PREFIX = Buffer.from("302a300506032b656e032100", "hex");
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const X25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");

/** Hex SHA-256 of a raw public key. */
export function keyIdOf(rawPublicKey: Uint8Array): string {
  return createHash("sha256").update(rawPublicKey).digest("hex");
}

function rawFromPublic(pub: KeyObject, type: "ed25519" | "x25519"): Buffer {
  if (pub.asymmetricKeyType !== type) throw new KeyError(`expected an ${type} key, got ${pub.asymmetricKeyType ?? "a symmetric key"}`);
  const der = pub.export({ format: "der", type: "spki" });
  return Buffer.from(der.subarray(der.length - RAW_PUBLIC_KEY_BYTES));
}

function checkRaw(raw: Uint8Array, what: string): void {
  if (raw.length !== RAW_PUBLIC_KEY_BYTES) {
    throw new KeyError(`${what} public key must be ${RAW_PUBLIC_KEY_BYTES} bytes, got ${raw.length}`);
  }
}

/** The raw 32 bytes of an Ed25519 public (or private) KeyObject. */
export function rawPublicKeyOf(key: KeyObject): Buffer {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  return rawFromPublic(pub, pub.asymmetricKeyType === "x25519" ? "x25519" : "ed25519");
}

/** An Ed25519 public KeyObject from its raw 32 bytes. */
export function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  checkRaw(raw, "Ed25519");
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: "der", type: "spki" });
}

/** An X25519 public KeyObject from its raw 32 bytes. */
export function sealingPublicKeyFromRaw(raw: Uint8Array): KeyObject {
  checkRaw(raw, "X25519");
  return createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, raw]), format: "der", type: "spki" });
}

function signingKeyFromPrivate(privateKey: KeyObject): SigningKey {
  if (privateKey.asymmetricKeyType !== "ed25519") {
    throw new KeyError(`expected an Ed25519 private key, got ${privateKey.asymmetricKeyType ?? "a symmetric key"}`);
  }
  const publicKey = rawFromPublic(createPublicKey(privateKey), "ed25519");
  return Object.freeze({ keyId: keyIdOf(publicKey), publicKey, privateKey });
}

function sealingKeyFromPrivate(privateKey: KeyObject): SealingKey {
  if (privateKey.asymmetricKeyType !== "x25519") {
    throw new KeyError(`expected an X25519 private key, got ${privateKey.asymmetricKeyType ?? "a symmetric key"}`);
  }
  const publicKey = rawFromPublic(createPublicKey(privateKey), "x25519");
  return Object.freeze({ keyId: keyIdOf(publicKey), publicKey, privateKey });
}

/** A fresh random Ed25519 signing key. */
export function generateSigningKey(): SigningKey {
  return signingKeyFromPrivate(generateKeyPairSync("ed25519").privateKey);
}

/** A fresh random X25519 sealing key. */
export function generateSealingKey(): SealingKey {
  return sealingKeyFromPrivate(generateKeyPairSync("x25519").privateKey);
}

/**
 * A signing key from a fixed 32-byte seed. Only for golden test vectors: real keys come from
 * {@link generateSigningKey}.
 */
export function signingKeyFromSeed(seed: Uint8Array): SigningKey {
  if (seed.length !== 32) throw new KeyError(`an Ed25519 seed is 32 bytes, got ${seed.length}`);
  return signingKeyFromPrivate(
    createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: "der", type: "pkcs8" }),
  );
}

/** A sealing key from a fixed 32-byte seed. Only for golden test vectors. */
export function sealingKeyFromSeed(seed: Uint8Array): SealingKey {
  if (seed.length !== 32) throw new KeyError(`an X25519 private key is 32 bytes, got ${seed.length}`);
  return sealingKeyFromPrivate(
    createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, seed]), format: "der", type: "pkcs8" }),
  );
}

/** PKCS#8 PEM of the private key (the public key is derived from it). Write it with mode 0600. */
export function signingKeyToPem(key: SigningKey): string {
  return key.privateKey.export({ format: "pem", type: "pkcs8" }).toString();
}

function privateFromPem(pem: string, what: string): KeyObject {
  if (typeof pem !== "string" || !pem.includes("-----BEGIN PRIVATE KEY-----")) {
    throw new KeyError(`${what} key file must hold a PKCS#8 PEM private key ("-----BEGIN PRIVATE KEY-----")`);
  }
  try {
    return createPrivateKey({ key: pem, format: "pem" });
  } catch (cause) {
    // The cause is OpenSSL's message only; it never contains key material.
    throw new KeyError(`${what} key file is not a readable PKCS#8 PEM private key`, { cause });
  }
}

/** Parse a PKCS#8 PEM Ed25519 private key. Throws `KeyError` for any other key type. */
export function signingKeyFromPem(pem: string): SigningKey {
  return signingKeyFromPrivate(privateFromPem(pem, "Ed25519 signing"));
}

/** PKCS#8 PEM of an X25519 private key. Write it with mode 0600. */
export function sealingKeyToPem(key: SealingKey): string {
  return key.privateKey.export({ format: "pem", type: "pkcs8" }).toString();
}

/** Parse a PKCS#8 PEM X25519 private key. Throws `KeyError` for any other key type. */
export function sealingKeyFromPem(pem: string): SealingKey {
  return sealingKeyFromPrivate(privateFromPem(pem, "X25519 sealing"));
}

/** SPKI PEM of a raw public key, for enrollment bundles and policies. */
export function publicKeyToPem(raw: Uint8Array, type: "ed25519" | "x25519"): string {
  const key = type === "ed25519" ? publicKeyFromRaw(raw) : sealingPublicKeyFromRaw(raw);
  return key.export({ format: "pem", type: "spki" }).toString();
}

function parsePublicKeyText(text: string, type: "ed25519" | "x25519"): Buffer {
  const what = type === "ed25519" ? "Ed25519" : "X25519";
  if (typeof text !== "string") throw new KeyError(`${what} public key must be a string`);
  const trimmed = text.trim();
  if (trimmed.startsWith("-----BEGIN PUBLIC KEY-----")) {
    let key: KeyObject;
    try {
      key = createPublicKey({ key: trimmed, format: "pem" });
    } catch (cause) {
      throw new KeyError(`${what} public key PEM cannot be parsed`, { cause });
    }
    return rawFromPublic(key, type);
  }
  if (!/^[A-Za-z0-9+/]{43}=?$/.test(trimmed) && !/^[A-Za-z0-9_-]{43}$/.test(trimmed)) {
    throw new KeyError(
      `${what} public key must be the raw 32 bytes in base64 (43-44 characters) or a "-----BEGIN PUBLIC KEY-----" PEM`,
    );
  }
  const raw = Buffer.from(trimmed, trimmed.includes("-") || trimmed.includes("_") ? "base64url" : "base64");
  checkRaw(raw, what);
  return raw;
}

/** Raw Ed25519 public key from base64 of the raw 32 bytes or an SPKI PEM. Throws `KeyError`. */
export function parseSigningPublicKey(text: string): Buffer {
  return parsePublicKeyText(text, "ed25519");
}

/** Raw X25519 public key from base64 of the raw 32 bytes or an SPKI PEM. Throws `KeyError`. */
export function parseSealingPublicKey(text: string): Buffer {
  return parsePublicKeyText(text, "x25519");
}
