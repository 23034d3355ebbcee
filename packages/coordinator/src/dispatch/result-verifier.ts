import type { KeyObject } from "node:crypto";
import {
  CLOCK_SKEW_MS,
  isRejectError,
  LanekeeperError,
  publicKeyFromRaw,
  RejectReason,
  systemClock,
  verifyResult,
  type Clock,
  type EnrolledHostKey,
  type ResultPayload,
} from "@lanekeeper/shared";
import type { HostRegistry } from "./host-registry.js";
import { MAX_COMPLETED_INTENTS } from "./limits.js";

/**
 * Why the coordinator refused a result, beyond the envelope-level {@link RejectReason}s. Only the coordinator
 * checks results against the intents it sent, so these codes live here, not in shared's `RejectReason` (which the
 * agent answers with). Every coordinator check of a result names one of these members, never a string; the
 * values are prefixed `RESULT_` and never collide with a `RejectReason`, so one code means one thing in logs,
 * audit records and `--json` output.
 */
export enum ResultRejectReason {
  /** No outstanding intent has this id (never sent, timed out and abandoned, or expired). */
  UNKNOWN_INTENT = "RESULT_UNKNOWN_INTENT",
  /** The intent already has a result: each result is processed once. */
  ALREADY_PROCESSED = "RESULT_ALREADY_PROCESSED",
  /** The result's host is not the intent's audience. */
  WRONG_HOST = "RESULT_WRONG_HOST",
  /** The result echoes another payload digest than the intent's. */
  DIGEST_MISMATCH = "RESULT_DIGEST_MISMATCH",
  /** The result echoes another sequence than the intent's. */
  SEQUENCE_MISMATCH = "RESULT_SEQUENCE_MISMATCH",
}

/** Every {@link ResultRejectReason} value. */
export const RESULT_REJECT_REASONS: readonly ResultRejectReason[] = Object.freeze(Object.values(ResultRejectReason));

/** Whether `s` is a {@link ResultRejectReason} (codes read back from audit records or `--json` output). */
export function isResultRejectReason(s: string): s is ResultRejectReason {
  return (RESULT_REJECT_REASONS as readonly string[]).includes(s);
}

/** Why a result was refused: envelope-level (shared {@link RejectReason}) or result-level ({@link ResultRejectReason}). */
export type ResultRefusalReason = RejectReason | ResultRejectReason;

/**
 * A result the coordinator will not act on. `reason` is a {@link ResultRejectReason}, or the envelope-level
 * {@link RejectReason} (`ENVELOPE_VERSION`, `BAD_SIGNATURE`, `UNKNOWN_KEY` for a key enrolled to no host,
 * `ISSUER_MISMATCH` for a result whose host is not the one its key is enrolled for, `PAYLOAD_MALFORMED`, ...).
 */
// Typed by its own reasons (not CoordinatorErrorCode): error-codes.ts imports them from here, one way.
export class ResultRejectedError extends LanekeeperError<ResultRefusalReason> {
  readonly reason: ResultRefusalReason;

  constructor(reason: ResultRefusalReason, message: string, options: { cause?: unknown } = {}) {
    super(reason, message, options);
    this.reason = reason;
  }
}

/** An intent the coordinator sent and waits a result for. */
export interface OutstandingIntent {
  readonly intentId: string;
  readonly hostId: string;
  readonly sequence: number;
  /** SHA-256 of the intent payload bytes. */
  readonly digest: Buffer;
  readonly expiresAtMs: number;
}

/** A result accepted by {@link ResultVerifier.accept}. */
export interface AcceptedResult {
  readonly result: ResultPayload;
  readonly intent: OutstandingIntent;
  /** The signed envelope, kept for audit. */
  readonly envelope: Uint8Array;
}

/** Intent id agents use in results about input whose intent id they could not authenticate. */
export const UNKNOWN_INTENT_ID = "0".repeat(32);

/**
 * The coordinator's result checks (security-cases group 13): the envelope version is current and the signature
 * is by the identity key enrolled for the host the result names (shared `verifyResult`); the intent is
 * outstanding and addressed to that host; the digest and sequence echo the intent; and each intent's result is
 * processed once.
 */
export class ResultVerifier {
  private readonly outstanding = new Map<string, OutstandingIntent>();
  private readonly completed = new Map<string, number>();
  private readonly keyObjects = new Map<string, KeyObject>();
  private readonly clock: Clock;
  private readonly skewMs: number;

  constructor(
    private readonly hosts: HostRegistry,
    opts: { clock?: Clock; skewMs?: number } = {},
  ) {
    this.clock = opts.clock ?? systemClock;
    this.skewMs = opts.skewMs ?? CLOCK_SKEW_MS;
  }

  /** Record an intent as sent: from now its result may be accepted once. */
  expect(intent: OutstandingIntent): void {
    this.prune();
    this.outstanding.set(intent.intentId, intent);
  }

  /** Stop waiting for an intent (timed out); a late result for it is then refused as unknown. */
  abandon(intentId: string): void {
    this.outstanding.delete(intentId);
  }

  /** Whether an intent is outstanding. */
  isOutstanding(intentId: string): boolean {
    return this.outstanding.has(intentId);
  }

  /**
   * Verify a result envelope and, when it is acceptable, mark its intent completed. `forIntentId` names the
   * intent whose request this is the reply to: an agent answers input it could not authenticate with the
   * all-zero intent id, and such a result is matched to the request (by digest) instead.
   * @throws ResultRejectedError
   */
  accept(envelope: Uint8Array, forIntentId?: string): AcceptedResult {
    let result: ResultPayload;
    try {
      ({ result } = verifyResult(envelope, (keyId) => this.resolve(keyId), this.clock));
    } catch (err) {
      if (isRejectError(err)) throw new ResultRejectedError(err.reason, err.message, { cause: err });
      throw err;
    }
    const id = result.intentId === UNKNOWN_INTENT_ID && forIntentId !== undefined ? forIntentId : result.intentId;
    if (forIntentId !== undefined && id !== forIntentId) {
      throw new ResultRejectedError(ResultRejectReason.UNKNOWN_INTENT, "the reply answers another intent than the one requested");
    }
    const intent = this.outstanding.get(id);
    if (intent === undefined) {
      if (this.completed.has(id)) throw new ResultRejectedError(ResultRejectReason.ALREADY_PROCESSED, `intent ${id} already has a result`);
      throw new ResultRejectedError(ResultRejectReason.UNKNOWN_INTENT, `intent ${id} is not outstanding`);
    }
    if (result.hostId !== intent.hostId) {
      throw new ResultRejectedError(
        ResultRejectReason.WRONG_HOST,
        `intent ${id} was sent to ${intent.hostId}, the result comes from ${result.hostId}`,
      );
    }
    if (!result.intentDigest.equals(intent.digest)) {
      throw new ResultRejectedError(ResultRejectReason.DIGEST_MISMATCH, `result for intent ${id} echoes another payload digest`);
    }
    if (result.intentId !== UNKNOWN_INTENT_ID && result.sequence !== intent.sequence) {
      throw new ResultRejectedError(ResultRejectReason.SEQUENCE_MISMATCH, `result for intent ${id} echoes another sequence`);
    }
    this.outstanding.delete(id);
    this.completed.set(id, intent.expiresAtMs);
    return { result, intent, envelope };
  }

  private resolve(keyId: string): EnrolledHostKey | undefined {
    const host = this.hosts.hostForKey(keyId);
    if (host === undefined) return undefined;
    let key = this.keyObjects.get(keyId);
    if (key === undefined) {
      key = publicKeyFromRaw(host.identityKey);
      this.keyObjects.set(keyId, key);
    }
    return { hostId: host.hostId, publicKey: key };
  }

  /** Forget expired outstanding intents and cap the completed set (oldest first). */
  private prune(): void {
    const now = this.clock.now();
    for (const [id, o] of this.outstanding) if (o.expiresAtMs + this.skewMs < now) this.outstanding.delete(id);
    while (this.completed.size > MAX_COMPLETED_INTENTS) {
      const first = this.completed.keys().next();
      if (first.done === true) break;
      this.completed.delete(first.value);
    }
  }
}
