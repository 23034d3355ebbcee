/**
 * Signed results: the agent's answer to one intent, signed with the host's identity key as
 * `lanekeeper.result.v1`. The coordinator accepts a result only from the key enrolled for the host it names
 * (the NodeRestriction analogue); whether the intent is outstanding is the coordinator's own check.
 */
import type { KeyObject } from "node:crypto";
import { systemClock, type Clock } from "./clock.js";
import { openEnvelope, signEnvelope } from "./envelope.js";
import { RejectError, RejectReason } from "./errors.js";
import { ResultPayload, ResultStatus } from "./gen/lanekeeper/v1/intent.js";
import type { SigningKey } from "./keys.js";
import { MAX_HOST_ID_CHARS, MAX_REF_CHARS, MAX_TEXT_CHARS } from "./limits.js";
import { decodeStrict } from "./strict-decode.js";

/** Encode and sign a result with the agent's identity key. */
export function signResult(result: ResultPayload, key: SigningKey): Uint8Array {
  return signEnvelope("result", ResultPayload.encode(result).finish(), key);
}

/** Decode a result payload strictly and check its field caps (`PAYLOAD_MALFORMED`). */
export function decodeResultPayload(bytes: Uint8Array): ResultPayload {
  const r = decodeStrict(ResultPayload, bytes, "result payload", RejectReason.PAYLOAD_MALFORMED);
  const bad = (m: string): RejectError => new RejectError(RejectReason.PAYLOAD_MALFORMED, `result ${m}`);
  if (!/^[0-9a-f]{32}$/.test(r.intentId)) throw bad("intent id must be 32 lower-case hex characters");
  if (r.intentDigest.length !== 32) throw bad("intent digest must be 32 bytes");
  if (r.hostId.length === 0 || r.hostId.length > MAX_HOST_ID_CHARS) throw bad("host id is empty or too long");
  if (r.reasonCode.length > MAX_REF_CHARS || r.message.length > MAX_TEXT_CHARS) throw bad("reason or message too long");
  if (r.status !== ResultStatus.RESULT_STATUS_OK && r.status !== ResultStatus.RESULT_STATUS_REJECTED && r.status !== ResultStatus.RESULT_STATUS_FAILED) {
    throw bad(`status ${r.status} is unknown`);
  }
  return r;
}

/** The enrolled identity of a host, as the coordinator's policy knows it. */
export interface EnrolledHostKey {
  hostId: string;
  /** The host's Ed25519 identity public key. */
  publicKey: KeyObject;
}

/** A verified result. */
export interface VerifiedResult {
  result: ResultPayload;
  /** SHA-256 of the result payload bytes. */
  digest: Buffer;
  keyId: string;
}

/**
 * Verify a result envelope: signature by an enrolled host key (`UNKNOWN_KEY` otherwise), strict decode, and the
 * result's `hostId` equal to the host that key is enrolled for (`ISSUER_MISMATCH` otherwise).
 */
export function verifyResult(
  bytes: Uint8Array,
  resolveHostKey: (keyId: string) => EnrolledHostKey | undefined,
  clock: Clock = systemClock,
): VerifiedResult {
  let enrolled: EnrolledHostKey | undefined;
  const opened = openEnvelope(
    "result",
    bytes,
    (keyId) => {
      enrolled = resolveHostKey(keyId);
      return enrolled?.publicKey;
    },
    clock,
  );
  const result = decodeResultPayload(opened.payload);
  if (!enrolled || result.hostId !== enrolled.hostId) {
    throw new RejectError(
      RejectReason.ISSUER_MISMATCH,
      `result claims host ${JSON.stringify(result.hostId)} but is signed by the key of ${JSON.stringify(enrolled?.hostId ?? "")}`,
    );
  }
  return { result, digest: opened.digest, keyId: opened.keyId };
}
