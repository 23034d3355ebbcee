import { createHash } from "node:crypto";
import { generateSigningKey, isRejectReason, REJECT_REASONS, ResultStatus, signResult, type ResultPayload } from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import { StaticHostRegistry } from "./host-registry.js";
import { isResultRejectReason, RESULT_REJECT_REASONS, ResultRejectedError, ResultRejectReason, ResultVerifier } from "./result-verifier.js";

const agentKey = generateSigningKey();
const hosts = new StaticHostRegistry([{ hostId: "build01", identityKey: agentKey.publicKey, sealingKey: Buffer.alloc(32, 1) }]);
const now = 1_800_000_000_000;
const digest = createHash("sha256").update("intent").digest();

function result(over: Partial<ResultPayload> = {}): Uint8Array {
  return signResult(
    {
      intentId: "ab".repeat(16),
      intentDigest: digest,
      hostId: "build01",
      sequence: 7,
      status: ResultStatus.RESULT_STATUS_OK,
      reasonCode: "",
      message: "",
      startedAtMs: now,
      finishedAtMs: now,
      observed: undefined,
      ...over,
    },
    agentKey,
  );
}

function refusal(fn: () => unknown): ResultRejectedError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ResultRejectedError) return err;
    throw err;
  }
  throw new Error("expected a ResultRejectedError");
}

describe("result refusal codes", () => {
  it("are one typed enum, RESULT_-prefixed and disjoint from shared's RejectReason", () => {
    expect(RESULT_REJECT_REASONS.length).toBeGreaterThan(0);
    for (const r of RESULT_REJECT_REASONS) {
      expect(r).toMatch(/^RESULT_[A-Z_]+$/);
      expect(isRejectReason(r), r).toBe(false);
      expect(isResultRejectReason(r)).toBe(true);
    }
    for (const r of REJECT_REASONS) expect(isResultRejectReason(r), r).toBe(false);
  });

  it("every result-level refusal of the verifier names a member, as both reason and code", () => {
    const v = new ResultVerifier(hosts, { clock: { now: () => now } });
    const unknown = refusal(() => v.accept(result()));
    expect(unknown.reason).toBe(ResultRejectReason.UNKNOWN_INTENT);
    v.expect({ intentId: "ab".repeat(16), hostId: "build01", sequence: 7, digest, expiresAtMs: now + 60_000 });
    const cases: [Uint8Array, ResultRejectReason][] = [
      [result({ intentDigest: Buffer.alloc(32) }), ResultRejectReason.DIGEST_MISMATCH],
      [result({ sequence: 8 }), ResultRejectReason.SEQUENCE_MISMATCH],
    ];
    for (const [env, reason] of cases) {
      const e = refusal(() => v.accept(env));
      expect(e.reason).toBe(reason);
      expect(e.code).toBe(reason);
      expect(isResultRejectReason(e.code)).toBe(true);
    }
    expect(v.accept(result()).result.sequence).toBe(7);
    expect(refusal(() => v.accept(result())).reason).toBe(ResultRejectReason.ALREADY_PROCESSED);
  });
});
