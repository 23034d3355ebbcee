// security-cases group 3 (audience) at the intake level: the NATS subject must name this host, the payload's
// audience must be this host exactly, and the signed rejection still goes back. (Envelope-level audience cases
// of verifyIntent are in the shared suite.)
import { RejectReason, ResultStatus } from "@lanekeeper/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HOST, makeIntake, OTHER_HOST, type IntakeFixture } from "./intake-fixture.js";

let fx: IntakeFixture;
beforeEach(async () => {
  fx = await makeIntake();
});
afterEach(async () => {
  await fx.close();
});

describe("subject and audience at the intake", () => {
  it.each([
    ["another host's subject", `lk.v1.intent.${OTHER_HOST}`],
    ["a wildcard subject token", "lk.v1.intent.*"],
    ["a case variant of this host", `lk.v1.intent.${HOST.toUpperCase()}`],
    ["a subject with a trailing token", `lk.v1.intent.${HOST}.x`],
    ["another subject family", `lk.v1.inventory.${HOST}`],
    ["an older protocol version", `lk.v0.intent.${HOST}`],
  ])("an intent for this host arriving on %s is SUBJECT_MISMATCH", async (_name, subject) => {
    const { bytes, intent } = fx.create("lane-1");
    const { result } = await fx.send(bytes, subject);
    expect(result).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.SUBJECT_MISMATCH, hostId: HOST });
    // The signature held, so the result names the intent for the coordinator's correlation.
    expect(result.intentId).toBe(intent.intentId);
    expect(fx.executor.calls).toEqual([]);
  });

  it.each([
    ["another host", OTHER_HOST],
    ["an empty audience", ""],
    ["a wildcard audience", "*"],
    ["a case variant", "Build01"],
    ["trailing whitespace", `${HOST} `],
    ["a trailing NUL", `${HOST}\u0000`],
  ])("an intent addressed to %s on this host's subject is AUDIENCE_MISMATCH", async (_name, audience) => {
    const { bytes } = fx.create("lane-1", {}, { audienceHost: audience });
    const { result } = await fx.send(bytes);
    expect(result).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.AUDIENCE_MISMATCH });
    expect(fx.executor.calls).toEqual([]);
  });

  it("a refused intent does not consume its sequence: a valid one with the same number still runs", async () => {
    const wrong = fx.create("lane-1", {}, { sequence: 7 });
    expect((await fx.send(wrong.bytes, `lk.v1.intent.${OTHER_HOST}`)).result.reasonCode).toBe(RejectReason.SUBJECT_MISMATCH);
    const right = fx.create("lane-1", {}, { sequence: 7 });
    expect((await fx.send(right.bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
  });
});
