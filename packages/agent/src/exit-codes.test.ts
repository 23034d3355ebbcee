import { describe, expect, it } from "vitest";
import { ConfigError, LanekeeperError, RejectError, RejectReason } from "@lanekeeper/shared";
import { AgentLockedError, StatusUnavailableError } from "./errors.js";
import { EXIT, exitCodeFor } from "./exit-codes.js";

describe("exitCodeFor", () => {
  it("maps every documented class of error to its code", () => {
    expect(exitCodeFor(new ConfigError("agent config", [{ path: "x", message: "y" }]))).toBe(EXIT.CONFIG);
    expect(exitCodeFor(new AgentLockedError("x"))).toBe(EXIT.LOCKED);
    expect(exitCodeFor(new StatusUnavailableError("x"))).toBe(EXIT.STATUS_UNAVAILABLE);
    expect(exitCodeFor(new RejectError(RejectReason.LANE_NOT_FOUND, "x"))).toBe(EXIT.LANE_NOT_FOUND);
    expect(exitCodeFor(new RejectError(RejectReason.JOB_RUNNING, "x"))).toBe(EXIT.REFUSED);
    expect(exitCodeFor(new LanekeeperError("NOT_INITIALIZED", "x"))).toBe(EXIT.KEYS);
    expect(exitCodeFor(new LanekeeperError("AUDIT_CHAIN_BROKEN", "x"))).toBe(EXIT.AUDIT);
    expect(exitCodeFor(new Error("boom"))).toBe(EXIT.FAILURE);
  });

  it("uses distinct numbers", () => {
    const values = Object.values(EXIT);
    expect(new Set(values).size).toBe(values.length);
  });
});
