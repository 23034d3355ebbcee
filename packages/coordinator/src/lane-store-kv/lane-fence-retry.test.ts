// A fence read while the lane-record stream has no leader (its node just died: JetStream answers 503 or not at all
// for a few seconds) is retried within a bound instead of failing the action that asked (LANE_STORE_UNAVAILABLE,
// a recovery note for a transient blip); errors that are not transient, and a JetStream that stays away past the
// bound, still fail at once / then.
import type { JetStreamClient, KV, KvEntry } from "nats";
import { describe, expect, it } from "vitest";
import { FENCE_KEY, LaneFence } from "./lane-fence.js";

/** An error as nats.js raises it: a string code ("503", "TIMEOUT", "PERMISSIONS_VIOLATION"). */
function natsError(code: string): Error {
  return Object.assign(new Error(code), { code });
}

/** A lane-record bucket whose reads of the fence fail with `failures` (in order), then find `epoch`. */
function bucket(failures: Error[], epoch: number): { js: JetStreamClient; reads: () => number } {
  let reads = 0;
  const entry = { key: FENCE_KEY, operation: "PUT", revision: 3, value: new TextEncoder().encode(JSON.stringify({ epoch, lockRevision: 1, lock: "x" })) } as unknown as KvEntry;
  const kv = {
    get: (key: string): Promise<KvEntry> => {
      expect(key).toBe(FENCE_KEY);
      const f = failures[reads++];
      return f === undefined ? Promise.resolve(entry) : Promise.reject(f);
    },
  } as unknown as KV;
  const js = { views: { kv: () => Promise.resolve(kv) } } as unknown as JetStreamClient;
  return { js, reads: () => reads };
}

/** A clock that only moves when the fence sleeps. */
function fakeTime(): { now: () => number; sleep: (ms: number) => Promise<void>; slept: number[] } {
  let t = 1_000_000;
  const slept: number[] = [];
  return {
    now: () => t,
    sleep: (ms) => {
      slept.push(ms);
      t += ms;
      return Promise.resolve();
    },
    slept,
  };
}

describe("reading the fence while JetStream does not answer", () => {
  it("rides out 503s and timeouts during a stream leader election, with backoff", async () => {
    const b = bucket([natsError("503"), natsError("TIMEOUT"), natsError("503")], 7);
    const time = fakeTime();
    const fence = await LaneFence.open(b.js, "lk_lanes", { now: time.now, sleep: time.sleep, readRetryMs: 15_000 });
    expect(await fence.current()).toBe(7);
    expect(b.reads()).toBe(4);
    expect(time.slept).toEqual([250, 500, 1000]);
    // A process under an older epoch is still refused once the read gets through.
    await expect(fence.check("writing lane record x")).rejects.toMatchObject({ code: "FENCING_TOKEN_STALE" });
  });

  it("fails at once on an error that is not transient", async () => {
    const b = bucket([natsError("PERMISSIONS_VIOLATION")], 7);
    const time = fakeTime();
    const fence = await LaneFence.open(b.js, "lk_lanes", { now: time.now, sleep: time.sleep });
    await expect(fence.check("writing lane record x")).rejects.toMatchObject({ code: "LANE_STORE_UNAVAILABLE" });
    expect(b.reads()).toBe(1);
    expect(time.slept).toEqual([]);
  });

  it("gives up past its bound (LANE_STORE_UNAVAILABLE): a cluster without a majority is not waited for forever", async () => {
    const b = bucket(Array.from({ length: 50 }, () => natsError("503")), 7);
    const time = fakeTime();
    const fence = await LaneFence.open(b.js, "lk_lanes", { now: time.now, sleep: time.sleep, readRetryMs: 5_000 });
    await expect(fence.check("writing lane record x")).rejects.toMatchObject({ code: "LANE_STORE_UNAVAILABLE", message: "cannot read the fence of the lane store" });
    expect(time.slept.reduce((a, x) => a + x, 0)).toBeLessThanOrEqual(5_000);
    expect(b.reads()).toBeGreaterThan(2);
  });
});
