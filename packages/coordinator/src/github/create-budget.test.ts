import { describe, expect, it } from "vitest";
import { budgetUsage, HOUR_MS, MemoryCreateBudget, MINUTE_MS, takeMint } from "./create-budget.js";

const NOW = 1_800_000_000_000;
const limits = { perMinute: 3, perHour: 5 };

describe("create budget arithmetic", () => {
  it("counts the mints of the last minute and of the last hour; older ones no longer count", () => {
    const mints = [NOW - HOUR_MS, NOW - HOUR_MS + 1, NOW - 2 * MINUTE_MS, NOW - MINUTE_MS, NOW - MINUTE_MS + 1, NOW];
    expect(budgetUsage(mints, limits, NOW)).toEqual({ ...limits, thisMinute: 2, thisHour: 5, allowance: 0, nextFreeAtMs: NOW + 1 });
  });

  it("the minute window: a fourth mint waits until the oldest of the minute ages out", () => {
    let mints: number[] = [];
    for (const t of [NOW, NOW + 10_000, NOW + 20_000]) {
      const r = takeMint(mints, limits, t);
      expect(r.granted).toBe(true);
      mints = r.mints;
    }
    const refused = takeMint(mints, limits, NOW + 30_000);
    expect(refused.granted).toBe(false);
    expect(refused.usage).toMatchObject({ thisMinute: 3, allowance: 0, nextFreeAtMs: NOW + MINUTE_MS });
    expect(takeMint(mints, limits, NOW + MINUTE_MS).granted).toBe(true);
  });

  it("the hour window: after 5 mints spread over the hour, the next waits for the first to be an hour old", () => {
    const mints = [0, 1, 2, 3, 4].map((k) => NOW + k * 5 * MINUTE_MS);
    const at = NOW + 30 * MINUTE_MS;
    const u = budgetUsage(mints, limits, at);
    expect(u).toMatchObject({ thisMinute: 0, thisHour: 5, allowance: 0, nextFreeAtMs: NOW + HOUR_MS });
    expect(takeMint(mints, limits, NOW + HOUR_MS).granted).toBe(true);
  });

  it("a lowered limit (policy change) leaves no negative allowance", () => {
    expect(budgetUsage([NOW - 1, NOW - 2, NOW - 3], { perMinute: 1, perHour: 500 }, NOW)).toMatchObject({ allowance: 0, nextFreeAtMs: NOW - 1 + MINUTE_MS });
  });

  it("MemoryCreateBudget grants up to the limit, then refuses", async () => {
    let now = NOW;
    const b = new MemoryCreateBudget(() => limits, { now: () => now });
    expect((await Promise.all([b.take(), b.take(), b.take(), b.take()])).map((g) => g.granted)).toEqual([true, true, true, false]);
    now += MINUTE_MS;
    expect((await b.take()).granted).toBe(true);
    expect(await b.usage()).toMatchObject({ thisMinute: 1, thisHour: 4, allowance: 1 });
  });
});
