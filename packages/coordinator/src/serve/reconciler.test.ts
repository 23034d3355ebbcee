import { FakeClock, systemClock } from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import { DEFAULT_HEALTH_WINDOW_MS, DEFAULT_MAX_HEALTH_RESTARTS, DEFAULT_OFFLINE_GRACE_MS } from "./limits.js";
import { resolveReconcilerOptions, type ReconcilerOptions } from "./reconciler.js";

const ctx = { policy: { coordinator: { reconcileIntervalMs: 45_000 } } } as unknown as ReconcilerOptions["ctx"];

describe("resolveReconcilerOptions", () => {
  it("takes the interval from the context's policy and the built-in health defaults", () => {
    expect(resolveReconcilerOptions({ ctx })).toMatchObject({
      intervalMs: 45_000,
      clock: systemClock,
      health: { offlineGraceMs: DEFAULT_OFFLINE_GRACE_MS, maxRestarts: DEFAULT_MAX_HEALTH_RESTARTS, windowMs: DEFAULT_HEALTH_WINDOW_MS },
    });
  });

  it("an explicit policy beats the context's, an explicit option beats both, health fields one by one", () => {
    expect(resolveReconcilerOptions({ ctx }, { reconcileIntervalMs: 5_000 }).intervalMs).toBe(5_000);
    const clock = new FakeClock(1);
    const r = resolveReconcilerOptions({ ctx, intervalMs: 1_000, clock, health: { maxRestarts: 1 } }, { reconcileIntervalMs: 5_000 });
    expect(r).toMatchObject({ intervalMs: 1_000, clock, health: { offlineGraceMs: DEFAULT_OFFLINE_GRACE_MS, maxRestarts: 1, windowMs: DEFAULT_HEALTH_WINDOW_MS } });
    expect(resolveReconcilerOptions(r)).toEqual(r);
  });
});
