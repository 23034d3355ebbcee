import { describe, expect, it } from "vitest";
import { laneRecord } from "@lanekeeper/testing";
import { LaneStoreConflictError } from "./lane-store.js";
import { MemoryLaneStore } from "./memory-lane-store.js";

const rec = laneRecord("linux-x64-0a1b2c");

describe("MemoryLaneStore", () => {
  it("creates once, then updates and deletes only at the revision read", async () => {
    const store = new MemoryLaneStore();
    const a = await store.create(rec);
    await expect(store.create(rec)).rejects.toBeInstanceOf(LaneStoreConflictError);
    const b = await store.update({ ...rec, state: "active", runnerId: 7 }, a.revision);
    expect(b.revision).toBeGreaterThan(a.revision);
    await expect(store.update({ ...rec, state: "draining" }, a.revision)).rejects.toMatchObject({ code: "LANE_STORE_CONFLICT" });
    await expect(store.delete(rec.laneId, a.revision)).rejects.toBeInstanceOf(LaneStoreConflictError);
    expect((await store.get(rec.laneId))?.state).toBe("active");
    await store.delete(rec.laneId, b.revision);
    expect(await store.list()).toEqual([]);
  });

  it("lists records sorted by lane id", async () => {
    const store = new MemoryLaneStore([{ ...rec, laneId: "b" }, { ...rec, laneId: "a" }]);
    expect((await store.list()).map((r) => r.laneId)).toEqual(["a", "b"]);
  });
});
