// KvLaneStore against a real nats-server with JetStream: compare-and-set on the KV revision for create, update
// and delete, a record recreated after deletion, retired lane ids, corrupt entries refused, and two stores racing.
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServerHandle } from "@lanekeeper/harness";
import { laneRecord } from "@lanekeeper/testing";
import { LaneStoreConflictError } from "../observe/lane-store.js";
import { KvLaneStore, LANES_BUCKET, LaneStoreCorruptError } from "./kv-lane-store.js";

let nats: NatsServerHandle;
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
});
afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

const rec = laneRecord;

describe("KvLaneStore", () => {
  it("create, get, update with the revision read, delete with it; stale revisions conflict", async () => {
    const s = await KvLaneStore.open(nc.jetstream());
    const a = await s.create(rec("lane-a"));
    await expect(s.create(rec("lane-a"))).rejects.toBeInstanceOf(LaneStoreConflictError);
    expect(await s.get("lane-a")).toEqual(a);
    const b = await s.update({ ...a, state: "active", runnerId: 42 }, a.revision);
    expect(b.revision).toBeGreaterThan(a.revision);
    expect(await s.get("lane-a")).toMatchObject({ state: "active", runnerId: 42, revision: b.revision });
    await expect(s.update({ ...a, state: "draining" }, a.revision)).rejects.toBeInstanceOf(LaneStoreConflictError);
    await expect(s.delete("lane-a", a.revision)).rejects.toBeInstanceOf(LaneStoreConflictError);
    await s.delete("lane-a", b.revision);
    expect(await s.get("lane-a")).toBeUndefined();
    // A lane id can be recorded again after its record was deleted.
    const again = await s.create(rec("lane-a", { state: "orphaned" }));
    expect(await s.get("lane-a")).toEqual(again);
  });

  it("lists records sorted by lane id, skipping deleted ones", async () => {
    const s = await KvLaneStore.open(nc.jetstream());
    await s.create(rec("lane-c"));
    const d = await s.create(rec("lane-b"));
    await s.delete("lane-b", d.revision);
    expect((await s.list()).map((r) => r.laneId)).toEqual(["lane-a", "lane-c"]);
  });

  it("retires the id of every deleted record, durably (a reopened store sees it), outside the record list", async () => {
    const s = await KvLaneStore.open(nc.jetstream());
    const r = await s.create(rec("lane-r1"));
    await s.create(rec("lane-r2"));
    expect(await s.retiredLaneIds()).not.toContain("lane-r1");
    await s.delete("lane-r1", r.revision);
    const reopened = await KvLaneStore.open(nc.jetstream());
    const retired = await reopened.retiredLaneIds();
    expect(retired).toContain("lane-r1");
    expect(retired).not.toContain("lane-r2");
    expect([...retired]).toEqual([...retired].sort());
    const listed = (await reopened.list()).map((x) => x.laneId);
    expect(listed).toContain("lane-r2");
    expect(listed.some((id) => id.startsWith("retired") || id === "lane-r1")).toBe(false);
  });

  it("two stores racing on one record: exactly one update wins", async () => {
    const s1 = await KvLaneStore.open(nc.jetstream());
    const s2 = await KvLaneStore.open(nc.jetstream());
    const cur = (await s1.get("lane-c"))!;
    const results = await Promise.allSettled([s1.update({ ...cur, state: "removing" }, cur.revision), s2.update({ ...cur, state: "draining" }, cur.revision)]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const lost = results.flatMap((r): unknown[] => (r.status === "rejected" ? [r.reason] : []));
    expect(lost).toHaveLength(1);
    expect(lost[0]).toBeInstanceOf(LaneStoreConflictError);
  });

  it("a hand-edited entry that is not a record is refused, not trusted", async () => {
    const kv = await nc.jetstream().views.kv(LANES_BUCKET);
    await kv.put("lane-x", new TextEncoder().encode(JSON.stringify({ laneId: "lane-y", state: "active" })));
    const s = await KvLaneStore.open(nc.jetstream());
    await expect(s.get("lane-x")).rejects.toBeInstanceOf(LaneStoreCorruptError);
    await kv.put("lane-z", new TextEncoder().encode(JSON.stringify({ ...rec("lane-z"), healthRestartsAtMs: [1, "2"] })));
    await expect(s.get("lane-z")).rejects.toThrow(/healthRestartsAtMs/);
  });

  it("keeps a lane's health-restart times, so a new leader counts on", async () => {
    const s = await KvLaneStore.open(nc.jetstream());
    const a = await s.create(rec("lane-h", { state: "active", healthRestartsAtMs: [1000, 2000] }));
    expect((await KvLaneStore.open(nc.jetstream()).then((t) => t.get("lane-h")))?.healthRestartsAtMs).toEqual([1000, 2000]);
    await s.delete("lane-h", a.revision);
  });
});
