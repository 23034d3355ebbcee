// Shared checks of the key-set attack suites (keyset-*.test.ts): deliver a signed key set to the real intake the
// way the coordinator does (header Lk-Kind: keyset on the intent subject), and assert a refusal leaves no side
// effect: the agent trusts exactly what it trusted before (version, keys, roots, floor, the persisted applied
// set), its intent high-water mark did not move, no runtime call happened, and its audit chain holds a `rejected`
// record of action `keyset` with the reason code.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { encodeSignedKeySet, formatTrustFile, ResultStatus, TrustedKeySet, type RejectReason, type ResultPayload, type SignedKeySet } from "@lanekeeper/shared";
import { expect } from "vitest";
import { APPLIED_KEYSET_FILE } from "../../packages/agent/src/intake/agent-trust.js";
import { decodeAnswer, type IntakeFixture } from "./intake-fixture.js";

/** Deliver a signed key-set update to the intake; the decoded signed answer. */
export async function pushKeySet(fx: IntakeFixture, signed: SignedKeySet): Promise<ResultPayload> {
  return decodeAnswer(await fx.intake.handleKeySetUpdate(encodeSignedKeySet(signed))).result;
}

/** The agent's current set, as the coordinator would start an update from it. */
export function trustedSet(fx: IntakeFixture): TrustedKeySet {
  return TrustedKeySet.fromPartial(fx.trust.keys.set);
}

async function appliedFile(fx: IntakeFixture): Promise<string | undefined> {
  return readFile(join(fx.dir, APPLIED_KEYSET_FILE), "utf8").catch(() => undefined);
}

/**
 * Push `signed` and assert it is refused with `reason` and changes nothing: same trust (to the byte), same
 * high-water mark, same persisted applied set, no executor call, and one new `rejected` audit record.
 */
export async function expectKeySetRefused(fx: IntakeFixture, signed: SignedKeySet, reason: RejectReason): Promise<void> {
  const trustBefore = formatTrustFile(fx.trust.keys.set);
  const hwmBefore = fx.replay.hwm;
  const fileBefore = await appliedFile(fx);
  const auditBefore = (await fx.auditRecords()).length;

  const result = await pushKeySet(fx, signed);

  expect(result).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: reason });
  expect(formatTrustFile(fx.trust.keys.set)).toBe(trustBefore);
  expect(fx.replay.hwm).toBe(hwmBefore);
  expect(await appliedFile(fx)).toBe(fileBefore);
  expect(fx.executor.executeCalls).toEqual([]);
  const audit = await fx.auditRecords();
  expect(audit).toHaveLength(auditBefore + 1);
  expect(audit.at(-1)).toMatchObject({ action: "keyset", phase: "rejected", reasonCode: reason, hostId: "build01" });
  // The refusal survives a restart: the agent comes back trusting what it trusted before.
  await fx.restart();
  expect(formatTrustFile(fx.trust.keys.set)).toBe(trustBefore);
}
