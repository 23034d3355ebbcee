import { describe, expect, it } from "vitest";
import { FLEET_REALISM, NO_REALISM, parseRealismSetting, realismFromEnv, resolveRealism, SeededRandom } from "./realism.js";

describe("realism settings", () => {
  it("is fault-free by default, the fleet's settings for true, and overrides field by field", () => {
    expect(resolveRealism(undefined)).toEqual(NO_REALISM);
    expect(resolveRealism(false, FLEET_REALISM)).toEqual(NO_REALISM);
    expect(resolveRealism(true)).toEqual(FLEET_REALISM);
    expect(resolveRealism({ webhookDropRate: 0.2 }, FLEET_REALISM)).toEqual({ ...FLEET_REALISM, webhookDropRate: 0.2 });
    expect(Object.isFrozen(resolveRealism({ seed: 3 }))).toBe(true);
  });

  it("refuses bad values with path: message", () => {
    expect(() => resolveRealism({ webhookDropRate: 1.5 })).toThrow("realism.webhookDropRate: must be at most 1, got 1.5");
    expect(() => resolveRealism({ busyStartLagMs: -1 })).toThrow(/realism\.busyStartLagMs: must be a non-negative number/);
    expect(() => resolveRealism({ seed: 1.5 })).toThrow(/realism\.seed: must be an integer/);
    expect(() => resolveRealism({ bogus: 1 } as never)).toThrow(/realism\.bogus: unknown key/);
  });

  it("reads LK_EMULATOR_REALISM and --realism: unset/on is the fleet's, off is fault-free, JSON overrides", () => {
    expect(realismFromEnv({})).toEqual(FLEET_REALISM);
    expect(realismFromEnv({ LK_EMULATOR_REALISM: "off" })).toEqual(NO_REALISM);
    expect(realismFromEnv({ LK_EMULATOR_REALISM: "on" })).toEqual(FLEET_REALISM);
    expect(realismFromEnv({ LK_EMULATOR_REALISM: '{"webhookDropRate":0.2}' }).webhookDropRate).toBe(0.2);
    expect(() => realismFromEnv({ LK_EMULATOR_REALISM: "sometimes" })).toThrow(/LK_EMULATOR_REALISM: expected on, off or a JSON object/);
    expect(() => parseRealismSetting('{"onlineLagMs":"x"}', "--realism")).toThrow(/--realism\.onlineLagMs/);
  });

  it("draws the same sequence for the same seed, another for another seed, all in [0, 1)", () => {
    const a = new SeededRandom(42);
    const b = new SeededRandom(42);
    const c = new SeededRandom(43);
    const xs = Array.from({ length: 1000 }, () => a.next());
    expect(Array.from({ length: 1000 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 1000 }, () => c.next())).not.toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    const share = xs.filter((x) => x < 0.2).length / xs.length;
    expect(share).toBeGreaterThan(0.15);
    expect(share).toBeLessThan(0.25);
  });
});
