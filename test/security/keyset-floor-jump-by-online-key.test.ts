// security-cases 14: a stolen online key raises the intent sequence floor (hwmFloor) to ~2^53 through an
// otherwise unchanged key set, so every intent the real coordinator sends afterwards would be SEQUENCE_TOO_LOW.
// Raising the floor changes trust: only the root key may sign it; refused with KEYSET_NOT_ROOT_SIGNED.
import { RejectReason, ResultStatus, signKeySet } from "@lanekeeper/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { makeIntake, type IntakeFixture } from "./intake-fixture.js";
import { expectKeySetRefused, pushKeySet, trustedSet } from "./keyset-attack-fixture.js";

let fx: IntakeFixture;
beforeEach(async () => {
  fx = await makeIntake();
  fx.executor.setLane("lane-1", "owned", { scope: "acme/api", pool: "linux-x64", backend: 1 });
});
afterEach(async () => {
  await fx.close();
});

const stop = { $case: "stop" as const, value: { laneId: "lane-1", force: false } };

function floorJump(hwmFloor: number) {
  const current = trustedSet(fx);
  return { ...current, version: current.version + 1, hwmFloor, issuedAtMs: fx.clock.now() };
}

describe("a sequence-floor jump", () => {
  it("signed by the online key is refused: KEYSET_NOT_ROOT_SIGNED, and the next real intent still runs", async () => {
    await expectKeySetRefused(fx, signKeySet(floorJump(2 ** 53 - 2), [fx.coordinatorKey]), RejectReason.KEYSET_NOT_ROOT_SIGNED);
    expect(fx.replay.hwm).toBeLessThan(10);
    expect((await fx.send(fx.intent(stop).bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
  });

  it("signed by the root key is applied (the legitimate recovery after a key compromise)", async () => {
    expect(await pushKeySet(fx, signKeySet(floorJump(1_000), [fx.rootKey]))).toMatchObject({ status: ResultStatus.RESULT_STATUS_OK, sequence: 2 });
    expect(fx.replay.hwm).toBe(1_000);
    expect((await fx.send(fx.intent(stop, { sequence: 999 }).bytes)).result.reasonCode).toBe(RejectReason.SEQUENCE_TOO_LOW);
    const audit = await fx.auditRecords();
    expect(audit.at(-2)).toMatchObject({ action: "keyset", phase: "succeeded", details: { keysetVersion: 2 } });
  });
});
