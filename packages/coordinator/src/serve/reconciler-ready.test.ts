import { describe, expect, it } from "vitest";
import { Reconciler, type ReconcilerOptions } from "./reconciler.js";

/** A context whose every read counts: a cycle that acts observes the lane store first. */
function countingCtx(): { ctx: ReconcilerOptions["ctx"]; reads: () => number } {
  let reads = 0;
  const ctx = {
    policy: { coordinator: { reconcileIntervalMs: 45_000 } },
    store: {
      list: () => {
        reads++;
        return Promise.reject(new Error("stop here"));
      },
    },
  } as unknown as ReconcilerOptions["ctx"];
  return { ctx, reads: () => reads };
}

describe("Reconciler ready gate (NATS trouble)", () => {
  it("a cycle whose gate says no (NATS down, or a view from before it) does not observe, plan or act", async () => {
    const { ctx, reads } = countingCtx();
    let ready = false;
    const r = new Reconciler({ ctx, ready: () => Promise.resolve(ready) });
    const first = await r.cycle();
    expect(first.leader).toBe(false);
    expect(reads()).toBe(0);
    ready = true;
    const second = await r.cycle();
    expect(second.leader).toBe(true);
    expect(reads()).toBe(1);
  });
});
