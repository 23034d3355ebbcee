// InventoryBuilder hands out shared builds, but never one whose facts are older than the caller asked for: the
// coordinator trusts a snapshot as "taken after the drain" by its taken_at_ms, which is the build's start.
import { describe, expect, it } from "vitest";
import type { LaneObservation } from "@lanekeeper/shared";
import { InventoryBuilder } from "./inventory.js";
import type { LaneManager } from "../lanes/lane-manager.js";

/** A lane manager whose `list` (the per-lane scan) waits until released, counting calls. */
function slowManager(): { manager: LaneManager; release: () => void; calls: () => number } {
  let calls = 0;
  let release: () => void = () => undefined;
  let gate = new Promise<void>((r) => (release = r));
  const manager = {
    runtimes: {},
    list: async (): Promise<LaneObservation[]> => {
      calls++;
      await gate;
      return [];
    },
  } as unknown as LaneManager;
  return {
    manager,
    release: () => {
      release();
      gate = Promise.resolve();
    },
    calls: () => calls,
  };
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

describe("InventoryBuilder", () => {
  it("stamps a build with when it began, so no fact in it is older than its takenAtMs", async () => {
    const m = slowManager();
    const b = new InventoryBuilder({ manager: m.manager, runnerRoots: [], laneRoot: "/nonexistent" });
    const before = Date.now();
    const pending = b.build(0);
    await tick();
    m.release();
    const content = await pending;
    expect(content.takenAtMs).toBeGreaterThanOrEqual(before);
    expect(content.takenAtMs).toBeLessThan(Date.now() - 4); // the start, not the end, of a build that took ≥ 5 ms
  });

  it("build(0) during a build that began earlier waits for a new one; a recent enough build is shared", async () => {
    const m = slowManager();
    const b = new InventoryBuilder({ manager: m.manager, runnerRoots: [], laneRoot: "/nonexistent" });
    const first = b.build(0);
    await tick();
    const shared = b.build(60_000); // happy with the build in progress
    const askedAt = Date.now();
    const second = b.build(0);
    m.release();
    const [c1, c2, c3] = await Promise.all([first, second, shared]);
    expect(c2).not.toBe(c1);
    expect(c2.takenAtMs).toBeGreaterThanOrEqual(askedAt);
    expect(c3).toBe(c1);
    expect(m.calls()).toBe(2);
    expect(await b.build(60_000)).toBe(c2); // the newest finished build, no new scan
    expect(m.calls()).toBe(2);
  });
});
