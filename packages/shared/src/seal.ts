/**
 * Sealing a secret (registration token, JIT config, remove token) to one agent's X25519 key: ephemeral X25519
 * ECDH, HKDF-SHA256, AES-256-GCM. The HKDF salt binds both public keys; the AAD binds a context string naming
 * what the secret is for and where it goes, so a sealed blob cannot be moved to another lane or purpose.
 */
import {
  createCipheriv,
  createDecipheriv,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from "node:crypto";
import { RejectError, RejectReason } from "./errors.js";
import type { SealedSecret } from "./gen/lanekeeper/v1/intent.js";
import { keyIdOf, rawPublicKeyOf, sealingPublicKeyFromRaw, type SealingKey } from "./keys.js";
import { MAX_SEALED_CIPHERTEXT_BYTES, RAW_PUBLIC_KEY_BYTES } from "./limits.js";
import { validateHostId, validateIntentId, validateLaneId } from "./names.js";

const SEAL_INFO = Buffer.from("lanekeeper.seal.v1", "utf8");
const AAD_PREFIX = Buffer.from("lanekeeper.seal.v1\0", "utf8");
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** What a sealed secret is for; part of the context string. */
export type SealPurpose = "registration" | "jit-config" | "remove-token";
const SEAL_PURPOSES: ReadonlySet<string> = new Set<SealPurpose>(["registration", "jit-config", "remove-token"]);

/**
 * The AEAD context of a secret sealed into an intent, built the same way by the coordinator (sealing) and the
 * agent (opening): `<purpose>:<hostId>/<laneId>/<intentId>`, e.g. `registration:build01/lane-7/0f3c…e1`.
 * Binding the intent id means a sealed blob cannot be lifted into another intent, even one for the same lane, so
 * every re-issue seals afresh. Each part is validated here (`INVALID_NAME` otherwise) rather than trusted to the
 * callers: only with `[a-z0-9-]` ids and a hex intent id is the string unambiguous.
 */
export function sealContext(args: { purpose: SealPurpose; hostId: string; laneId: string; intentId: string }): string {
  if (!SEAL_PURPOSES.has(args.purpose)) {
    throw new RejectError(RejectReason.SEAL_FAILED, `unknown seal purpose ${JSON.stringify(args.purpose)}`);
  }
  return `${args.purpose}:${validateHostId(args.hostId)}/${validateLaneId(args.laneId)}/${validateIntentId(args.intentId)}`;
}

function deriveKey(shared: Buffer, ephemeralPublic: Buffer, recipientPublic: Buffer): Buffer {
  // All-zero output means a low-order point was supplied; RFC 7748 section 6.1 says to abort.
  if (shared.every((b) => b === 0)) throw new RejectError(RejectReason.SEAL_FAILED, "X25519 shared secret is zero");
  const salt = Buffer.concat([ephemeralPublic, recipientPublic]);
  return Buffer.from(hkdfSync("sha256", shared, salt, SEAL_INFO, 32));
}

function aadFor(context: string): Buffer {
  return Buffer.concat([AAD_PREFIX, Buffer.from(context, "utf8")]);
}

/**
 * Seal with a caller-chosen ephemeral key and nonce. Internal: only for deterministic golden vectors. Reusing an
 * ephemeral key or nonce across secrets breaks confidentiality; production code calls {@link sealSecret}.
 * @internal
 */
export function sealSecretWithEphemeral(
  recipientPublicKey: Uint8Array,
  plaintext: Uint8Array,
  context: string,
  ephemeralPrivateKey: KeyObject,
  nonce: Uint8Array,
): SealedSecret {
  if (recipientPublicKey.length !== RAW_PUBLIC_KEY_BYTES) {
    throw new RejectError(RejectReason.SEAL_FAILED, `recipient key must be ${RAW_PUBLIC_KEY_BYTES} bytes`);
  }
  if (nonce.length !== NONCE_BYTES) throw new RejectError(RejectReason.SEAL_FAILED, `nonce must be ${NONCE_BYTES} bytes`);
  if (plaintext.length + TAG_BYTES > MAX_SEALED_CIPHERTEXT_BYTES) {
    throw new RejectError(RejectReason.SEAL_FAILED, `secret too large: at most ${MAX_SEALED_CIPHERTEXT_BYTES - TAG_BYTES} bytes`);
  }
  const recipient = Buffer.from(recipientPublicKey);
  const ephemeralPublic = rawPublicKeyOf(ephemeralPrivateKey);
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: ephemeralPrivateKey, publicKey: sealingPublicKeyFromRaw(recipient) });
  } catch (cause) {
    throw new RejectError(RejectReason.SEAL_FAILED, "X25519 key agreement failed", { cause });
  }
  const key = deriveKey(shared, ephemeralPublic, recipient);
  const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aadFor(context));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return {
    recipientKeyId: keyIdOf(recipient),
    ephemeralPublicKey: ephemeralPublic,
    nonce: Buffer.from(nonce),
    ciphertext,
  };
}

/** Seal `plaintext` to the holder of the X25519 key whose raw public key is `recipientPublicKey`. */
export function sealSecret(recipientPublicKey: Uint8Array, plaintext: Uint8Array, context: string): SealedSecret {
  const ephemeral = generateKeyPairSync("x25519").privateKey;
  return sealSecretWithEphemeral(recipientPublicKey, plaintext, context, ephemeral, randomBytes(NONCE_BYTES));
}

/**
 * Open a sealed secret with the agent's sealing key. Any mismatch (another recipient, another context, a flipped
 * bit anywhere, wrong sizes) throws `RejectError(SEAL_FAILED)` without saying which, so the error is no oracle.
 */
export function openSecret(key: SealingKey, sealed: SealedSecret, context: string): Buffer {
  const fail = (why: string, cause?: unknown): RejectError =>
    new RejectError(RejectReason.SEAL_FAILED, `cannot open sealed secret: ${why}`, cause === undefined ? {} : { cause });
  if (sealed.recipientKeyId !== key.keyId) throw fail("it is sealed to another key");
  if (sealed.ephemeralPublicKey.length !== RAW_PUBLIC_KEY_BYTES) throw fail("bad ephemeral key length");
  if (sealed.nonce.length !== NONCE_BYTES) throw fail("bad nonce length");
  if (sealed.ciphertext.length < TAG_BYTES || sealed.ciphertext.length > MAX_SEALED_CIPHERTEXT_BYTES) {
    throw fail("bad ciphertext length");
  }
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: key.privateKey, publicKey: sealingPublicKeyFromRaw(sealed.ephemeralPublicKey) });
  } catch (cause) {
    throw fail("key agreement failed", cause);
  }
  if (shared.every((b) => b === 0)) throw fail("key agreement failed");
  const aesKey = deriveKey(shared, Buffer.from(sealed.ephemeralPublicKey), key.publicKey);
  const body = sealed.ciphertext.subarray(0, sealed.ciphertext.length - TAG_BYTES);
  const tag = sealed.ciphertext.subarray(sealed.ciphertext.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv("aes-256-gcm", aesKey, sealed.nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aadFor(context));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch (cause) {
    throw fail("authentication failed (tampered, or sealed for another context)", cause);
  }
}
