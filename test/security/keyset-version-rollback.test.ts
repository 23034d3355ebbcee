// security-cases 5: key-set updates must be exactly version current + 1, even when the root signs them: a rollback
// to an older set (resurrecting a revoked online key), a replay of the current one, and a skipped version are
// refused with KEYSET_VERSION.
import { generateSigningKey, RejectReason, ResultStatus, signKeySet } from "@lanekeeper/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { activateKey, announceKey, revokeKey } from "../../packages/coordinator/src/dispatch/key-rotation.js";
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

describe("a key-set version rollback", () => {
  it("back to a set that still trusts a revoked online key: KEYSET_VERSION", async () => {
    const next = generateSigningKey();
    const v2 = signKeySet(announceKey(trustedSet(fx), next, t()), [fx.rootKey]);
    expect((await pushKeySet(fx, v2)).status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect((await pushKeySet(fx, signKeySet(activateKey(trustedSet(fx), next.keyId, t()), [fx.rootKey]))).status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect((await pushKeySet(fx, signKeySet(revokeKey(trustedSet(fx), fx.coordinatorKey.keyId, t()), [fx.rootKey]))).status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect(fx.trust.version).toBe(4);
    // The old, validly root-signed version 2 (the revoked key still ACTIVE there) is replayed.
    await expectKeySetRefused(fx, v2, RejectReason.KEYSET_VERSION);
    // A freshly signed set with a lower version number is no better.
    await expectKeySetRefused(fx, signKeySet({ ...trustedSet(fx), version: 3, issuedAtMs: fx.clock.now() }, [fx.rootKey]), RejectReason.KEYSET_VERSION);
  });

  it("a replay of the current version and a skipped version (N+2): KEYSET_VERSION", async () => {
    const same = { ...trustedSet(fx), issuedAtMs: fx.clock.now() };
    await expectKeySetRefused(fx, signKeySet(same, [fx.rootKey]), RejectReason.KEYSET_VERSION);
    await expectKeySetRefused(fx, signKeySet({ ...same, version: 3 }, [fx.rootKey]), RejectReason.KEYSET_VERSION);
  });
});
