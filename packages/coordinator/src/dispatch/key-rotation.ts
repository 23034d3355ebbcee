import { createHash, verify } from "node:crypto";
import type { NatsConnection } from "nats";
import { headers } from "nats";
import {
  CLOCK_SKEW_MS,
  encodeSignedKeySet,
  intentSubject,
  isRejectError,
  isRejectReason,
  KEYSET_KIND,
  KeyStatus,
  KIND_HEADER,
  keyIdOf,
  LanekeeperError,
  MAX_INTENT_TTL_MS,
  pae,
  publicKeyFromRaw,
  rootKeyOf,
  RejectReason,
  ResultStatus,
  signKeySet,
  systemClock,
  TrustedKeySet,
  verifyResult,
  type Clock,
  type ResultPayload,
  type SignedKeySet,
  type SigningKey,
  type TrustedKey,
} from "@lanekeeper/shared";
import type { HostRegistry } from "./host-registry.js";
import { DEFAULT_REQUEST_TIMEOUT_MS } from "./limits.js";
import { ResultRejectReason } from "./result-verifier.js";
import type { CoordinatorErrorCode } from "../error-codes.js";

/** How long a key-set version stays acceptable to agents after it is issued (they refuse expired updates). */
export const DEFAULT_KEYSET_VALIDITY_MS = 7 * 24 * 3_600_000;
/** Default lifetime of an online intent-signing key. */
export const DEFAULT_SIGNING_KEY_LIFETIME_MS = 90 * 24 * 3_600_000;

/** A key-set operation was asked in a state where it makes no sense (unknown key, no active key, ...). */
export class KeyRotationError extends LanekeeperError<CoordinatorErrorCode> {
  constructor(message: string) {
    super("KEY_ROTATION_INVALID", message);
  }
}

interface Times {
  /** Current time. */
  nowMs: number;
  /** @default DEFAULT_KEYSET_VALIDITY_MS */
  validityMs?: number;
}

function next(set: TrustedKeySet, keys: TrustedKey[], t: Times, hwmFloor = set.hwmFloor, rootKeys = set.rootKeys): TrustedKeySet {
  return TrustedKeySet.fromPartial({
    version: set.version + 1,
    keys,
    rootKeys,
    hwmFloor,
    issuedAtMs: t.nowMs,
    expiresAtMs: t.nowMs + (t.validityMs ?? DEFAULT_KEYSET_VALIDITY_MS),
  });
}

function trustedKey(key: Pick<SigningKey, "keyId" | "publicKey">, status: KeyStatus, nowMs: number, lifetimeMs: number): TrustedKey {
  return { keyId: key.keyId, publicKey: Buffer.from(key.publicKey), notBeforeMs: nowMs, notAfterMs: nowMs + lifetimeMs, status };
}

/**
 * Version 1: the coordinator's first intent-signing key, ACTIVE, and the offline root key that alone may sign
 * later versions. Install it on agents out of band (the trust file): that pins the root.
 */
export function initialKeySet(
  key: Pick<SigningKey, "keyId" | "publicKey">,
  root: Pick<SigningKey, "keyId" | "publicKey">,
  t: Times & { keyLifetimeMs?: number },
): TrustedKeySet {
  if (root.keyId === key.keyId) throw new KeyRotationError("the root key must not be the intent-signing key");
  return TrustedKeySet.fromPartial({
    version: 1,
    keys: [trustedKey(key, KeyStatus.KEY_STATUS_ACTIVE, t.nowMs, t.keyLifetimeMs ?? DEFAULT_SIGNING_KEY_LIFETIME_MS)],
    rootKeys: [rootKeyOf(root, t.nowMs)],
    hwmFloor: 0,
    issuedAtMs: t.nowMs,
    expiresAtMs: t.nowMs + (t.validityMs ?? DEFAULT_KEYSET_VALIDITY_MS),
  });
}

/** Phase 1, prepare: announce a new key as NEXT (agents learn it; nobody signs with it yet). Sign with the root key. */
export function announceKey(
  set: TrustedKeySet,
  key: Pick<SigningKey, "keyId" | "publicKey">,
  t: Times & { keyLifetimeMs?: number },
): TrustedKeySet {
  if (set.keys.some((k) => k.keyId === key.keyId)) throw new KeyRotationError(`key ${key.keyId} is already in the set`);
  return next(set, [...set.keys, trustedKey(key, KeyStatus.KEY_STATUS_NEXT, t.nowMs, t.keyLifetimeMs ?? DEFAULT_SIGNING_KEY_LIFETIME_MS)], t);
}

/**
 * Phase 2, activate: the NEXT key becomes ACTIVE and the previously active keys RETIRED, valid for verification
 * only until every intent they signed has expired (`now + MAX_INTENT_TTL_MS + skew`). Sign with a key active in
 * the root key. Start signing intents with the new key once agents report this version.
 */
export function activateKey(set: TrustedKeySet, keyId: string, t: Times): TrustedKeySet {
  const k = set.keys.find((x) => x.keyId === keyId);
  if (k?.status !== KeyStatus.KEY_STATUS_NEXT) throw new KeyRotationError(`key ${keyId} is not announced as NEXT`);
  const retireAt = t.nowMs + MAX_INTENT_TTL_MS + CLOCK_SKEW_MS;
  return next(
    set,
    set.keys.map((x) =>
      x.keyId === keyId
        ? { ...x, status: KeyStatus.KEY_STATUS_ACTIVE }
        : x.status === KeyStatus.KEY_STATUS_ACTIVE
          ? { ...x, status: KeyStatus.KEY_STATUS_RETIRED, notAfterMs: Math.min(x.notAfterMs, retireAt) }
          : x,
    ),
    t,
  );
}

/** Phase 3, retire: drop RETIRED keys whose window has passed. Sign with the root key. */
export function dropRetiredKeys(set: TrustedKeySet, t: Times): TrustedKeySet {
  return next(set, set.keys.filter((k) => !(k.status === KeyStatus.KEY_STATUS_RETIRED && k.notAfterMs < t.nowMs)), t);
}

/**
 * Revoke a key at once (compromise): it is kept in the set as REVOKED so it can never come back through a
 * stale copy. `hwmFloor` optionally raises every agent's intent high-water mark past anything the compromised
 * key may have signed. Sign with the root key (the compromised online key cannot do this, nor undo it).
 */
export function revokeKey(set: TrustedKeySet, keyId: string, t: Times & { hwmFloor?: number }): TrustedKeySet {
  if (!set.keys.some((k) => k.keyId === keyId)) throw new KeyRotationError(`key ${keyId} is not in the set`);
  const keys = set.keys.map((k) => (k.keyId === keyId ? { ...k, status: KeyStatus.KEY_STATUS_REVOKED } : k));
  if (!keys.some((k) => k.status === KeyStatus.KEY_STATUS_ACTIVE)) throw new KeyRotationError("revoking it would leave no ACTIVE key");
  return next(set, keys, t, Math.max(set.hwmFloor, t.hwmFloor ?? 0));
}

/**
 * Root rotation: the set names `newRoot` as its only root (the old roots leave it). Sign with the old root (which
 * agents trust) AND the new root (which proves it is held); from the next version on only the new root counts.
 */
export function rotateRoot(set: TrustedKeySet, newRoot: Pick<SigningKey, "keyId" | "publicKey">, t: Times & { rootLifetimeMs?: number }): TrustedKeySet {
  if (set.rootKeys.some((r) => r.keyId === newRoot.keyId)) throw new KeyRotationError(`key ${newRoot.keyId} is already a root key of the set`);
  if (set.keys.some((k) => k.keyId === newRoot.keyId)) throw new KeyRotationError(`key ${newRoot.keyId} is an intent-signing key; a root key must be a key of its own`);
  return next(set, [...set.keys], t, set.hwmFloor, [rootKeyOf(newRoot, t.nowMs, t.rootLifetimeMs)]);
}

/** Throw unless `root` is an ACTIVE root key of `set` (so an update it signs will be accepted by agents on `set`). */
export function assertRootOf(set: TrustedKeySet, root: Pick<SigningKey, "keyId">): void {
  if (!set.rootKeys.some((r) => r.keyId === root.keyId && r.status === KeyStatus.KEY_STATUS_ACTIVE)) {
    throw new KeyRotationError(
      `key ${root.keyId} is not an active root key of key set version ${set.version}` +
        (set.rootKeys.length === 0 ? " (the set pins no root key)" : ` (roots: ${set.rootKeys.map((r) => r.keyId.slice(0, 16)).join(", ")})`),
    );
  }
}

/** The root keys of `set` whose signature on `signed` verifies (a quick local check before pushing an update). */
export function rootSignersOf(signed: SignedKeySet, set: TrustedKeySet): string[] {
  const message = pae("keyset", Buffer.from(signed.payload));
  return signed.signatures
    .filter((s) => {
      const root = set.rootKeys.find((r) => r.keyId === s.keyId && r.status === KeyStatus.KEY_STATUS_ACTIVE);
      if (root === undefined) return false;
      try {
        return verify(null, message, publicKeyFromRaw(root.publicKey), s.signature);
      } catch {
        return false;
      }
    })
    .map((s) => s.keyId);
}

/**
 * Sign a key-set update (shared `signKeySet`) with the root key, plus the new root for a root rotation. Intent
 * keys never sign key sets: agents would refuse the update (`KEYSET_NOT_ROOT_SIGNED`).
 */
export function signKeySetUpdate(set: TrustedKeySet, signers: readonly SigningKey[]): SignedKeySet {
  return signKeySet(set, signers);
}

/** Why a key-set push failed on the coordinator's side of the exchange (the agent's refusals are `RejectReason`s). */
export enum KeySetPushFailure {
  /** The host is not enrolled: nothing was sent. */
  UNKNOWN_HOST = "UNKNOWN_HOST",
  /** No answer within the time-out: whether the agent applied the update shows in its next inventory. */
  TIMEOUT = "TIMEOUT",
  /** The answer could not be verified for a reason that is not a `RejectReason`. */
  BAD_RESULT = "BAD_RESULT",
  /** The agent refused with a code this coordinator does not know (the message carries it). */
  REFUSED = "REFUSED",
}

/** Why a key-set push failed: the answer's verification or the agent's refusal, or a {@link KeySetPushFailure}. */
export type KeySetPushReason = RejectReason | ResultRejectReason | KeySetPushFailure;

/** A push of a key-set update was refused or not answered. */
export class KeySetPushError extends LanekeeperError<CoordinatorErrorCode> {
  /** Why: the agent's reason code when it refused (e.g. `KEYSET_VERSION`), or the coordinator-side failure. */
  readonly reasonCode: KeySetPushReason;

  constructor(message: string, reasonCode: KeySetPushReason, options: { cause?: unknown } = {}) {
    super("KEYSET_PUSH_FAILED", message, options);
    this.reasonCode = reasonCode;
  }
}

/**
 * Deliver a signed key-set update to one agent: a NATS request on its intent subject with header
 * `Lk-Kind: keyset` (the only subject the coordinator may send to an agent on). The agent verifies the update
 * against its current set (shared `applyKeySetUpdate`) and answers with a signed result whose digest is the
 * SHA-256 of the update bytes and whose sequence is the version it now trusts.
 * @returns the version the agent now trusts
 * @throws KeySetPushError when the agent refused, the reply does not verify, or nothing answered
 */
export async function pushKeySetUpdate(
  nc: NatsConnection,
  hosts: HostRegistry,
  hostId: string,
  signed: SignedKeySet,
  opts: { timeoutMs?: number; clock?: Clock } = {},
): Promise<number> {
  const host = hosts.host(hostId);
  if (host === undefined) throw new KeySetPushError(`host ${hostId} is not enrolled`, KeySetPushFailure.UNKNOWN_HOST);
  const bytes = encodeSignedKeySet(signed);
  const h = headers();
  h.set(KIND_HEADER, KEYSET_KIND);
  let data: Uint8Array;
  try {
    data = (await nc.request(intentSubject(hostId), bytes, { timeout: opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, headers: h })).data;
  } catch (err) {
    throw new KeySetPushError(`no answer from ${hostId} to the key-set update`, KeySetPushFailure.TIMEOUT, { cause: err });
  }
  let result: ResultPayload;
  try {
    const key = publicKeyFromRaw(host.identityKey);
    ({ result } = verifyResult(data, (keyId) => (keyId === keyIdOf(host.identityKey) ? { hostId, publicKey: key } : undefined), opts.clock ?? systemClock));
  } catch (err) {
    throw new KeySetPushError(`the answer of ${hostId} does not verify`, isRejectError(err) ? err.reason : KeySetPushFailure.BAD_RESULT, { cause: err });
  }
  if (!result.intentDigest.equals(createHash("sha256").update(bytes).digest())) {
    throw new KeySetPushError(`the answer of ${hostId} is about another update`, ResultRejectReason.DIGEST_MISMATCH);
  }
  if (result.status !== ResultStatus.RESULT_STATUS_OK) {
    const code = result.reasonCode;
    throw new KeySetPushError(`${hostId} refused the key-set update: ${code} (${result.message})`, isRejectReason(code) ? code : KeySetPushFailure.REFUSED);
  }
  return result.sequence;
}
