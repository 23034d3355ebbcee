import { FakeClock, systemClock } from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import { DEFAULT_HEALTH_WINDOW_MS, DEFAULT_MAX_HEALTH_RESTARTS, DEFAULT_OFFLINE_GRACE_MS, DEFAULT_POKE_GAP_MS } from "./limits.js";
import { Reconciler, resolveReconcilerOptions, type CycleReport, type ReconcilerOptions } from "./reconciler.js";

const ctx = { policy: { coordinator: { reconcileIntervalMs: 45_000 } } } as unknown as ReconcilerOptions["ctx"];

describe("resolveReconcilerOptions", () => {
  it("takes the interval from the context's policy and the built-in health defaults", () => {
    expect(resolveReconcilerOptions({ ctx })).toMatchObject({
      intervalMs: 45_000,
      pokeGapMs: DEFAULT_POKE_GAP_MS,
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

/** A reconciler whose cycles are controlled by the test: each waits until released, and overlaps are counted. */
class ProbeReconciler extends Reconciler {
  started = 0;
  now = 0;
  maxRunning = 0;
  private releases: (() => void)[] = [];

  protected override backgroundCycle(): Promise<CycleReport> {
    this.started++;
    this.now++;
    this.maxRunning = Math.max(this.maxRunning, this.now);
    return new Promise((resolve) => {
      this.releases.push(() => {
        this.now--;
        resolve({ leader: true, healthRestarts: [], capped: [] });
      });
    });
  }

  release(): void {
    this.releases.shift()?.();
  }
}

const tick = (ms = 20): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("Reconciler.poke", () => {
  it("starts a cycle at once instead of at the next interval", async () => {
    const r = new ProbeReconciler({ ctx, intervalMs: 3_600_000, pokeGapMs: 0 });
    r.start();
    await tick();
    expect(r.started).toBe(1);
    r.release();
    await tick();
    expect(r.started).toBe(1); // the next interval is an hour away
    r.poke("job 1 queued");
    await tick();
    expect(r.started).toBe(2);
    r.release();
    await r.stop();
  });

  it("pokes during a cycle coalesce into one cycle right after it, never two at once", async () => {
    const r = new ProbeReconciler({ ctx, intervalMs: 3_600_000, pokeGapMs: 0 });
    r.start();
    await tick();
    for (let i = 0; i < 10; i++) r.poke(`job ${i} queued`);
    await tick();
    expect(r.started).toBe(1);
    r.release();
    await tick();
    expect(r.started).toBe(2);
    r.release();
    await tick();
    expect(r.started).toBe(2);
    expect(r.maxRunning).toBe(1);
    await r.stop();
  });

  it("keeps pokeGapMs between the end of a cycle and a poked one", async () => {
    const r = new ProbeReconciler({ ctx, intervalMs: 3_600_000, pokeGapMs: 200 });
    r.start();
    await tick();
    r.release();
    await tick();
    r.poke("job 1 completed");
    await tick(50);
    expect(r.started).toBe(1);
    await tick(250);
    expect(r.started).toBe(2);
    r.release();
    await r.stop();
  });

  it("is ignored before start and after stop", async () => {
    const r = new ProbeReconciler({ ctx, intervalMs: 3_600_000, pokeGapMs: 0 });
    r.poke("early");
    await tick();
    expect(r.started).toBe(0);
    r.start();
    await tick();
    r.release();
    await r.stop();
    r.poke("late");
    await tick();
    expect(r.started).toBe(1);
  });
});
