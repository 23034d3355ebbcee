// Sealed secrets inside intents: opened only with the agent's sealing key and the context bound to host, lane,
// intent id and purpose; a secret lifted into another lane, intent or purpose, or sealed to another key, is
// SEAL_FAILED with no runtime call; results never carry the secret.
import { generateSealingKey, RejectReason, ResultStatus, sealContext, sealSecret, type SealedSecret, type SealPurpose } from "@lanekeeper/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HOST, laneSpec, makeIntake, OTHER_HOST, type IntakeFixture } from "./intake-fixture.js";

let fx: IntakeFixture;
beforeEach(async () => {
  fx = await makeIntake();
});
afterEach(async () => {
  await fx.close();
});

const SECRET = Buffer.from("AAAAREGISTRATIONTOKENtestonly");
const ID = "ab".repeat(16);
const ctx = (purpose: SealPurpose, hostId: string, laneId: string, intentId: string): string =>
  sealContext({ purpose, hostId, laneId, intentId });

function createWith(registration: SealedSecret, laneId = "lane-1") {
  return fx.intent({ $case: "create", value: { spec: laneSpec(laneId), registration } }, { intentId: ID });
}

describe("sealed secrets", () => {
  it("the right context opens: the executor gets the plaintext, the result does not contain it", async () => {
    const sealed = sealSecret(fx.sealingKey.publicKey, SECRET, ctx("registration", HOST, "lane-1", ID));
    const { bytes, result } = await fx.send(createWith(sealed).bytes);
    expect(result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect(fx.executor.secrets).toHaveLength(1);
    expect(fx.executor.secrets[0]!.secret.equals(SECRET)).toBe(true);
    expect(Buffer.from(bytes).includes(SECRET)).toBe(false);
  });

  it.each([
    ["another lane", () => ctx("registration", HOST, "lane-2", ID)],
    ["another intent id", () => ctx("registration", HOST, "lane-1", "cd".repeat(16))],
    ["another host", () => ctx("registration", OTHER_HOST, "lane-1", ID)],
    ["another purpose (a remove token moved into a create)", () => ctx("remove-token", HOST, "lane-1", ID)],
    ["the context without the intent id", () => `registration:${HOST}/lane-1`],
  ])("sealed for %s → SEAL_FAILED, no runtime call", async (_name, context) => {
    const sealed = sealSecret(fx.sealingKey.publicKey, SECRET, context());
    const { result } = await fx.send(createWith(sealed).bytes);
    expect(result).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.SEAL_FAILED });
    expect(fx.executor.executeCalls).toEqual([]);
  });

  it("sealed to another agent's key → SEAL_FAILED", async () => {
    const other = generateSealingKey();
    const sealed = sealSecret(other.publicKey, SECRET, ctx("registration", HOST, "lane-1", ID));
    const { result } = await fx.send(createWith(sealed).bytes);
    expect(result.reasonCode).toBe(RejectReason.SEAL_FAILED);
    expect(fx.executor.executeCalls).toEqual([]);
  });

  it("a flipped ciphertext bit → SEAL_FAILED", async () => {
    const sealed = sealSecret(fx.sealingKey.publicKey, SECRET, ctx("registration", HOST, "lane-1", ID));
    sealed.ciphertext[0]! ^= 1;
    const { result } = await fx.send(createWith(sealed).bytes);
    expect(result.reasonCode).toBe(RejectReason.SEAL_FAILED);
    expect(fx.executor.executeCalls).toEqual([]);
  });

  it("a create without a sealed registration is refused before any runtime call", async () => {
    const good = createWith(sealSecret(fx.sealingKey.publicKey, SECRET, ctx("registration", HOST, "lane-1", ID)));
    const bad = fx.intent(good.intent.action!, { action: { $case: "create", value: { spec: laneSpec("lane-1"), registration: undefined } } });
    const { result } = await fx.send(bad.bytes);
    expect(result.reasonCode).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(fx.executor.calls).toEqual([]);
  });

  it("an executor failure carrying child output yields a FAILED result without that output", async () => {
    fx.executor.onExecute = () => {
      throw new Error("stderr: token=AAAAREGISTRATIONTOKENtestonly refused");
    };
    const sealed = sealSecret(fx.sealingKey.publicKey, SECRET, ctx("registration", HOST, "lane-1", ID));
    const { bytes, result } = await fx.send(createWith(sealed).bytes);
    expect(result).toMatchObject({ status: ResultStatus.RESULT_STATUS_FAILED, reasonCode: "INTERNAL" });
    expect(result.message).not.toMatch(/stderr|token/);
    expect(Buffer.from(bytes).includes(SECRET)).toBe(false);
  });

  it("the plaintext handed to the executor is wiped after the action", async () => {
    let seen: Buffer | undefined;
    fx.executor.onExecute = (action) => {
      if (action.kind === "create") seen = action.registration;
    };
    const sealed = sealSecret(fx.sealingKey.publicKey, SECRET, ctx("registration", HOST, "lane-1", ID));
    await fx.send(createWith(sealed).bytes);
    expect(seen).toBeDefined();
    expect(seen!.every((b) => b === 0)).toBe(true);
  });
});
