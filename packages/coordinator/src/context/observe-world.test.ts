// observeWorld reads the hosts' inventories several at a time (one after another, a 1,000-host fleet's reads were
// most of a reconcile), and the observation still lists them in host order, without the hosts that have none.
import { InventorySnapshot } from "@lanekeeper/shared";
import { hostPolicy, makePolicy } from "@lanekeeper/testing";
import { describe, expect, it } from "vitest";
import type { GitHubClient } from "../github/github-client.js";
import type { HostSnapshot, InventorySource } from "../observe/inventory-source.js";
import { MemoryLaneStore } from "../observe/memory-lane-store.js";
import { INVENTORY_READ_CONCURRENCY } from "../limits.js";
import { observeWorld } from "./observe-world.js";

describe("observeWorld inventories", () => {
  it("reads up to INVENTORY_READ_CONCURRENCY hosts at once and keeps host order", async () => {
    const hostIds = Array.from({ length: 40 }, (_, i) => `host-${String(i).padStart(2, "0")}`);
    const policy = makePolicy({ hosts: Object.fromEntries(hostIds.map((h, i) => [h, hostPolicy(i)])) });
    let inFlight = 0;
    let most = 0;
    const inventory: InventorySource = {
      async latest(hostId): Promise<HostSnapshot | undefined> {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
        // Every third host has no inventory.
        if (Number(hostId.slice(5)) % 3 === 0) return undefined;
        return { snapshot: InventorySnapshot.fromPartial({ hostId, snapshotSeq: 1, takenAtMs: 1000 }), receivedAtMs: 1000 };
      },
    };
    const github = { listRunners: () => Promise.reject(new Error("no GitHub here")), listRunnerDownloads: () => Promise.resolve([]) } as unknown as GitHubClient;
    const world = await observeWorld({ policy, github, store: new MemoryLaneStore(), inventory, clock: { now: () => 2000 } });
    expect(most).toBe(INVENTORY_READ_CONCURRENCY);
    expect([...world.observed.inventory.hosts.keys()]).toEqual(hostIds.filter((h) => Number(h.slice(5)) % 3 !== 0));
  });
});
