// security-cases.md group 2: expiry and clock. Every case uses a fake Clock and asserts the exact RejectReason.
import { describe, expect, it } from "vitest";
import { CLOCK_SKEW_MS, MAX_INTENT_TTL_MS, RejectReason, signIntent, type Clock } from "@lanekeeper/shared";
import { intentFor, reasonOf, signUnchecked, T0, verify, world } from "./envelope-fixture.js";

describe("expiry and skew", () => {
  const w = world();
  const ttl = 60_000;
  const bytes = signIntent(intentFor(w.coordinator, { expiresAtMs: T0 + ttl }), w.coordinator);
  const at = (ms: number): RejectReason | "accepted" => {
    w.clock.set(ms);
    return reasonOf(() => verify(bytes, w));
  };

  it("accepts inside the window", () => {
    expect(at(T0)).toBe("accepted");
    expect(at(T0 + ttl)).toBe("accepted");
  });

  it("rejects expired envelopes, with the skew boundary exactly inclusive", () => {
    expect(at(T0 + ttl + CLOCK_SKEW_MS)).toBe("accepted");
    expect(at(T0 + ttl + CLOCK_SKEW_MS + 1)).toBe(RejectReason.EXPIRED);
    expect(at(T0 + 3_600_000)).toBe(RejectReason.EXPIRED);
  });

  it("rejects envelopes not yet valid, with the skew boundary exactly inclusive", () => {
    expect(at(T0 - CLOCK_SKEW_MS)).toBe("accepted");
    expect(at(T0 - CLOCK_SKEW_MS - 1)).toBe(RejectReason.NOT_YET_VALID);
    const later = signIntent(intentFor(w.coordinator, {}, T0 + 600_000), w.coordinator);
    w.clock.set(T0);
    expect(reasonOf(() => verify(later, w))).toBe(RejectReason.NOT_YET_VALID);
  });

  it("honours a configured skew", () => {
    w.clock.set(T0 + ttl + 1);
    expect(reasonOf(() => verify(bytes, w, { skewMs: 0 }))).toBe(RejectReason.EXPIRED);
    w.clock.set(T0 + ttl);
    expect(reasonOf(() => verify(bytes, w, { skewMs: 0 }))).toBe("accepted");
  });

  it("rejects a TTL above the maximum", () => {
    w.clock.set(T0);
    const max = signIntent(intentFor(w.coordinator, { expiresAtMs: T0 + MAX_INTENT_TTL_MS }), w.coordinator);
    expect(reasonOf(() => verify(max, w))).toBe("accepted");
    const over = signIntent(intentFor(w.coordinator, { expiresAtMs: T0 + MAX_INTENT_TTL_MS + 1 }), w.coordinator);
    expect(reasonOf(() => verify(over, w))).toBe(RejectReason.TTL_TOO_LONG);
    const year = signIntent(intentFor(w.coordinator, { expiresAtMs: T0 + 365 * 86_400_000 }), w.coordinator);
    expect(reasonOf(() => verify(year, w))).toBe(RejectReason.TTL_TOO_LONG);
    expect(reasonOf(() => verify(over, w, { maxTtlMs: MAX_INTENT_TTL_MS + 1 }))).toBe("accepted");
  });

  it("rejects expires < not_before and other malformed windows", () => {
    w.clock.set(T0);
    const inverted = signUnchecked(intentFor(w.coordinator, { notBeforeMs: T0 + 10_000, expiresAtMs: T0 + 5_000 }), w.coordinator);
    expect(reasonOf(() => verify(inverted, w))).toBe(RejectReason.BAD_TIME_WINDOW);
    const backdated = signUnchecked(intentFor(w.coordinator, { notBeforeMs: T0 - 86_400_000 }), w.coordinator);
    expect(reasonOf(() => verify(backdated, w))).toBe(RejectReason.BAD_TIME_WINDOW);
    const unset = signUnchecked(intentFor(w.coordinator, { issuedAtMs: 0, notBeforeMs: 0 }), w.coordinator);
    expect(reasonOf(() => verify(unset, w))).toBe(RejectReason.BAD_TIME_WINDOW);
    const negative = signUnchecked(intentFor(w.coordinator, { expiresAtMs: -1 }), w.coordinator);
    expect(reasonOf(() => verify(negative, w))).toBe(RejectReason.BAD_TIME_WINDOW);
  });

  it("reads the clock once, so a clock jumping between checks cannot split the decision", () => {
    let calls = 0;
    const jumpy: Clock = {
      now: () => (++calls === 1 ? T0 : T0 + 10 * 86_400_000),
    };
    const v = reasonOf(() => verify(bytes, { store: w.store, clock: jumpy as never }));
    expect(v).toBe("accepted");
    expect(calls).toBe(1);
  });

  it("rejects again when the clock jumps backwards after an acceptance", () => {
    w.clock.set(T0 + 1000);
    expect(reasonOf(() => verify(bytes, w))).toBe("accepted");
    w.clock.set(T0 - CLOCK_SKEW_MS - 5000);
    expect(reasonOf(() => verify(bytes, w))).toBe(RejectReason.NOT_YET_VALID);
    w.clock.set(T0 + 1000);
    expect(reasonOf(() => verify(bytes, w))).toBe("accepted");
  });
});
