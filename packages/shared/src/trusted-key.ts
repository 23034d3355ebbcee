/** Usability of one trusted verification key at one instant: shared by envelopes and key sets. */
import type { KeyObject } from "node:crypto";
import { RejectError, RejectReason } from "./errors.js";
import { KeyStatus } from "./gen/lanekeeper/v1/envelope.js";

/**
 * A verification key with its trust metadata. The generated `TrustedKey` message fits this shape; entries of a
 * `TrustedKeyStore` also carry a cached `keyObject`.
 */
export interface TrustedKeyLike {
  /** Hex SHA-256 of `publicKey`. */
  readonly keyId: string;
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  readonly status: KeyStatus;
  /** First instant the key may verify (inclusive); 0 means no lower bound. */
  readonly notBeforeMs: number;
  /** Last instant the key may verify (inclusive). */
  readonly notAfterMs: number;
  /** Cached public KeyObject, when the holder has one. */
  readonly keyObject?: KeyObject;
}

const vouched = new WeakSet<object>();

/**
 * Record that `key.keyId` was checked to be the hash of `key.publicKey` (a `TrustedKeyStore` does this when it
 * is built), so the per-verification re-check can be skipped. Entries must be frozen.
 */
export function markKeyIdChecked(key: TrustedKeyLike): void {
  if (Object.isFrozen(key)) vouched.add(key);
}

/** Whether {@link markKeyIdChecked} vouched for this exact (frozen) object. */
export function isKeyIdChecked(key: TrustedKeyLike): boolean {
  return vouched.has(key);
}

/** Statuses a key may verify with: announced (`NEXT`), `ACTIVE`, and `RETIRED` (until `notAfterMs`). */
export function statusVerifies(status: KeyStatus): boolean {
  return status === KeyStatus.KEY_STATUS_NEXT || status === KeyStatus.KEY_STATUS_ACTIVE || status === KeyStatus.KEY_STATUS_RETIRED;
}

/**
 * Throw unless `key` may verify at `nowMs`: revoked (or any unknown status) → `KEY_REVOKED`; outside
 * `[notBeforeMs, notAfterMs]` → `KEY_NOT_VALID_NOW`. Key windows are long (days), so no skew applies.
 */
export function assertKeyUsable(key: TrustedKeyLike, nowMs: number): void {
  if (!statusVerifies(key.status)) {
    throw new RejectError(RejectReason.KEY_REVOKED, `key ${key.keyId} is revoked`, { details: { keyId: key.keyId } });
  }
  if (nowMs < key.notBeforeMs || nowMs > key.notAfterMs) {
    throw new RejectError(
      RejectReason.KEY_NOT_VALID_NOW,
      `key ${key.keyId} is valid from ${new Date(key.notBeforeMs).toISOString()} to ${new Date(key.notAfterMs).toISOString()}, not now`,
      { details: { keyId: key.keyId, notBeforeMs: key.notBeforeMs, notAfterMs: key.notAfterMs, nowMs } },
    );
  }
}
