// The legitimate paths of the two tiers, on the real intake: a set signed by the pinned root is applied (and
// audited as `succeeded`); root rotation needs the old root (which the agent trusts) AND the new root (proof it
// is held); afterwards only the new root counts. The refusals around it: a rotation signed by the old root alone
// (KEYSET_ROOT_CHANGE), a set that leaves no root (KEYSET_ROOT_CHANGE), the retired root (KEYSET_UNKNOWN_ROOT).
import { generateSigningKey, KeyStatus, RejectReason, ResultStatus, signKeySet } from "@lanekeeper/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { announceKey, rotateRoot } from "../../packages/coordinator/src/dispatch/key-rotation.js";
import { makeIntake, type IntakeFixture } from "./intake-fixture.js";
import { expectKeySetRefused, pushKeySet, trustedSet } from "./keyset-attack-fixture.js";

let fx: IntakeFixture;
beforeEach(async () => {
  fx = await makeIntake();
});
afterEach(async () => {
  await fx.close();
});

const t = () => ({ nowMs: fx.clock.now() });

describe("root-signed key sets and root rotation", () => {
  it("a set signed by the pinned root is applied, persisted and audited", async () => {
    const next = generateSigningKey();
    expect(await pushKeySet(fx, signKeySet(announceKey(trustedSet(fx), next, t()), [fx.rootKey]))).toMatchObject({ status: ResultStatus.RESULT_STATUS_OK, sequence: 2 });
    await fx.restart();
    expect(fx.trust.version).toBe(2);
    expect(fx.trust.keys.entries().find((k) => k.keyId === next.keyId)?.status).toBe(KeyStatus.KEY_STATUS_NEXT);
    expect((await fx.auditRecords()).at(-1)).toMatchObject({ action: "keyset", phase: "succeeded", details: { keysetVersion: 2 } });
  });

  it("root rotation: old and new root sign; then only the new root counts, across a restart", async () => {
    const newRoot = generateSigningKey();
    const rotation = rotateRoot(trustedSet(fx), newRoot, t());
    await expectKeySetRefused(fx, signKeySet(rotation, [fx.rootKey]), RejectReason.KEYSET_ROOT_CHANGE);
    await expectKeySetRefused(fx, signKeySet(rotation, [newRoot]), RejectReason.KEYSET_UNKNOWN_ROOT);
    expect((await pushKeySet(fx, signKeySet(rotation, [fx.rootKey, newRoot]))).status).toBe(ResultStatus.RESULT_STATUS_OK);
    await fx.restart();
    expect(fx.trust.keys.set.rootKeys.map((r) => r.keyId)).toEqual([newRoot.keyId]);
    const v3 = announceKey(trustedSet(fx), generateSigningKey(), t());
    await expectKeySetRefused(fx, signKeySet(v3, [fx.rootKey]), RejectReason.KEYSET_UNKNOWN_ROOT);
    expect((await pushKeySet(fx, signKeySet(v3, [newRoot]))).status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect(fx.trust.version).toBe(3);
  });

  it("a root-signed set that leaves no root is refused: KEYSET_ROOT_CHANGE", async () => {
    const noRoot = { ...trustedSet(fx), version: 2, issuedAtMs: fx.clock.now(), rootKeys: [] };
    await expectKeySetRefused(fx, signKeySet(noRoot, [fx.rootKey]), RejectReason.KEYSET_ROOT_CHANGE);
  });
});
