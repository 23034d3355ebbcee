import { FakeClock, generateSigningKey, systemClock } from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import { resolveInventoryPublisherOptions, type InventoryPublisherOptions } from "./inventory-publisher.js";
import { DEFAULT_INVENTORY_INTERVAL_MS, INVENTORY_CHANGE_DEBOUNCE_MS } from "./limits.js";

const base: InventoryPublisherOptions = {
  hostId: "build01",
  identityKey: generateSigningKey(),
  provider: () => Promise.reject(new Error("not called")),
  controlEnabled: () => true,
  intentHwm: () => 0,
  keysetVersion: () => 0,
};

describe("resolveInventoryPublisherOptions", () => {
  it("fills in the built-in defaults", () => {
    expect(resolveInventoryPublisherOptions(base)).toMatchObject({
      clock: systemClock,
      intervalMs: DEFAULT_INVENTORY_INTERVAL_MS,
      debounceMs: INVENTORY_CHANGE_DEBOUNCE_MS,
    });
  });

  it("takes the interval from the agent config unless the options set it, and resolving twice changes nothing", () => {
    expect(resolveInventoryPublisherOptions(base, { inventoryIntervalMs: 2_500 }).intervalMs).toBe(2_500);
    const clock = new FakeClock(1);
    const r = resolveInventoryPublisherOptions({ ...base, clock, intervalMs: 700, debounceMs: 20 }, { inventoryIntervalMs: 2_500 });
    expect(r).toMatchObject({ clock, intervalMs: 700, debounceMs: 20 });
    expect(resolveInventoryPublisherOptions(r)).toEqual(r);
  });
});
