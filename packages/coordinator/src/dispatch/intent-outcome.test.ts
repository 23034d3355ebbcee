import { RejectReason, ResultStatus, type ResultPayload } from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import { answeredOutcome, isAnswered, jobRunning, removeDone, undeliveredOutcome } from "./intent-outcome.js";

function answered(status: ResultStatus, reasonCode = "", message = ""): ReturnType<typeof answeredOutcome> {
  const result = { status, reasonCode, message, hostId: "build01" } as ResultPayload;
  return answeredOutcome({ result, resultEnvelope: new Uint8Array(), intentIds: ["i-1"], sequence: 7 });
}

describe("typed intent outcomes", () => {
  it("an OK result is succeeded", () => {
    expect(answered(ResultStatus.RESULT_STATUS_OK)).toMatchObject({ kind: "succeeded", intentIds: ["i-1"], sequence: 7 });
  });

  it("a refusal carries the typed reject reason, or none for a code outside the enum", () => {
    expect(answered(ResultStatus.RESULT_STATUS_REJECTED, "JOB_RUNNING", "busy")).toMatchObject({
      kind: "refused",
      reason: RejectReason.JOB_RUNNING,
      code: "JOB_RUNNING",
      message: "busy",
    });
    const other = answered(ResultStatus.RESULT_STATUS_REJECTED, "RUNTIME_INSPECT", "no");
    expect(other).toMatchObject({ kind: "refused", code: "RUNTIME_INSPECT" });
    expect(other.kind === "refused" && other.reason).toBeUndefined();
  });

  it("a failed result keeps the agent's code", () => {
    expect(answered(ResultStatus.RESULT_STATUS_FAILED, "RUNNER_NAME_TAKEN", "taken")).toMatchObject({ kind: "failed", code: "RUNNER_NAME_TAKEN" });
  });

  it("dispatch codes become the undelivered kinds, with the intents sent", () => {
    expect(undeliveredOutcome("DISPATCH_TIMEOUT", "slow", ["a", "b"])).toEqual({ kind: "timeout", code: "DISPATCH_TIMEOUT", message: "slow", intentIds: ["a", "b"] });
    expect(undeliveredOutcome("DISPATCH_NO_RESPONDERS", "", []).kind).toBe("no-responders");
    expect(undeliveredOutcome("DISPATCH_UNKNOWN_HOST", "", []).kind).toBe("unknown-host");
    expect(undeliveredOutcome("DISPATCH_BAD_RESULT", "", []).kind).toBe("bad-result");
    expect(isAnswered(undeliveredOutcome("DISPATCH_TIMEOUT", "", []))).toBe(false);
    expect(isAnswered(answered(ResultStatus.RESULT_STATUS_FAILED))).toBe(true);
  });

  it("a remove is done when it succeeded or the lane was already gone, not on another refusal", () => {
    expect(removeDone(answered(ResultStatus.RESULT_STATUS_OK))).toBe(true);
    expect(removeDone(answered(ResultStatus.RESULT_STATUS_REJECTED, "LANE_NOT_FOUND"))).toBe(true);
    expect(removeDone(answered(ResultStatus.RESULT_STATUS_FAILED, "LANE_NOT_FOUND"))).toBe(false);
    expect(removeDone(answered(ResultStatus.RESULT_STATUS_REJECTED, "LANE_HELD"))).toBe(false);
    expect(removeDone(undeliveredOutcome("DISPATCH_TIMEOUT", "", []))).toBe(false);
  });

  it("a job running is the agent's refusal or the runner's failed unregistration, never an undelivered intent", () => {
    expect(jobRunning(answered(ResultStatus.RESULT_STATUS_REJECTED, "JOB_RUNNING"))).toBe(true);
    expect(jobRunning(answered(ResultStatus.RESULT_STATUS_FAILED, "JOB_RUNNING"))).toBe(true);
    expect(jobRunning(answered(ResultStatus.RESULT_STATUS_REJECTED, "LANE_HELD"))).toBe(false);
    expect(jobRunning(undeliveredOutcome("DISPATCH_TIMEOUT", "", []))).toBe(false);
  });
});
