// The Dispatcher's per-host send pipeline against a real nats-server and a real agent Intake: intents to one
// host that are waiting together go out as one batch (one fencing check and one sequence allocation, a single
// compare-and-set on lk_sequences, instead of one each), still in sequence order on the wire (the agent refuses
// anything below its high-water mark), and an intent never waits for another intent's reply.
import { ResultStatus } from "@lanekeeper/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RecordingExecutor } from "@lanekeeper/testing";
import { Dispatcher, type IntentFence } from "../../packages/coordinator/src/dispatch/dispatcher.js";
import { FencingTokenStaleError } from "../../packages/coordinator/src/lane-store-kv/lane-fence.js";
import { startIntentsWorld, type IntentsWorld } from "./intents-fixture.js";

const A = "build01";
let world: IntentsWorld;

beforeAll(async () => {
  // Block 1: without batching every intent is its own compare-and-set.
  world = await startIntentsWorld({ hostIds: [A], requestTimeoutMs: 10_000, sequenceBlock: 1 });
  const rec = world.agent(A).executor as RecordingExecutor;
  for (let i = 0; i < 64; i++) rec.setLane(`lane-${i}`, "owned", { scope: "acme/api", pool: "linux-x64", backend: 1 });
});
afterAll(async () => {
  await world?.close();
});

const rec = (): RecordingExecutor => world.agent(A).executor as RecordingExecutor;

/** Writes to the host's key in lk_sequences so far (its KV revision counts every write in the bucket). */
async function sequenceWrites(): Promise<number> {
  const kv = await world.coord.jetstream().views.kv("lk_sequences", { bindOnly: true });
  return (await kv.get(A))?.revision ?? 0;
}

/** A fence that counts its checks and can be made to refuse. */
function countingFence(): IntentFence & { checks: number; stale: boolean } {
  const f = {
    token: 7,
    checks: 0,
    stale: false,
    async check(what: string): Promise<void> {
      f.checks++;
      await new Promise((r) => setTimeout(r, 2)); // a KV read's worth
      if (f.stale) throw new FencingTokenStaleError(7, 8, what);
    },
  };
  return f;
}

function dispatcher(fence: IntentFence): Dispatcher {
  return new Dispatcher({ nc: world.coord, signingKey: world.coordinatorKey, sequences: world.sequences, hosts: world.hosts, requestTimeoutMs: 10_000, fence });
}

describe("pipelined dispatch to one host", () => {
  it("64 intents sent at once: all run, in sequence order, with one fencing check and one sequence write per batch", async () => {
    const fence = countingFence();
    const d = dispatcher(fence);
    const writesBefore = await sequenceWrites();
    const executedBefore = rec().executeCalls.length;
    const outs = await Promise.all(Array.from({ length: 64 }, (_, i) => d.dispatch({ hostId: A, action: { kind: "stop", laneId: `lane-${i}` } })));
    // Every one ran: none arrived below the agent's high-water mark (publication order is sequence order).
    expect(outs.map((o) => o.result.status)).toEqual(outs.map(() => ResultStatus.RESULT_STATUS_OK));
    expect(rec().executeCalls.length - executedBefore).toBe(64);
    const seqs = outs.map((o) => o.sequence);
    expect(new Set(seqs).size).toBe(64);
    // Asked for in this order, sent in this order.
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    // The batch shares its fencing check and its sequence allocation (64 each without batching).
    expect(fence.checks).toBeLessThanOrEqual(4);
    expect((await sequenceWrites()) - writesBefore).toBeLessThanOrEqual(4);
    expect(await world.sequences.current(A)).toBe(Math.max(...seqs));
    // Every intent carried the fencing token.
    expect(world.agent(A).replay.fence).toBe(7);
  });

  it("a stale fence refuses the whole batch before anything is sent", async () => {
    const fence = countingFence();
    fence.stale = true;
    const d = dispatcher(fence);
    const executedBefore = rec().executeCalls.length;
    const hwmBefore = world.agent(A).replay.hwm;
    const errs = await Promise.all(
      Array.from({ length: 8 }, (_, i) => d.dispatch({ hostId: A, action: { kind: "stop", laneId: `lane-${i}` } }).then(() => undefined, (e: unknown) => e)),
    );
    for (const e of errs) expect((e as { code?: string }).code).toBe("FENCING_TOKEN_STALE");
    expect(rec().executeCalls.length).toBe(executedBefore);
    expect(world.agent(A).replay.hwm).toBe(hwmBefore);
  });

  it("an intent does not wait for another intent's reply", async () => {
    const d = dispatcher(countingFence());
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    rec().onExecute = async (action) => {
      if (action.laneId === "lane-0") await gate;
    };
    try {
      const slow = d.dispatch({ hostId: A, action: { kind: "stop", laneId: "lane-0" } });
      // lane-0's intent is executing (its reply is outstanding); the next intents go out and come back.
      for (let i = 1; i <= 3; i++) {
        const fast = await d.dispatch({ hostId: A, action: { kind: "stop", laneId: `lane-${i}` } });
        expect(fast.result.status).toBe(ResultStatus.RESULT_STATUS_OK);
      }
      release();
      expect((await slow).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    } finally {
      rec().onExecute = undefined;
      release();
    }
  });
});
