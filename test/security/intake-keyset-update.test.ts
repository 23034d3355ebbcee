// security-cases group 5 (keys) for key-set updates at the agent: delivered on the intent subject with header
// Lk-Kind: keyset, verified by shared's applyKeySetUpdate against the agent's current set, persisted in the
// state dir, signed by the pinned root key only, and never a way to skip, roll back or self-sign. Also the full
// rotation (announce → activate → revoke) seen from the intake, and the rollback check across restarts. The
// attacks of a stolen online key have files of their own (keyset-*.test.ts).
import { rm } from "node:fs/promises";
import { join } from "node:path";
import {
  encodeSignedKeySet,
  generateSigningKey,
  KeyStatus,
  RejectReason,
  ResultStatus,
  signKeySet,
  TrustedKeySet,
  type SignedKeySet,
  type SigningKey,
} from "@lanekeeper/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { activateKey, announceKey, revokeKey } from "../../packages/coordinator/src/dispatch/key-rotation.js";
import { AgentTrust, APPLIED_KEYSET_FILE } from "../../packages/agent/src/intake/agent-trust.js";
import { decodeAnswer, makeIntake, type IntakeFixture } from "./intake-fixture.js";

let fx: IntakeFixture;
beforeEach(async () => {
  fx = await makeIntake();
});
afterEach(async () => {
  await fx.close();
});

const stop = { $case: "stop" as const, value: { laneId: "lane-1", force: false } };

async function push(signed: SignedKeySet) {
  return decodeAnswer(await fx.intake.handleKeySetUpdate(encodeSignedKeySet(signed))).result;
}

function current(): TrustedKeySet {
  return TrustedKeySet.fromPartial(fx.trust.keys.set);
}

const t = () => ({ nowMs: fx.clock.now() });

describe("key-set updates at the agent", () => {
  let next: SigningKey;
  beforeEach(() => {
    next = generateSigningKey();
    fx.executor.setLane("lane-1", "owned", { scope: "acme/api", pool: "linux-x64", backend: 1 });
  });

  it("rotation end to end, each step signed by the root: announce, activate, intents by the new key, revoke the old", async () => {
    const v2 = announceKey(current(), next, t());
    expect(await push(signKeySet(v2, [fx.rootKey]))).toMatchObject({ status: ResultStatus.RESULT_STATUS_OK, sequence: 2 });
    expect(fx.trust.version).toBe(2);
    // A NEXT key already verifies (agents learn it before the coordinator signs with it).
    const v3 = activateKey(current(), next.keyId, t());
    expect((await push(signKeySet(v3, [fx.rootKey]))).status).toBe(ResultStatus.RESULT_STATUS_OK);
    const byNew = fx.intent(stop, {}, next);
    expect((await fx.send(byNew.bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    // The retired key still verifies in-flight intents until its window closes.
    expect((await fx.send(fx.intent(stop).bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    const v4 = revokeKey(current(), fx.coordinatorKey.keyId, t());
    expect((await push(signKeySet(v4, [fx.rootKey]))).status).toBe(ResultStatus.RESULT_STATUS_OK);
    const byRevoked = fx.intent(stop);
    const { result } = await fx.send(byRevoked.bytes);
    expect(result).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.KEY_REVOKED });
    expect(fx.executor.executeCalls).toHaveLength(2);
  });

  it("a skipped version (N+2) is refused with KEYSET_VERSION", async () => {
    const v2 = announceKey(current(), next, t());
    const v3 = { ...v2, version: 3 };
    const r = await push(signKeySet(v3, [fx.rootKey]));
    expect(r).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.KEYSET_VERSION });
    expect(fx.trust.version).toBe(1);
  });

  it("a rollback (N−1) and a replay of the current version are refused", async () => {
    const v2 = announceKey(current(), next, t());
    const signedV2 = signKeySet(v2, [fx.rootKey]);
    expect((await push(signedV2)).status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect(await push(signedV2)).toMatchObject({ reasonCode: RejectReason.KEYSET_VERSION });
    const v1again = { ...v2, version: 1 };
    expect(await push(signKeySet(v1again, [fx.rootKey]))).toMatchObject({ reasonCode: RejectReason.KEYSET_VERSION });
    expect(fx.trust.version).toBe(2);
  });

  it("an update signed only by the new key is refused (not vouched for by the current set)", async () => {
    const v2 = announceKey(current(), next, t());
    const r = await push(signKeySet(v2, [next]));
    expect(r).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.KEYSET_UNKNOWN_ROOT });
    // An intent signed by that key stays unknown.
    expect((await fx.send(fx.intent(stop, {}, next).bytes)).result.reasonCode).toBe(RejectReason.UNKNOWN_KEY);
    expect(fx.executor.executeCalls).toEqual([]);
  });


  it("an expired update is refused", async () => {
    const v2 = announceKey(current(), next, { nowMs: fx.clock.now() - 10_000, validityMs: 5_000 });
    expect(await push(signKeySet(v2, [fx.rootKey]))).toMatchObject({ reasonCode: RejectReason.EXPIRED });
  });

  it("garbage on the key-set channel is refused without changing anything", async () => {
    const r = decodeAnswer(await fx.intake.handleKeySetUpdate(new Uint8Array([1, 2, 3, 4]))).result;
    expect(r.status).toBe(ResultStatus.RESULT_STATUS_REJECTED);
    expect(fx.trust.version).toBe(1);
  });

  it("an intent envelope on the key-set channel and a key set on the intent channel are refused (domain separation)", async () => {
    const intent = fx.intent(stop);
    expect((decodeAnswer(await fx.intake.handleKeySetUpdate(intent.bytes))).result.status).toBe(ResultStatus.RESULT_STATUS_REJECTED);
    const v2 = announceKey(current(), next, t());
    const { result } = await fx.send(encodeSignedKeySet(signKeySet(v2, [fx.rootKey])));
    expect(result.status).toBe(ResultStatus.RESULT_STATUS_REJECTED);
    expect(fx.trust.version).toBe(1);
    expect(fx.executor.executeCalls).toEqual([]);
  });

  it("hwm_floor raises the intent high-water mark (fast-forward after a key compromise)", async () => {
    // Revoking the only active key is refused by the helper; rotate first, then revoke with a floor.
    expect(() => revokeKey(current(), fx.coordinatorKey.keyId, t())).toThrow(/no ACTIVE key/);
    await push(signKeySet(announceKey(current(), next, t()), [fx.rootKey]));
    await push(signKeySet(activateKey(current(), next.keyId, t()), [fx.rootKey]));
    const v4 = revokeKey(current(), fx.coordinatorKey.keyId, { ...t(), hwmFloor: 500 });
    expect((await push(signKeySet(v4, [fx.rootKey]))).status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect(fx.replay.hwm).toBe(500);
    const low = fx.intent(stop, { sequence: 400 }, next);
    expect((await fx.send(low.bytes)).result.reasonCode).toBe(RejectReason.SEQUENCE_TOO_LOW);
    expect(fx.executor.executeCalls).toEqual([]);
  });

  it("an applied update survives a restart; deleting it is detected as a rollback (fail closed)", async () => {
    await push(signKeySet(announceKey(current(), next, t()), [fx.rootKey]));
    await fx.restart();
    expect(fx.trust.version).toBe(2);
    expect(fx.trust.keys.entries().find((k) => k.keyId === next.keyId)?.status).toBe(KeyStatus.KEY_STATUS_NEXT);
    await rm(join(fx.dir, APPLIED_KEYSET_FILE));
    await expect(AgentTrust.load({ trustFile: fx.trustFile, stateDir: fx.dir, recordedVersion: fx.replay.keysetVersion, clock: fx.clock })).rejects.toMatchObject({
      code: "TRUST_ROLLBACK",
    });
  });
});
