// CollectorInventorySource.hostsReporting: which hosts' last snapshots report a lane id, from the snapshots this
// process accepted and, for a host not heard from yet, one read of its stored snapshot (the apply engine's
// lane-id-unused guard asks it instead of reading every enrolled host's inventory for every create).
import { InventorySnapshot } from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import type { StoredInventory } from "../dispatch/inventory-collector.js";
import { CollectorInventorySource } from "./collector-inventory-source.js";

const stored = (hostId: string, seq: number, laneIds: string[]): StoredInventory => ({
  snapshot: InventorySnapshot.fromPartial({ hostId, snapshotSeq: seq, takenAtMs: 1000 + seq, lanes: laneIds.map((laneId) => ({ laneId })) }),
  envelope: new Uint8Array(),
});

describe("CollectorInventorySource.hostsReporting", () => {
  it("answers from accepted snapshots, reads an unheard-of host once, and follows newer snapshots only", async () => {
    const inBucket = new Map([["h3", stored("h3", 5, ["lane-c", "lane-a"])]]);
    const reads: string[] = [];
    const src = new CollectorInventorySource({ now: () => 10_000 });
    src.attach({
      latest: (hostId: string) => {
        reads.push(hostId);
        return Promise.resolve(inBucket.get(hostId));
      },
    });
    src.onSnapshot(stored("h1", 1, ["lane-a", "lane-b"]));
    src.onSnapshot(stored("h2", 1, ["lane-b"]));

    expect(await src.hostsReporting("lane-a", ["h1", "h2", "h3"])).toEqual(["h1", "h3"]);
    expect(await src.hostsReporting("lane-b", ["h1", "h2", "h3"])).toEqual(["h1", "h2"]);
    expect(await src.hostsReporting("lane-b", ["h2"])).toEqual(["h2"]);
    expect(await src.hostsReporting("lane-z", ["h1", "h2", "h3", "h4"])).toEqual([]);
    // Only the hosts it had not heard from were read, once each.
    expect(reads.sort()).toEqual(["h3", "h4"]);

    // A newer snapshot replaces the host's lanes; an older one (arriving late) changes nothing.
    src.onSnapshot(stored("h1", 2, ["lane-b"]));
    src.onSnapshot(stored("h1", 1, ["lane-a", "lane-b"]));
    expect(await src.hostsReporting("lane-a", ["h1", "h2", "h3"])).toEqual(["h3"]);
    src.onSnapshot(stored("h4", 1, ["lane-a"]));
    expect(await src.hostsReporting("lane-a", ["h1", "h2", "h3", "h4"])).toEqual(["h3", "h4"]);
    expect(reads.sort()).toEqual(["h3", "h4"]);
  });
});
