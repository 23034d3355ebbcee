import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { DemandJob } from "../observe/demand.js";
import { mergeDemandJob } from "./demand-job-merge.js";
import { MemoryJobStore } from "./memory-job-store.js";

const base: DemandJob = { id: 1, runId: 9, scope: "acme/api", repository: "acme/api", labels: ["linux"], status: "queued", createdAtMs: 1000, source: "webhook" };
const queued = base;
const running: DemandJob = { ...base, status: "in_progress", runnerName: "lk-a", startedAtMs: 4000, source: "rest" };
const done: DemandJob = { ...base, status: "completed", runnerName: "lk-a", startedAtMs: 4000, completedAtMs: 9000 };
const RANK = { queued: 0, in_progress: 1, completed: 2 } as const;

describe("mergeDemandJob: a job's state only moves forward", () => {
  it("first sight is stored as is; later states replace earlier ones", () => {
    expect(mergeDemandJob(undefined, queued)).toEqual(queued);
    expect(mergeDemandJob(queued, running)).toMatchObject({ status: "in_progress", runnerName: "lk-a", startedAtMs: 4000 });
    expect(mergeDemandJob(running, done)).toMatchObject({ status: "completed", completedAtMs: 9000 });
  });

  it("a late queued never overwrites in_progress or completed; a late in_progress never overwrites completed", () => {
    expect(mergeDemandJob(running, queued)).toBeUndefined();
    expect(mergeDemandJob(done, queued)).toBeUndefined();
    expect(mergeDemandJob(done, running)).toBeUndefined();
  });

  it("the same state again changes nothing, unless it fills in what was missing", () => {
    expect(mergeDemandJob(queued, { ...queued, source: "rest" })).toBeUndefined();
    const bare: DemandJob = { ...running, runnerName: undefined, startedAtMs: undefined };
    expect(mergeDemandJob(bare, running)).toMatchObject({ runnerName: "lk-a", startedAtMs: 4000, source: "rest" });
  });

  it("a completion seen without its start keeps the start known before (queue wait stays measurable)", () => {
    expect(mergeDemandJob(running, { ...done, startedAtMs: undefined, runnerName: undefined })).toMatchObject({ startedAtMs: 4000, runnerName: "lk-a" });
  });

  it("property: whatever order observations arrive in, the store ends at the latest state and never went back", async () => {
    const obs = fc.constantFrom(queued, running, done);
    await fc.assert(
      fc.asyncProperty(fc.array(obs, { minLength: 1, maxLength: 12 }), async (seq) => {
        const store = new MemoryJobStore();
        let prev = -1;
        for (const o of seq) {
          await store.record(o);
          const now = RANK[(await store.get(1))?.status ?? "queued"];
          expect(now).toBeGreaterThanOrEqual(prev);
          prev = now;
        }
        const last = Math.max(...seq.map((o) => RANK[o.status]));
        expect(RANK[(await store.get(1))?.status ?? "queued"]).toBe(last);
      }),
    );
  });

  it("prune forgets completed jobs past the window only", async () => {
    const store = new MemoryJobStore();
    await store.record(done);
    await store.record({ ...running, id: 2 });
    expect(await store.prune(9000)).toBe(0);
    expect(await store.prune(9001)).toBe(1);
    expect((await store.list()).map((j) => j.id)).toEqual([2]);
  });
});
