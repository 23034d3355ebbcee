/**
 * Signed envelopes, DSSE-style: the signature covers PAE("lanekeeper.<kind>.v1", payload) over the exact payload
 * bytes, so a result, an inventory or a key set can never pass as an intent, and nothing is parsed before the
 * signature holds. Each kind has its own size cap (`MAX_ENVELOPE_BYTES_BY_KIND`: intents and results 64 KiB,
 * inventories 120 KiB), applied to the raw bytes before anything is decoded. Checks run cheapest first: size → decode → version → signature length → key id → key →
 * signature.
 */
import { createHash, createPublicKey, KeyObject, sign, verify } from "node:crypto";
import { systemClock, type Clock } from "./clock.js";
import { RejectError, RejectReason } from "./errors.js";
import { SignedEnvelope } from "./gen/lanekeeper/v1/envelope.js";
import { keyIdOf, publicKeyFromRaw, type SigningKey } from "./keys.js";
import { ENVELOPE_VERSION, MAX_ENVELOPE_BYTES_BY_KIND, MAX_KEY_ID_CHARS, SIGNATURE_BYTES } from "./limits.js";
import { isCanonical } from "./strict-decode.js";
import { assertKeyUsable, isKeyIdChecked, type TrustedKeyLike } from "./trusted-key.js";

/** What a `SignedEnvelope` carries. */
export type EnvelopeKind = "intent" | "result" | "inventory";
/** The size cap of each kind; typed here so a new kind cannot go without one. */
const MAX_BYTES: Readonly<Record<EnvelopeKind, number>> = MAX_ENVELOPE_BYTES_BY_KIND;

/** The largest encoded envelope of `kind` that is signed or opened. */
export function maxEnvelopeBytes(kind: EnvelopeKind): number {
  const max = MAX_BYTES[kind];
  if (max === undefined) throw new TypeError(`unknown envelope kind ${String(kind)}`);
  return max;
}

/** Everything lanekeeper signs: envelope kinds plus key sets. */
export type SignedPayloadKind = EnvelopeKind | "keyset";

/** The DSSE payload type of each kind. */
export const PAYLOAD_TYPES: Readonly<Record<SignedPayloadKind, string>> = Object.freeze({
  intent: "lanekeeper.intent.v1",
  result: "lanekeeper.result.v1",
  inventory: "lanekeeper.inventory.v1",
  keyset: "lanekeeper.keyset.v1",
});

const PAE_PREFIXES: Readonly<Record<SignedPayloadKind, Buffer>> = Object.freeze({
  intent: paePrefix(PAYLOAD_TYPES.intent),
  result: paePrefix(PAYLOAD_TYPES.result),
  inventory: paePrefix(PAYLOAD_TYPES.inventory),
  keyset: paePrefix(PAYLOAD_TYPES.keyset),
});

function paePrefix(type: string): Buffer {
  return Buffer.from(`DSSEv1 ${Buffer.byteLength(type, "utf8")} ${type} `, "utf8");
}

/**
 * DSSE pre-authentication encoding: `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`, lengths in ASCII
 * decimal bytes.
 */
export function pae(kind: SignedPayloadKind, payload: Uint8Array): Buffer {
  const prefix = PAE_PREFIXES[kind];
  if (prefix === undefined) throw new TypeError(`unknown payload kind ${String(kind)}`);
  return Buffer.concat([prefix, Buffer.from(`${payload.length} `, "ascii"), payload]);
}

/** Sign `payload` as `kind` and return the encoded `SignedEnvelope`. */
export function signEnvelope(kind: EnvelopeKind, payload: Uint8Array, key: SigningKey): Uint8Array {
  const signature = sign(null, pae(kind, payload), key.privateKey);
  const bytes = SignedEnvelope.encode({
    version: ENVELOPE_VERSION,
    keyId: key.keyId,
    payload: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
    signature,
  }).finish();
  const max = maxEnvelopeBytes(kind);
  if (bytes.length > max) {
    throw new RejectError(RejectReason.ENVELOPE_TOO_LARGE, `${kind} envelope of ${bytes.length} bytes exceeds ${max}`);
  }
  return bytes;
}

/**
 * What a resolver returns for a key id: a bare public `KeyObject` (caller vouches for it), or a trusted key with
 * status and validity window (checked here), or `undefined` for an unknown key. A resolver may also throw a
 * `RejectError` itself (as `TrustedKeyStore.lookup` does).
 */
export type VerifyingKey = KeyObject | TrustedKeyLike;
/** Maps a key id hint to the key that must have signed. Keys are never fetched from the network. */
export type KeyResolver = (keyId: string) => VerifyingKey | undefined;

/** A verified envelope. */
export interface OpenedEnvelope {
  /** The exact signed payload bytes; decode these and nothing else. */
  payload: Buffer;
  /** Id of the key that verified the signature. */
  keyId: string;
  /** SHA-256 of `payload`: the digest logged and echoed in results. */
  digest: Buffer;
}

/**
 * Decode and check the outer envelope of `kind` (steps 1–2): size (the kind's cap, before decoding), structure,
 * version, signature length, key id. The signature is not checked here.
 */
export function decodeEnvelope(kind: EnvelopeKind, bytes: Uint8Array): SignedEnvelope {
  if (!(bytes instanceof Uint8Array)) throw new RejectError(RejectReason.ENVELOPE_MALFORMED, "envelope must be bytes");
  const max = maxEnvelopeBytes(kind);
  if (bytes.length > max) {
    throw new RejectError(RejectReason.ENVELOPE_TOO_LARGE, `${kind} envelope of ${bytes.length} bytes exceeds the ${max}-byte limit`);
  }
  let env: SignedEnvelope;
  try {
    env = SignedEnvelope.decode(bytes);
  } catch (cause) {
    throw new RejectError(RejectReason.ENVELOPE_MALFORMED, `envelope cannot be decoded: ${(cause as Error).message}`, { cause });
  }
  // Another version (or none) is a downgrade attempt only on something shaped like an envelope: a payload and a
  // signature, plus a key id when even the version is missing. Empty input, or random bytes that happen to
  // decode to a lone field or two, are not an envelope of any version.
  if (
    env.version !== ENVELOPE_VERSION &&
    (env.payload.length === 0 || env.signature.length === 0 || (env.version === 0 && env.keyId.length === 0))
  ) {
    throw new RejectError(
      RejectReason.ENVELOPE_MALFORMED,
      bytes.length === 0 ? "envelope is empty" : "not a signed envelope: it lacks a payload, a signature or a key id",
    );
  }
  if (env.version !== ENVELOPE_VERSION) {
    throw new RejectError(
      RejectReason.ENVELOPE_VERSION,
      `envelope version ${env.version} is not supported; only version ${ENVELOPE_VERSION} is accepted`,
    );
  }
  if (env.signature.length !== SIGNATURE_BYTES) {
    throw new RejectError(
      RejectReason.SIGNATURE_LENGTH,
      `signature is ${env.signature.length} bytes; Ed25519 signatures are exactly ${SIGNATURE_BYTES}`,
    );
  }
  if (env.keyId.length === 0 || env.keyId.length > MAX_KEY_ID_CHARS || !/^[0-9a-f]+$/.test(env.keyId)) {
    throw new RejectError(
      RejectReason.KEY_ID_INVALID,
      `key id must be 1-${MAX_KEY_ID_CHARS} lower-case hex characters`,
    );
  }
  // Unknown or duplicated outer fields are not signed, so they cannot hurt, but a sender that writes them is not
  // ours: refuse rather than guess (same canonical-encoding rule as decodeStrict, without decoding twice).
  if (!isCanonical(SignedEnvelope.encode(env).finish(), bytes)) {
    throw new RejectError(
      RejectReason.ENVELOPE_MALFORMED,
      "envelope is not canonically encoded (unknown, duplicated or mistyped field, or non-minimal varint)",
    );
  }
  return env;
}

/**
 * Resolve the public key for `keyId` and return it with the id that will be reported. Shared by envelopes and
 * key sets.
 */
export function resolveVerifyingKey(keyId: string, resolveKey: KeyResolver, nowMs: number): { key: KeyObject; keyId: string } {
  const found = resolveKey(keyId);
  if (found === undefined) {
    throw new RejectError(RejectReason.UNKNOWN_KEY, `key ${keyId} is not in the trusted key set`, { details: { keyId } });
  }
  if (found instanceof KeyObject) {
    if (found.asymmetricKeyType !== "ed25519") {
      throw new RejectError(RejectReason.UNKNOWN_KEY, `key ${keyId} is not an Ed25519 key`);
    }
    return { key: found.type === "private" ? createPublicKey(found) : found, keyId };
  }
  // A resolver must answer for the id it was asked about, and the id must be the hash of the key.
  if (found.keyId !== keyId || (!isKeyIdChecked(found) && keyIdOf(found.publicKey) !== keyId)) {
    throw new RejectError(RejectReason.UNKNOWN_KEY, `key ${keyId} is not in the trusted key set`, { details: { keyId } });
  }
  assertKeyUsable(found, nowMs);
  let key: KeyObject;
  try {
    key = found.keyObject ?? publicKeyFromRaw(found.publicKey);
  } catch (cause) {
    throw new RejectError(RejectReason.UNKNOWN_KEY, `trusted key ${keyId} is unusable`, { cause });
  }
  return { key, keyId };
}

/**
 * Verify an envelope of `kind` and return its exact payload bytes. Order: size (the kind's cap) → decode → version → signature
 * length → key id → key lookup (unknown, revoked, outside its window) → signature over the PAE. The payload is
 * not decoded here; decode exactly `payload`, once.
 * @param clock - the instant key windows are checked against (`TrustedKeyLike` results only)
 */
export function openEnvelope(
  kind: EnvelopeKind,
  bytes: Uint8Array,
  resolveKey: KeyResolver,
  clock: Clock = systemClock,
): OpenedEnvelope {
  const env = decodeEnvelope(kind, bytes);
  const { key, keyId } = resolveVerifyingKey(env.keyId, resolveKey, clock.now());
  let ok = false;
  try {
    ok = verify(null, pae(kind, env.payload), key, env.signature);
  } catch (cause) {
    throw new RejectError(RejectReason.BAD_SIGNATURE, "signature verification failed", { cause });
  }
  if (!ok) {
    throw new RejectError(RejectReason.BAD_SIGNATURE, `signature does not verify as ${PAYLOAD_TYPES[kind]} with key ${keyId}`);
  }
  return { payload: env.payload, keyId, digest: createHash("sha256").update(env.payload).digest() };
}
