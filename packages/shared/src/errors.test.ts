import { describe, expect, it } from "vitest";
import { ConfigError, LanekeeperError, REJECT_REASONS, RejectError, RejectReason, isRejectError, isRejectReason } from "./errors.js";
import { FakeClock, systemClock } from "./clock.js";

describe("errors", () => {
  it("carries stable codes, causes and details", () => {
    const cause = new Error("inner");
    const e = new RejectError(RejectReason.EXPIRED, "too late", { cause, details: { intentId: "x" } });
    expect(e).toBeInstanceOf(LanekeeperError);
    expect(e.code).toBe("EXPIRED");
    expect(e.reason).toBe(RejectReason.EXPIRED);
    expect(e.cause).toBe(cause);
    expect(e.details).toEqual({ intentId: "x" });
    expect(e.name).toBe("RejectError");
    expect(isRejectError(e, RejectReason.EXPIRED)).toBe(true);
    expect(isRejectError(e, RejectReason.REPLAY)).toBe(false);
    expect(isRejectError(new Error("x"))).toBe(false);
  });

  it("uses enum values equal to their names", () => {
    for (const r of REJECT_REASONS) expect(RejectReason[r]).toBe(r);
    expect(isRejectReason("BAD_SIGNATURE")).toBe(true);
    expect(isRejectReason("bad_signature")).toBe(false);
  });

  it("lists config issues as path: message lines", () => {
    const e = new ConfigError("agent config", [
      { path: "control.scopes[0]", message: "bad scope" },
      { path: "", message: "BOM" },
    ]);
    expect(e.code).toBe("CONFIG_INVALID");
    expect(e.message).toBe("agent config is invalid:\n  control.scopes[0]: bad scope\n  (document): BOM");
    expect(Object.isFrozen(e.issues)).toBe(true);
  });
});

describe("clock", () => {
  it("fake clock moves both ways", () => {
    const c = new FakeClock(1000);
    c.advance(500);
    expect(c.now()).toBe(1500);
    c.advance(-2000);
    expect(c.now()).toBe(-500);
    c.set(7);
    expect(c.now()).toBe(7);
    expect(Math.abs(systemClock.now() - Date.now())).toBeLessThan(1000);
  });
});
