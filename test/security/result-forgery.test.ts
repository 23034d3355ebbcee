// security-cases group 13 (results, at the coordinator): the ResultVerifier accepts a result only when it is
// signed by the identity key enrolled for the host it names, answers an outstanding intent addressed to that
// host, echoes the intent's digest and sequence, is processed once, and has the current envelope version.
import { createHash } from "node:crypto";
import {
  FakeClock,
  generateSealingKey,
  generateSigningKey,
  RejectReason,
  ResultStatus,
  SignedEnvelope,
  signResult,
  type ResultPayload,
  type SigningKey,
} from "@lanekeeper/shared";
import { beforeEach, describe, expect, it } from "vitest";
import { StaticHostRegistry } from "../../packages/coordinator/src/dispatch/host-registry.js";
import {
  ResultRejectReason,
  ResultVerifier,
  UNKNOWN_INTENT_ID,
  type OutstandingIntent,
} from "../../packages/coordinator/src/dispatch/result-verifier.js";

const A = "build01";
const B = "build02";
let clock: FakeClock;
let keyA: SigningKey;
let keyB: SigningKey;
let verifier: ResultVerifier;
let intent: OutstandingIntent;

beforeEach(() => {
  clock = new FakeClock();
  keyA = generateSigningKey();
  keyB = generateSigningKey();
  const hosts = new StaticHostRegistry([
    { hostId: A, identityKey: keyA.publicKey, sealingKey: generateSealingKey().publicKey },
    { hostId: B, identityKey: keyB.publicKey, sealingKey: generateSealingKey().publicKey },
  ]);
  verifier = new ResultVerifier(hosts, { clock });
  intent = {
    intentId: "1f".repeat(16),
    hostId: A,
    sequence: 42,
    digest: createHash("sha256").update("the intent payload").digest(),
    expiresAtMs: clock.now() + 60_000,
  };
  verifier.expect(intent);
});

function result(over: Partial<ResultPayload> = {}): ResultPayload {
  return {
    intentId: intent.intentId,
    intentDigest: intent.digest,
    hostId: A,
    sequence: intent.sequence,
    status: ResultStatus.RESULT_STATUS_OK,
    reasonCode: "",
    message: "",
    startedAtMs: clock.now(),
    finishedAtMs: clock.now(),
    observed: undefined,
    ...over,
  };
}

function refusedWith(envelope: Uint8Array, reason: string, forIntentId?: string): void {
  expect(() => verifier.accept(envelope, forIntentId)).toThrow(expect.objectContaining({ reason }) as Error);
}

describe("result verification at the coordinator", () => {
  it("accepts the genuine result once", () => {
    const ok = verifier.accept(signResult(result(), keyA), intent.intentId);
    expect(ok.result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect(verifier.isOutstanding(intent.intentId)).toBe(false);
  });

  it("a result signed by host B's key that claims host A → ISSUER_MISMATCH", () => {
    refusedWith(signResult(result({ hostId: A }), keyB), RejectReason.ISSUER_MISMATCH);
    // and the intent is still outstanding for the genuine answer
    expect(verifier.accept(signResult(result(), keyA)).intent.hostId).toBe(A);
  });

  it("a result from host B (its own key, its own id) for an intent sent to A → RESULT_WRONG_HOST", () => {
    refusedWith(signResult(result({ hostId: B }), keyB), ResultRejectReason.WRONG_HOST);
  });

  it("a result signed by a key enrolled for no host → UNKNOWN_KEY", () => {
    refusedWith(signResult(result(), generateSigningKey()), RejectReason.UNKNOWN_KEY);
  });

  it("a result for an unknown intent → RESULT_UNKNOWN_INTENT", () => {
    refusedWith(signResult(result({ intentId: "2e".repeat(16) }), keyA), ResultRejectReason.UNKNOWN_INTENT);
  });

  it("a result for an already-completed intent, and a duplicate result → RESULT_ALREADY_PROCESSED", () => {
    const env = signResult(result(), keyA);
    verifier.accept(env);
    refusedWith(env, ResultRejectReason.ALREADY_PROCESSED);
    refusedWith(signResult(result({ status: ResultStatus.RESULT_STATUS_FAILED }), keyA), ResultRejectReason.ALREADY_PROCESSED);
  });

  it("a result for a timed-out (abandoned) intent → RESULT_UNKNOWN_INTENT", () => {
    verifier.abandon(intent.intentId);
    refusedWith(signResult(result(), keyA), ResultRejectReason.UNKNOWN_INTENT);
  });

  it("a digest mismatch → RESULT_DIGEST_MISMATCH", () => {
    refusedWith(signResult(result({ intentDigest: createHash("sha256").update("other").digest() }), keyA), ResultRejectReason.DIGEST_MISMATCH);
  });

  it("a sequence mismatch → RESULT_SEQUENCE_MISMATCH", () => {
    refusedWith(signResult(result({ sequence: 41 }), keyA), ResultRejectReason.SEQUENCE_MISMATCH);
  });

  it.each([0, 2])("an envelope version %i → ENVELOPE_VERSION", (version) => {
    const env = SignedEnvelope.decode(signResult(result(), keyA));
    refusedWith(SignedEnvelope.encode({ ...env, version }).finish(), RejectReason.ENVELOPE_VERSION);
  });

  it("a reply that answers another intent than the one requested → RESULT_UNKNOWN_INTENT", () => {
    const other: OutstandingIntent = { ...intent, intentId: "3d".repeat(16) };
    verifier.expect(other);
    refusedWith(signResult(result(), keyA), ResultRejectReason.UNKNOWN_INTENT, other.intentId);
  });

  it("a rejection of unauthenticated input (all-zero id) is matched to the request by digest", () => {
    const zero = result({ intentId: UNKNOWN_INTENT_ID, sequence: 0, status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: "BAD_SIGNATURE" });
    refusedWith(signResult(zero, keyA), ResultRejectReason.UNKNOWN_INTENT);
    refusedWith(signResult({ ...zero, intentDigest: Buffer.alloc(32) }, keyA), ResultRejectReason.DIGEST_MISMATCH, intent.intentId);
    expect(verifier.accept(signResult(zero, keyA), intent.intentId).result.reasonCode).toBe("BAD_SIGNATURE");
  });

  it("a flipped bit in a result → BAD_SIGNATURE", () => {
    const env = signResult(result(), keyA);
    const bad = Buffer.from(env);
    bad[bad.length - 70]! ^= 1;
    refusedWith(bad, RejectReason.BAD_SIGNATURE);
    expect(verifier.isOutstanding(intent.intentId)).toBe(true);
  });
});
