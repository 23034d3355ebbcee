// Fencing against a real nats-server with JetStream: the leader lock's epoch (the revision it was taken at, kept
// across renewals, higher for every later leader), the fence in the lane-record bucket that a new leader raises,
// lane-record writes and intents of a superseded process refused with FENCING_TOKEN_STALE (nothing written,
// nothing sent), records stamped with the writer's token, and a CLI process acting under the current leader's
// epoch.
import { generateSealingKey, generateSigningKey, LanekeeperError } from "@lanekeeper/shared";
import { startNatsServer, type NatsServerHandle } from "@lanekeeper/harness";
import { laneRecord } from "@lanekeeper/testing";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Dispatcher } from "../dispatch/dispatcher.js";
import { StaticHostRegistry } from "../dispatch/host-registry.js";
import { KvSequenceAllocator } from "../dispatch/sequence-allocator.js";
import { LeaderLock } from "../serve/leader-lock.js";
import { Reconciler } from "../serve/reconciler.js";
import { KvLaneStore, LANES_BUCKET } from "./kv-lane-store.js";
import { FENCE_KEY, FencingTokenStaleError, LaneFence } from "./lane-fence.js";

let nats: NatsServerHandle;
/** Two coordinator processes, each with its own connection. */
let ncA: NatsConnection;
let ncB: NatsConnection;

beforeAll(async () => {
  nats = await startNatsServer();
  ncA = await connect({ servers: nats.url });
  ncB = await connect({ servers: nats.url });
});
afterAll(async () => {
  await ncA?.close();
  await ncB?.close();
  await nats?.stop();
});

async function openStore(nc: NatsConnection): Promise<{ store: KvLaneStore; fence: LaneFence }> {
  const store = await KvLaneStore.open(nc.jetstream());
  const fence = await LaneFence.open(nc.jetstream(), LANES_BUCKET);
  store.attachFence(fence);
  return { store, fence };
}

function code(err: unknown): string | undefined {
  return err instanceof LanekeeperError ? err.code : undefined;
}

describe("fencing", () => {
  it("a hold of the leader lock is the revision it was taken at: kept by renewals, higher for the next holder", async () => {
    const bucket = "lk_leader_epoch_test";
    const a = await LeaderLock.open(ncA.jetstream(), { ttlMs: 1_000, instance: "a", bucket });
    const b = await LeaderLock.open(ncB.jetstream(), { ttlMs: 1_000, instance: "b", bucket });
    expect(await a.ensure()).toBe(true);
    const holdA = a.hold!;
    expect(holdA.revision).toBeGreaterThan(0);
    expect(await a.ensure()).toBe(true); // a renewal: new revision, same hold
    expect(a.hold).toEqual(holdA);
    expect(await b.ensure()).toBe(false);
    expect(b.hold).toBeUndefined();
    // a freezes: it stops renewing; once its entry aged out, b takes over with a later hold of the same bucket.
    await new Promise((r) => setTimeout(r, 1_600));
    expect(await b.ensure()).toBe(true);
    expect(b.hold!.revision).toBeGreaterThan(holdA.revision);
    expect(b.hold!.incarnation).toBe(holdA.incarnation);
    // a wakes up: its renewal fails, it holds nothing.
    expect(await a.ensure()).toBe(false);
    expect(a.hold).toBeUndefined();
    await b.stop();
  }, 20_000);

  it("each hold moves the fence to a higher epoch; a stale hold cannot take it back; a new lock bucket can", async () => {
    const A = await openStore(ncA);
    const B = await openStore(ncB);
    const base = await A.fence.current();
    const e1 = await A.fence.lead({ revision: 5, incarnation: "lock-1" });
    expect(e1).toBeGreaterThan(base);
    expect(e1).toBeGreaterThanOrEqual(Date.now() - 60_000); // at least the clock: above what agents saw before a store loss
    expect(await A.fence.lead({ revision: 5, incarnation: "lock-1" })).toBe(e1); // the same hold again: the same epoch
    const e2 = await B.fence.lead({ revision: 9, incarnation: "lock-1" });
    expect(e2).toBeGreaterThan(e1);
    // The process that held revision 5 and was paused cannot take the fence back.
    expect(code(await A.fence.lead({ revision: 5, incarnation: "lock-1" }).catch((e: unknown) => e))).toBe("FENCING_TOKEN_STALE");
    expect(code(await A.fence.lead({ revision: 7, incarnation: "lock-1" }).catch((e: unknown) => e))).toBe("FENCING_TOKEN_STALE");
    expect(await A.fence.current()).toBe(e2);
    // The lock bucket was re-created (revisions start again): its first holder still gets a higher epoch.
    const e3 = await A.fence.lead({ revision: 1, incarnation: "lock-2" });
    expect(e3).toBeGreaterThan(e2);
    // A CLI command acts under the current epoch.
    const C = await openStore(ncB);
    await C.fence.follow();
    expect(C.fence.token).toBe(e3);
  });

  it("a superseded leader's lane-record writes are refused and change nothing; records carry the writer's token", async () => {
    const A = await openStore(ncA);
    const B = await openStore(ncB);
    const eA = await A.fence.lead({ revision: 100, incarnation: "lock-w" });
    const created = await A.store.create(laneRecord("lane-fenced", { state: "active" }));
    expect(created.fencingToken).toBe(eA);
    expect((await B.store.get("lane-fenced"))?.fencingToken).toBe(eA);

    // B takes over (a later hold) and moves the fence before it acts.
    const eB = await B.fence.lead({ revision: 140, incarnation: "lock-w", instance: "b" });
    const kv = await ncB.jetstream().views.kv(LANES_BUCKET);
    expect(JSON.parse(new TextDecoder().decode((await kv.get(FENCE_KEY))!.value))).toEqual({ epoch: eB, lockRevision: 140, lock: "lock-w", instance: "b" });

    // A resumes with the record it read before it was paused: every kind of write is refused.
    const update = await A.store.update({ ...created, state: "draining" }, created.revision).catch((e: unknown) => e);
    expect(update).toBeInstanceOf(FencingTokenStaleError);
    expect(code(update)).toBe("FENCING_TOKEN_STALE");
    expect((update as Error).message).toContain(`fencing token ${eA}`);
    expect(code(await A.store.create(laneRecord("lane-fenced-2")).catch((e: unknown) => e))).toBe("FENCING_TOKEN_STALE");
    expect(code(await A.store.delete("lane-fenced", created.revision).catch((e: unknown) => e))).toBe("FENCING_TOKEN_STALE");
    expect(await B.store.get("lane-fenced")).toEqual(created);
    expect(await B.store.get("lane-fenced-2")).toBeUndefined();
    expect(await B.store.retiredLaneIds()).not.toContain("lane-fenced");

    // B writes under its own token; the fence key is no lane record.
    const moved = await B.store.update({ ...created, state: "draining" }, created.revision);
    expect(moved.fencingToken).toBe(eB);
    expect((await B.store.list()).map((r) => r.laneId)).toEqual(["lane-fenced"]);

    expect(await A.fence.current()).toBe(eB);
  });

  it("a superseded coordinator sends no intent: the dispatcher checks the fence before allocating a sequence", async () => {
    const A = await openStore(ncA);
    await A.fence.follow();
    const hostId = "build01";
    const sealing = generateSealingKey();
    const sequences = await KvSequenceAllocator.open(ncA.jetstream(), { bucket: "lk_sequences_fence_test" });
    const dispatcher = new Dispatcher({
      nc: ncA,
      signingKey: generateSigningKey(),
      sequences,
      hosts: new StaticHostRegistry([{ hostId, identityKey: generateSigningKey().publicKey, sealingKey: sealing.publicKey }]),
      fence: A.fence,
      requestTimeoutMs: 500,
    });
    let received = 0;
    const sub = ncB.subscribe(`lk.v1.intent.${hostId}`, { callback: () => void received++ });
    await ncB.flush();
    // Another coordinator takes the lead above A's token.
    const B = await openStore(ncB);
    await B.fence.lead({ revision: 1_000, incarnation: "lock-d" });
    const err = await dispatcher.dispatch({ hostId, action: { kind: "stop", laneId: "lane-x" } }).catch((e: unknown) => e);
    expect(code(err)).toBe("FENCING_TOKEN_STALE");
    await ncA.flush();
    await new Promise((r) => setTimeout(r, 100));
    expect(received).toBe(0);
    expect(await sequences.current(hostId)).toBe(0);
    sub.unsubscribe();
  });

  it("serve moves the fence for its hold before it acts as leader, and does not act when a later hold has it", async () => {
    const bucket = "lk_leader_reconciler_test";
    const A = await openStore(ncA);
    await A.fence.follow();
    const before = A.fence.token;
    const lock = await LeaderLock.open(ncA.jetstream(), { ttlMs: 5_000, instance: "a", bucket });
    // Only the leadership part of a cycle matters here; observing then fails on the empty context, which a cycle
    // reports as an error.
    const ctx = { policy: { coordinator: { reconcileIntervalMs: 60_000 } } } as never;
    const first = await new Reconciler({ ctx, lock, fence: A.fence }).cycle();
    expect(first.leader).toBe(true);
    expect(A.fence.token).toBeGreaterThan(before);
    expect(await A.fence.current()).toBe(A.fence.token);
    const hold = lock.hold!;
    await lock.stop();

    // A later hold of the same lock (another process) took the fence; this process's cycle with its old hold
    // must not act.
    const B = await openStore(ncB);
    await B.fence.lead({ revision: hold.revision + 10, incarnation: hold.incarnation });
    const stale = { ensure: () => Promise.resolve(true), hold } as unknown as LeaderLock;
    const A2 = await openStore(ncA);
    const second = await new Reconciler({ ctx, lock: stale, fence: A2.fence }).cycle();
    expect(second).toMatchObject({ leader: false });
  });
});
