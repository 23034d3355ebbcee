import { describe, expect, it } from "vitest";
import { RejectError, RejectReason } from "./errors.js";
import { checkTimeWindow } from "./time-window.js";

function reasonAt(t: { issuedAtMs: number; notBeforeMs: number; expiresAtMs: number }, now: number, opts = {}): RejectReason | "ok" {
  try {
    checkTimeWindow(t, now, opts);
    return "ok";
  } catch (err) {
    return (err as RejectError).reason;
  }
}

describe("checkTimeWindow", () => {
  const t = { issuedAtMs: 100_000, notBeforeMs: 100_000, expiresAtMs: 160_000 };

  it("applies the skew on both ends, inclusively", () => {
    expect(reasonAt(t, 70_000)).toBe("ok");
    expect(reasonAt(t, 69_999)).toBe(RejectReason.NOT_YET_VALID);
    expect(reasonAt(t, 190_000)).toBe("ok");
    expect(reasonAt(t, 190_001)).toBe(RejectReason.EXPIRED);
    expect(reasonAt(t, 160_001, { skewMs: 0 })).toBe(RejectReason.EXPIRED);
    expect(reasonAt(t, 99_999, { skewMs: 0 })).toBe(RejectReason.NOT_YET_VALID);
  });

  it("bounds the lifetime", () => {
    expect(reasonAt({ ...t, expiresAtMs: 220_000 }, 100_000)).toBe("ok");
    expect(reasonAt({ ...t, expiresAtMs: 220_001 }, 100_000)).toBe(RejectReason.TTL_TOO_LONG);
    expect(reasonAt({ ...t, expiresAtMs: 160_001 }, 100_000, { maxTtlMs: 60_000 })).toBe(RejectReason.TTL_TOO_LONG);
  });

  it("refuses malformed windows whatever the time", () => {
    expect(reasonAt({ ...t, expiresAtMs: 99_999 }, 100_000)).toBe(RejectReason.BAD_TIME_WINDOW);
    expect(reasonAt({ ...t, notBeforeMs: 99_999 }, 100_000)).toBe(RejectReason.BAD_TIME_WINDOW);
    expect(reasonAt({ ...t, issuedAtMs: 0, notBeforeMs: 0 }, 100_000)).toBe(RejectReason.BAD_TIME_WINDOW);
    expect(reasonAt({ ...t, expiresAtMs: -1 }, 100_000)).toBe(RejectReason.BAD_TIME_WINDOW);
  });
});
