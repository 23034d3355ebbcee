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

  it("lists from a watched copy: another store's writes and deletes show at once, per host too, and a list reads no record by itself", async () => {
    const bucket = "lk_lanes_mirror";
    const reader = await KvLaneStore.open(nc.jetstream(), { bucket });
    const writer = await KvLaneStore.open(nc.jetstream(), { bucket });
    expect(await reader.list()).toEqual([]);
    const written = [];
    for (let i = 0; i < 120; i++) written.push(await writer.create(rec(`lane-m${String(i).padStart(3, "0")}`, { hostId: i % 2 === 0 ? "host-even" : "host-odd" })));
    expect((await reader.list()).map((r) => r.laneId)).toEqual(written.map((r) => r.laneId));
    expect((await reader.listHost("host-odd")).map((r) => r.laneId)).toEqual(written.filter((_, i) => i % 2 === 1).map((r) => r.laneId));
    const first = written[0]!;
    const moved = await writer.update({ ...first, state: "active", runnerId: 7 }, first.revision);
    await writer.delete("lane-m001", written[1]!.revision);
    const list = await reader.list();
    expect(list.find((r) => r.laneId === first.laneId)).toEqual(moved);
    expect(list.map((r) => r.laneId)).not.toContain("lane-m001");
    expect(await reader.listHost("host-odd")).not.toContainEqual(expect.objectContaining({ laneId: "lane-m001" }));
    expect(await reader.retiredLaneIds()).toEqual(["lane-m001"]);
    // A warm list costs a stream-info request, not one request per record (120 here, 20,000 in a fleet).
    const before = nc.stats().outMsgs;
    expect(await reader.list()).toHaveLength(119);
    expect(nc.stats().outMsgs - before).toBeLessThan(5);
  });

  it("a list with a corrupt entry throws its decode error, as reading the entry does", async () => {
    const bucket = "lk_lanes_mirror_corrupt";
    const s = await KvLaneStore.open(nc.jetstream(), { bucket });
    await s.create(rec("lane-ok"));
    expect(await s.list()).toHaveLength(1);
    const kv = await nc.jetstream().views.kv(bucket);
    await kv.put("lane-bad", new TextEncoder().encode(JSON.stringify({ laneId: "lane-other", state: "active" })));
    await expect(s.list()).rejects.toBeInstanceOf(LaneStoreCorruptError);
    await kv.delete("lane-bad");
    expect((await s.list()).map((r) => r.laneId)).toEqual(["lane-ok"]);
  });
});
