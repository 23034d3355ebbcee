// A lane-record write JetStream does not answer (503 or a timeout while the lane-record stream elects a leader) may
// have taken effect: the store reads the entry back and counts it done, refused or worth another try, instead of
// failing the action (LANE_STORE_UNAVAILABLE) for a blip, and never lets two writes both take effect.
import type { JetStreamClient, KV, KvEntry } from "nats";
import { describe, expect, it } from "vitest";
import { laneRecord } from "@lanekeeper/testing";
import { LaneStoreConflictError } from "../observe/lane-store.js";
import { KvLaneStore } from "./kv-lane-store.js";

/** An error as nats.js raises it: a string code ("503", "TIMEOUT", "PERMISSIONS_VIOLATION"). */
function natsError(code: string): Error {
  return Object.assign(new Error(code), { code });
}

/** What the next write does: land and answer, land and lose the answer, or fail without landing. */
type Outcome = "ok" | "lost" | "refused" | Error;

/** An in-memory KV bucket of one stream whose writes follow `outcomes` (then "ok"); `meddle` runs before each read-back. */
function bucket(outcomes: Outcome[], meddle: () => void = () => undefined) {
  const entries = new Map<string, KvEntry>();
  let seq = 0;
  const writes: string[] = [];
  const put = (key: string, value: Uint8Array | undefined): number => {
    seq++;
    entries.set(key, { key, value: value ?? new Uint8Array(), revision: seq, operation: value === undefined ? "DEL" : "PUT" } as unknown as KvEntry);
    return seq;
  };
  const cas = (key: string, expected: number | null, value: Uint8Array | undefined): Promise<number> => {
    writes.push(key);
    const o = outcomes.shift() ?? "ok";
    if (o instanceof Error) return Promise.reject(o);
    if (o === "refused") return Promise.reject(natsError("503"));
    const cur = entries.get(key);
    const at = cur === undefined || cur.operation !== "PUT" ? null : cur.revision;
    if (at !== expected) return Promise.reject(Object.assign(new Error("wrong last sequence"), { api_error: { code: 400, err_code: 10071 } }));
    const rev = put(key, value);
    return o === "lost" ? Promise.reject(natsError("TIMEOUT")) : Promise.resolve(rev);
  };
  const kv = {
    create: (k: string, v: Uint8Array) => cas(k, null, v),
    update: (k: string, v: Uint8Array, rev: number) => cas(k, rev, v),
    delete: async (k: string, o: { previousSeq: number }) => void (await cas(k, o.previousSeq, undefined)),
    put: (k: string, v: Uint8Array) => Promise.resolve(put(k, v)),
    get: (k: string) => {
      meddle();
      return Promise.resolve(entries.get(k) ?? null);
    },
  } as unknown as KV;
  const js = { views: { kv: () => Promise.resolve(kv) } } as unknown as JetStreamClient;
  return { js, writes, other: (key: string) => put(key, new TextEncoder().encode("{}")) };
}

const noWait = { now: () => 0, sleep: () => Promise.resolve() };

describe("lane-record writes while JetStream does not answer", () => {
  it("a create or update whose answer was lost but which took effect counts as done: no second write", async () => {
    const b = bucket(["lost", "lost"]);
    const s = await KvLaneStore.open(b.js, noWait);
    const created = await s.create(laneRecord("lane-a"));
    const updated = await s.update({ ...created, state: "active" }, created.revision);
    expect(updated.revision).toBeGreaterThan(created.revision);
    expect(await s.get("lane-a")).toMatchObject({ state: "active", revision: updated.revision });
    expect(b.writes).toEqual(["lane-a", "lane-a"]);
  });

  it("a write refused for want of an answer is tried again, and a delete whose answer was lost is done", async () => {
    const b = bucket(["refused", "refused", "ok", "refused", "ok", "lost"]);
    const s = await KvLaneStore.open(b.js, noWait);
    const created = await s.create(laneRecord("lane-b"));
    const updated = await s.update({ ...created, state: "active" }, created.revision);
    await s.delete("lane-b", updated.revision);
    expect(await s.get("lane-b")).toBeUndefined();
    expect(b.writes).toHaveLength(6);
  });

  it("another writer moving the record on while the answer was lost is a conflict, not a retry over it", async () => {
    let meddled = false;
    const b = bucket(["ok", "refused"], () => {
      if (!meddled) b.other("lane-c");
      meddled = true;
    });
    const s = await KvLaneStore.open(b.js, noWait);
    const created = await s.create(laneRecord("lane-c"));
    await expect(s.update({ ...created, state: "draining" }, created.revision)).rejects.toBeInstanceOf(LaneStoreConflictError);
    expect(b.writes).toHaveLength(2);
  });

  it("an error that is not transient fails at once; JetStream away past the bound fails with LANE_STORE_UNAVAILABLE", async () => {
    const denied = bucket([natsError("PERMISSIONS_VIOLATION")]);
    await expect((await KvLaneStore.open(denied.js, noWait)).create(laneRecord("lane-d"))).rejects.toMatchObject({ code: "LANE_STORE_UNAVAILABLE" });
    expect(denied.writes).toHaveLength(1);

    let t = 0;
    const away = bucket(Array.from({ length: 100 }, (): Outcome => "refused"));
    const s = await KvLaneStore.open(away.js, { writeRetryMs: 5_000, now: () => t, sleep: (ms) => Promise.resolve(void (t += ms)) });
    await expect(s.create(laneRecord("lane-e"))).rejects.toMatchObject({ code: "LANE_STORE_UNAVAILABLE", message: "cannot write lane record lane-e" });
    expect(t).toBeLessThanOrEqual(5_000);
    expect(away.writes.length).toBeGreaterThan(2);
  });
});
