/**
 * The agent's trusted coordinator keys and their rotation (TUF-style), in two tiers: online intent-signing keys
 * (`keys`), which verify intents and nothing else, and offline root keys (`rootKeys`), pinned at install time,
 * which alone can change the set. The set is installed out of band at enrollment and replaced only by a
 * `SignedKeySet` whose version is exactly current + 1, signed by a root key active in the current set and by every
 * root key the update introduces, and not expired. Keys are never learnt from the network any other way.
 */
import { sign, verify, type KeyObject } from "node:crypto";
import type { Clock } from "./clock.js";
import { RejectError, RejectReason } from "./errors.js";
import { isSha256Hex } from "./hex.js";
import { pae } from "./envelope.js";
import { KeyStatus, SignedKeySet, TrustedKeySet, type TrustedKey } from "./gen/lanekeeper/v1/envelope.js";
import { keyIdOf, publicKeyFromRaw, type SigningKey } from "./keys.js";
import {
  CLOCK_SKEW_MS,
  KEYSET_ENVELOPE_VERSION,
  MAX_KEY_ID_CHARS,
  MAX_KEYSET_BYTES,
  MAX_KEYSET_KEYS,
  RAW_PUBLIC_KEY_BYTES,
  SIGNATURE_BYTES,
} from "./limits.js";
import { decodeStrict } from "./strict-decode.js";
import { assertKeyUsable, markKeyIdChecked, type TrustedKeyLike } from "./trusted-key.js";

/** A key of a {@link TrustedKeyStore}, with its public KeyObject ready for verification. */
export interface TrustedKeyEntry extends TrustedKeyLike {
  readonly publicKey: Buffer;
  readonly keyObject: KeyObject;
}

function malformed(message: string): RejectError {
  return new RejectError(RejectReason.PAYLOAD_MALFORMED, `key set: ${message}`);
}

/**
 * Check a key set's structure: version ≥ 1, 1–{@link MAX_KEYSET_KEYS} intent keys and at most as many root keys,
 * ids unique across both tiers and equal to the hash of their 32-byte public keys, known statuses,
 * `notBeforeMs < notAfterMs`, and `issuedAtMs < expiresAtMs`. A set without root keys is well formed (it can
 * verify intents) but can never be updated. Throws `RejectError(PAYLOAD_MALFORMED)`.
 */
export function validateKeySet(set: TrustedKeySet): void {
  if (!Number.isSafeInteger(set.version) || set.version < 1) throw malformed("version must be at least 1");
  if (set.keys.length === 0) throw malformed("has no keys");
  if (set.keys.length > MAX_KEYSET_KEYS) throw malformed(`has ${set.keys.length} keys, at most ${MAX_KEYSET_KEYS}`);
  if (!(set.issuedAtMs > 0 && set.expiresAtMs > set.issuedAtMs)) {
    throw malformed("issuedAtMs must be positive and expiresAtMs after it");
  }
  if (set.rootKeys.length > MAX_KEYSET_KEYS) throw malformed(`has ${set.rootKeys.length} root keys, at most ${MAX_KEYSET_KEYS}`);
  const seen = new Set<string>();
  for (const k of [...set.keys, ...set.rootKeys]) {
    if (k.publicKey.length !== RAW_PUBLIC_KEY_BYTES) throw malformed(`key ${k.keyId} is not ${RAW_PUBLIC_KEY_BYTES} bytes`);
    if (k.keyId !== keyIdOf(k.publicKey)) throw malformed(`key id ${k.keyId} is not the SHA-256 of its public key`);
    // Also across the tiers: a root key that verified intents would be an online key.
    if (seen.has(k.keyId)) throw malformed(`key ${k.keyId} is listed twice`);
    seen.add(k.keyId);
    if (
      k.status !== KeyStatus.KEY_STATUS_NEXT &&
      k.status !== KeyStatus.KEY_STATUS_ACTIVE &&
      k.status !== KeyStatus.KEY_STATUS_RETIRED &&
      k.status !== KeyStatus.KEY_STATUS_REVOKED
    ) {
      throw malformed(`key ${k.keyId} has an unknown status ${k.status}`);
    }
    if (!(k.notBeforeMs >= 0 && k.notAfterMs > k.notBeforeMs)) {
      throw malformed(`key ${k.keyId} needs notBeforeMs ≥ 0 and notAfterMs after it`);
    }
  }
}

/**
 * The trusted coordinator keys of an agent, built from a validated {@link TrustedKeySet}. Pure: persistence is
 * the caller's.
 */
export class TrustedKeyStore {
  /** The set this store was built from (deep-frozen copy). */
  readonly set: Readonly<TrustedKeySet>;
  private readonly byId: ReadonlyMap<string, TrustedKeyEntry>;

  /** @throws RejectError(PAYLOAD_MALFORMED) when the set is not well formed */
  constructor(set: TrustedKeySet) {
    validateKeySet(set);
    const copy = TrustedKeySet.fromPartial(set);
    const entries = new Map<string, TrustedKeyEntry>();
    for (const k of copy.keys) {
      const publicKey = Buffer.from(k.publicKey);
      const entry: TrustedKeyEntry = Object.freeze({
        keyId: k.keyId,
        publicKey,
        status: k.status,
        notBeforeMs: k.notBeforeMs,
        notAfterMs: k.notAfterMs,
        keyObject: publicKeyFromRaw(publicKey),
      });
      // validateKeySet above checked keyId == sha256(publicKey).
      markKeyIdChecked(entry);
      entries.set(k.keyId, entry);
      Object.freeze(k);
    }
    for (const k of copy.rootKeys) Object.freeze(k);
    Object.freeze(copy.keys);
    Object.freeze(copy.rootKeys);
    this.set = Object.freeze(copy);
    this.byId = entries;
  }

  /** Version of the current set. */
  get version(): number {
    return this.set.version;
  }

  /** Every intent-signing key, whatever its status (root keys are not entries: they never verify intents). */
  entries(): TrustedKeyEntry[] {
    return [...this.byId.values()];
  }

  /**
   * The key for `keyId` if it may verify at `nowMs`. Throws `UNKNOWN_KEY` (not in the set), `KEY_REVOKED`, or
   * `KEY_NOT_VALID_NOW` (outside its window).
   */
  lookup(keyId: string, nowMs: number): TrustedKeyEntry {
    const entry = this.byId.get(keyId);
    if (!entry) {
      throw new RejectError(RejectReason.UNKNOWN_KEY, `key ${keyId.slice(0, MAX_KEY_ID_CHARS)} is not in trusted key set version ${this.version}`, {
        details: { keyId, keysetVersion: this.version },
      });
    }
    assertKeyUsable(entry, nowMs);
    return entry;
  }

  /** A resolver for `openEnvelope` that looks keys up at `nowMs`. */
  resolver(nowMs: number): (keyId: string) => TrustedKeyEntry {
    return (keyId) => this.lookup(keyId, nowMs);
  }

  /** The store after a verified update (see {@link applyKeySetUpdate}). */
  update(signed: SignedKeySet, clock: Clock): TrustedKeyStore {
    return new TrustedKeyStore(applyKeySetUpdate(this.set, signed, clock));
  }
}

/** One key of {@link buildKeySet}. */
export interface KeySetMember {
  key: Pick<SigningKey, "keyId" | "publicKey">;
  /** @default KeyStatus.KEY_STATUS_ACTIVE */
  status?: KeyStatus;
  /** @default 0 (no lower bound) */
  notBeforeMs?: number;
  /** @default issuedAtMs + 90 days */
  notAfterMs?: number;
}

const DAY_MS = 86_400_000;

/** Default validity of a root key: long, because replacing an expired root means re-pinning every host. */
export const ROOT_KEY_LIFETIME_MS = 10 * 365 * DAY_MS;

function rootKeyEntry(m: KeySetMember, issuedAtMs: number): TrustedKey {
  return {
    keyId: m.key.keyId,
    publicKey: Buffer.from(m.key.publicKey),
    notBeforeMs: m.notBeforeMs ?? 0,
    notAfterMs: m.notAfterMs ?? issuedAtMs + ROOT_KEY_LIFETIME_MS,
    status: m.status ?? KeyStatus.KEY_STATUS_ACTIVE,
  };
}

/** A root key entry for a key set (`keys root-init`, root rotation): ACTIVE, valid from 0 for `lifetimeMs`. */
export function rootKeyOf(key: Pick<SigningKey, "keyId" | "publicKey">, issuedAtMs: number, lifetimeMs = ROOT_KEY_LIFETIME_MS): TrustedKey {
  return rootKeyEntry({ key, notAfterMs: issuedAtMs + lifetimeMs }, issuedAtMs);
}

/** Assemble and validate a key set (coordinator `keys` commands, enrollment, tests). */
export function buildKeySet(args: {
  version: number;
  members: readonly KeySetMember[];
  issuedAtMs: number;
  /** @default issuedAtMs + 365 days */
  expiresAtMs?: number;
  /** @default 0 (no floor) */
  hwmFloor?: number;
  /** The offline root keys (`notAfterMs` defaults to issuedAtMs + {@link ROOT_KEY_LIFETIME_MS}). @default none */
  roots?: readonly KeySetMember[];
}): TrustedKeySet {
  const set: TrustedKeySet = {
    version: args.version,
    keys: args.members.map((m) => ({
      keyId: m.key.keyId,
      publicKey: Buffer.from(m.key.publicKey),
      notBeforeMs: m.notBeforeMs ?? 0,
      notAfterMs: m.notAfterMs ?? args.issuedAtMs + 90 * DAY_MS,
      status: m.status ?? KeyStatus.KEY_STATUS_ACTIVE,
    })),
    rootKeys: (args.roots ?? []).map((m) => rootKeyEntry(m, args.issuedAtMs)),
    hwmFloor: args.hwmFloor ?? 0,
    issuedAtMs: args.issuedAtMs,
    expiresAtMs: args.expiresAtMs ?? args.issuedAtMs + 365 * DAY_MS,
  };
  validateKeySet(set);
  return set;
}

/** Sign a key set with every key in `keys` (a root key active in the current set, plus every root key the set adds). */
export function signKeySet(set: TrustedKeySet, keys: readonly SigningKey[]): SignedKeySet {
  validateKeySet(set);
  const payload = Buffer.from(TrustedKeySet.encode(set).finish());
  const message = pae("keyset", payload);
  return {
    version: KEYSET_ENVELOPE_VERSION,
    payload,
    signatures: keys.map((k) => ({ keyId: k.keyId, signature: sign(null, message, k.privateKey) })),
  };
}

/** Encode a signed key set for the wire or a file. */
export function encodeSignedKeySet(signed: SignedKeySet): Uint8Array {
  return SignedKeySet.encode(signed).finish();
}

/** Decode a signed key set, size-capped and strict. Throws `ENVELOPE_TOO_LARGE` / `ENVELOPE_MALFORMED`. */
export function decodeSignedKeySet(bytes: Uint8Array): SignedKeySet {
  if (bytes.length > MAX_KEYSET_BYTES) {
    throw new RejectError(RejectReason.ENVELOPE_TOO_LARGE, `signed key set of ${bytes.length} bytes exceeds ${MAX_KEYSET_BYTES}`);
  }
  return decodeStrict(SignedKeySet, bytes, "signed key set", RejectReason.ENVELOPE_MALFORMED);
}

function verifyWith(key: KeyObject, message: Buffer, signature: Uint8Array): boolean {
  try {
    return verify(null, message, key, signature);
  } catch {
    return false;
  }
}

/**
 * Verify and apply a key-set update. Checks, in order: container version; size and signature shapes; a valid
 * signature by a ROOT key that is `ACTIVE` in `current` and within its window, before the payload is parsed
 * (`KEYSET_NOT_ROOT_SIGNED` when the only signers are intent-signing keys: the online key never changes trust;
 * `KEYSET_UNKNOWN_ROOT` when no signer is known or no root is pinned; `BAD_SIGNATURE`, `KEY_REVOKED` or
 * `KEY_NOT_VALID_NOW` for a root signature that does not count); strict decode and structure;
 * `version == current.version + 1` (`KEYSET_VERSION` otherwise, so no rollback, replay or skip); not expired
 * (`EXPIRED`) nor issued in the future (`NOT_YET_VALID`); at least one ACTIVE root left, and a valid signature by
 * every root key the update introduces (`KEYSET_ROOT_CHANGE`: root rotation needs the old and the new root).
 * Intent keys may be added, rotated or removed freely by the root. Returns the new set; persisting it atomically
 * is the caller's job.
 */
export function applyKeySetUpdate(current: TrustedKeySet, signed: SignedKeySet, clock: Clock): TrustedKeySet {
  const now = clock.now();
  if (signed.version !== KEYSET_ENVELOPE_VERSION) {
    throw new RejectError(RejectReason.ENVELOPE_VERSION, `signed key set version ${signed.version} is not supported; only ${KEYSET_ENVELOPE_VERSION}`);
  }
  if (signed.payload.length > MAX_KEYSET_BYTES) {
    throw new RejectError(RejectReason.ENVELOPE_TOO_LARGE, `key set payload exceeds ${MAX_KEYSET_BYTES} bytes`);
  }
  if (signed.signatures.length === 0 || signed.signatures.length > 2 * MAX_KEYSET_KEYS) {
    throw new RejectError(RejectReason.ENVELOPE_MALFORMED, `key set update needs 1-${2 * MAX_KEYSET_KEYS} signatures`);
  }
  const signers = new Set<string>();
  for (const s of signed.signatures) {
    if (s.signature.length !== SIGNATURE_BYTES) {
      throw new RejectError(RejectReason.SIGNATURE_LENGTH, `key set signature by ${s.keyId} is ${s.signature.length} bytes, not ${SIGNATURE_BYTES}`);
    }
    if (!isSha256Hex(s.keyId)) throw new RejectError(RejectReason.KEY_ID_INVALID, "key set signature has an invalid key id");
    if (signers.has(s.keyId)) throw new RejectError(RejectReason.ENVELOPE_MALFORMED, `key ${s.keyId} signed twice`);
    signers.add(s.keyId);
  }
  const message = pae("keyset", signed.payload);

  // 1. Vouched for by a root of the current set, before anything in the payload is believed.
  validateKeySet(current);
  let vouched = false;
  let firstProblem: RejectError | undefined;
  for (const s of signed.signatures) {
    const root = current.rootKeys.find((r) => r.keyId === s.keyId);
    if (!root) continue;
    try {
      if (root.status !== KeyStatus.KEY_STATUS_ACTIVE) {
        throw new RejectError(RejectReason.KEY_REVOKED, `root key ${s.keyId} is not active in key set version ${current.version}`);
      }
      assertKeyUsable(root, now);
      if (verifyWith(publicKeyFromRaw(root.publicKey), message, s.signature)) {
        vouched = true;
        break;
      }
      firstProblem ??= new RejectError(RejectReason.BAD_SIGNATURE, `signature by root key ${s.keyId} does not verify`);
    } catch (err) {
      if (!(err instanceof RejectError)) throw err;
      firstProblem ??= err;
    }
  }
  if (!vouched) {
    if (firstProblem !== undefined) throw firstProblem;
    const intentSigner = signed.signatures.find((s) => current.keys.some((k) => k.keyId === s.keyId));
    if (intentSigner !== undefined) {
      throw new RejectError(
        RejectReason.KEYSET_NOT_ROOT_SIGNED,
        `key set update is signed by intent key ${intentSigner.keyId}, not by a root key: only the offline root key can change trust`,
        { details: { keyId: intentSigner.keyId, keysetVersion: current.version } },
      );
    }
    throw new RejectError(
      RejectReason.KEYSET_UNKNOWN_ROOT,
      current.rootKeys.length === 0
        ? `key set version ${current.version} pins no root key: no update can be applied; re-pin the root key on this host`
        : `key set update is not signed by any root key of key set version ${current.version}`,
      { details: { keysetVersion: current.version } },
    );
  }

  // 2. Only now parse what was signed.
  const next = decodeStrict(TrustedKeySet, signed.payload, "key set", RejectReason.PAYLOAD_MALFORMED);
  validateKeySet(next);
  if (next.version !== current.version + 1) {
    throw new RejectError(
      RejectReason.KEYSET_VERSION,
      `key set version ${next.version} cannot follow version ${current.version}: updates must be exactly version ${current.version + 1}`,
      { details: { current: current.version, offered: next.version } },
    );
  }
  if (next.expiresAtMs <= now) {
    throw new RejectError(RejectReason.EXPIRED, `key set version ${next.version} expired at ${new Date(next.expiresAtMs).toISOString()}`);
  }
  if (next.issuedAtMs > now + CLOCK_SKEW_MS) {
    throw new RejectError(RejectReason.NOT_YET_VALID, `key set version ${next.version} is issued in the future`);
  }

  // 3. Root changes: some root must remain, and a new root proves possession by signing too (the old root names
  // it, the new root accepts it), so a root is never added behind its holder's back or by a typo.
  if (!next.rootKeys.some((r) => r.status === KeyStatus.KEY_STATUS_ACTIVE)) {
    throw new RejectError(RejectReason.KEYSET_ROOT_CHANGE, `key set version ${next.version} leaves no active root key: nothing could ever update it`);
  }
  const knownRoots = new Set(current.rootKeys.map((k) => k.keyId));
  for (const r of next.rootKeys) {
    if (knownRoots.has(r.keyId) || r.status === KeyStatus.KEY_STATUS_REVOKED) continue;
    const s = signed.signatures.find((x) => x.keyId === r.keyId);
    if (!s || !verifyWith(publicKeyFromRaw(r.publicKey), message, s.signature)) {
      throw new RejectError(RejectReason.KEYSET_ROOT_CHANGE, `key set version ${next.version} adds root key ${r.keyId} but is not signed by it`);
    }
  }
  return next;
}
