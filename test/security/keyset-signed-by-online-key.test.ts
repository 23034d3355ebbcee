// security-cases 14: a stolen ONLINE coordinator key (the one that signs intents) tries to take the fleet over
// with a key-set update: drop the real coordinator key, add the attacker's, raise the sequence floor to ~2^53 and
// bump the version, signed by the online key (and the attacker's keys). Only the offline root key pinned at
// install may change trust, so the agent refuses it with KEYSET_NOT_ROOT_SIGNED and nothing changes.
import { buildKeySet, generateSigningKey, RejectReason, ResultStatus, signKeySet, type SigningKey } from "@lanekeeper/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { makeIntake, type IntakeFixture } from "./intake-fixture.js";
import { expectKeySetRefused, trustedSet } from "./keyset-attack-fixture.js";

let fx: IntakeFixture;
let attacker: SigningKey;
beforeEach(async () => {
  fx = await makeIntake();
  attacker = generateSigningKey();
  fx.executor.setLane("lane-1", "owned", { scope: "acme/api", pool: "linux-x64", backend: 1 });
});
afterEach(async () => {
  await fx.close();
});

const stop = { $case: "stop" as const, value: { laneId: "lane-1", force: false } };

function takeover(extra: { attackerRoot?: SigningKey } = {}) {
  const current = trustedSet(fx);
  return buildKeySet({
    version: current.version + 1,
    issuedAtMs: fx.clock.now(),
    members: [{ key: attacker }],
    hwmFloor: 2 ** 53 - 2,
    roots: [{ key: extra.attackerRoot ?? fx.rootKey }],
  });
}

describe("a key set signed by the online intent key", () => {
  it("the lock-out takeover (drop the real key, add the attacker's, floor 2^53, version + 1) is refused: KEYSET_NOT_ROOT_SIGNED", async () => {
    await expectKeySetRefused(fx, signKeySet(takeover(), [fx.coordinatorKey]), RejectReason.KEYSET_NOT_ROOT_SIGNED);
    // The real coordinator still drives the host; the attacker's key is unknown.
    expect((await fx.send(fx.intent(stop).bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect((await fx.send(fx.intent(stop, {}, attacker).bytes)).result.reasonCode).toBe(RejectReason.UNKNOWN_KEY);
  });

  it("co-signed by the key it adds, it is still refused: KEYSET_NOT_ROOT_SIGNED", async () => {
    await expectKeySetRefused(fx, signKeySet(takeover(), [fx.coordinatorKey, attacker]), RejectReason.KEYSET_NOT_ROOT_SIGNED);
  });

  it("replacing the pinned root with the attacker's own root, co-signed by it, is refused: KEYSET_NOT_ROOT_SIGNED", async () => {
    const attackerRoot = generateSigningKey();
    await expectKeySetRefused(fx, signKeySet(takeover({ attackerRoot }), [fx.coordinatorKey, attackerRoot]), RejectReason.KEYSET_NOT_ROOT_SIGNED);
  });

  it("the online key's signature filed under the root's key id does not verify: BAD_SIGNATURE", async () => {
    const signed = signKeySet(takeover(), [fx.coordinatorKey]);
    const forged = { ...signed, signatures: [{ keyId: fx.rootKey.keyId, signature: signed.signatures[0]!.signature }] };
    await expectKeySetRefused(fx, forged, RejectReason.BAD_SIGNATURE);
  });
});
