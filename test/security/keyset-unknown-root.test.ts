// security-cases 5/14: a key-set update signed by a root key the agent never pinned (an attacker's "root", or the
// attacker's set naming its own root and signing itself). Roots are pinned at install and never learnt from the
// network: refused with KEYSET_UNKNOWN_ROOT.
import { buildKeySet, generateSigningKey, RejectReason, signKeySet } from "@lanekeeper/shared";
import { afterEach, beforeEach, describe, it } from "vitest";
import { makeIntake, type IntakeFixture } from "./intake-fixture.js";
import { expectKeySetRefused, trustedSet } from "./keyset-attack-fixture.js";

let fx: IntakeFixture;
beforeEach(async () => {
  fx = await makeIntake();
});
afterEach(async () => {
  await fx.close();
});

describe("a key set signed by an unknown root", () => {
  it("keeping the pinned root in the set but signed by another root key: KEYSET_UNKNOWN_ROOT", async () => {
    const stranger = generateSigningKey();
    const next = { ...trustedSet(fx), version: 2, issuedAtMs: fx.clock.now(), hwmFloor: 10 };
    await expectKeySetRefused(fx, signKeySet(next, [stranger]), RejectReason.KEYSET_UNKNOWN_ROOT);
  });

  it("a self-signed takeover naming the attacker's own root and intent key: KEYSET_UNKNOWN_ROOT", async () => {
    const attackerRoot = generateSigningKey();
    const attacker = generateSigningKey();
    const next = buildKeySet({ version: 2, issuedAtMs: fx.clock.now(), members: [{ key: attacker }], roots: [{ key: attackerRoot }] });
    await expectKeySetRefused(fx, signKeySet(next, [attackerRoot, attacker]), RejectReason.KEYSET_UNKNOWN_ROOT);
  });
});
