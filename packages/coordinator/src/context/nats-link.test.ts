import { FakeClock, type InventorySnapshot, type Policy } from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import type { HostSnapshot, InventorySource } from "../observe/inventory-source.js";
import { freshViewGate } from "./nats-link.js";

const policy = { hosts: { build01: { optIn: true }, build02: { optIn: true }, build09: { optIn: false } } } as unknown as Pick<Policy, "hosts">;

function source(taken: Record<string, number>): InventorySource {
  return {
    latest: (h) => Promise.resolve(taken[h] === undefined ? undefined : ({ snapshot: { hostId: h, takenAtMs: taken[h] } as InventorySnapshot, receivedAtMs: taken[h] } satisfies HostSnapshot)),
  };
}

describe("freshViewGate", () => {
  it("acts at once when NATS never failed, never while the connection is down", async () => {
    const clock = new FakeClock();
    const link = { connected: true, lastTroubleMs: Number.NEGATIVE_INFINITY };
    const gate = freshViewGate({ link, inventory: source({}), policy, waitMs: 5_000, clock });
    expect(await gate()).toBe(true);
    link.connected = false;
    expect(await gate()).toBe(false);
  });

  it("after NATS trouble, waits for an inventory taken since from every opted-in host, then acts", async () => {
    const clock = new FakeClock();
    const t = clock.now();
    const link = { connected: true, lastTroubleMs: t };
    const taken: Record<string, number> = { build01: t - 1_000, build02: t - 1_000 };
    const gate = freshViewGate({ link, inventory: source(taken), policy, waitMs: 5_000, clock });
    expect(await gate()).toBe(false);
    clock.advance(1_000);
    taken.build01 = clock.now();
    expect(await gate()).toBe(false);
    // Queued while disconnected and delivered late does not count: taken before the trouble.
    taken.build02 = t - 10;
    expect(await gate()).toBe(false);
    taken.build02 = clock.now();
    expect(await gate()).toBe(true);
    // Cleared for this episode; a new one starts over.
    expect(await gate()).toBe(true);
    link.lastTroubleMs = clock.now() + 1;
    clock.advance(10);
    expect(await gate()).toBe(false);
  });

  it("a host that stays away does not stop the fleet: after waitMs it acts on what is known", async () => {
    const clock = new FakeClock();
    const link = { connected: true, lastTroubleMs: clock.now() };
    const gate = freshViewGate({ link, inventory: source({ build01: clock.now() + 1 }), policy, waitMs: 5_000, clock });
    expect(await gate()).toBe(false);
    clock.advance(5_000);
    expect(await gate()).toBe(true);
  });
});
