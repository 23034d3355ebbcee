// Signed intents end to end over a real nats-server with JetStream: the coordinator's Dispatcher (durable
// per-host sequence in the lk_sequences KV bucket, sealing, signing, result verification) talks to real
// in-process agent Intakes on their own NATS logins. The lane runtime is the RecordingExecutor here (the real
// LaneManager is exercised in intents-lane-manager.test.ts when a runtime is available).
import { RejectReason, ResultStatus, signInventory, InventorySnapshot } from "@lanekeeper/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RecordingExecutor } from "@lanekeeper/testing";
import { DispatchError, isRemoveDone } from "../../packages/coordinator/src/dispatch/dispatcher.js";
import { buildSignedIntent } from "../../packages/coordinator/src/dispatch/intent-builder.js";
import { waitUntil } from "../harness/src/process-util.js";
import { laneSpec, startIntentsWorld, type IntentsWorld } from "./intents-fixture.js";

const A = "build01";
const B = "build02";
let world: IntentsWorld;

beforeAll(async () => {
  world = await startIntentsWorld({ hostIds: [A, B], requestTimeoutMs: 5_000 });
});
afterAll(async () => {
  await world?.close();
});

const rec = (host: string): RecordingExecutor => world.agent(host).executor as RecordingExecutor;
const token = (): Buffer => Buffer.from(`REG-${Math.random().toString(36).slice(2)}`);

describe("signed intents over NATS", () => {
  it("create, drain, stop, start, restart, hold, release, remove: each a verified signed result", async () => {
    const d = world.dispatcher;
    const seqs: number[] = [];
    const run = async (action: Parameters<typeof d.dispatch>[0]["action"]) => {
      const out = await d.dispatch({ hostId: A, action, operationId: "op-e2e" });
      seqs.push(out.sequence);
      return out.result;
    };
    expect((await run({ kind: "create", spec: laneSpec("lane-1", A), registration: token() })).status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect((await run({ kind: "drain", laneId: "lane-1" })).observed?.draining).toBe(true);
    expect((await run({ kind: "stop", laneId: "lane-1" })).status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect((await run({ kind: "start", laneId: "lane-1" })).status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect((await run({ kind: "restart", laneId: "lane-1" })).status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect((await run({ kind: "hold", laneId: "lane-1", reason: "maintenance" })).observed?.held).toBe(true);
    const held = await run({ kind: "stop", laneId: "lane-1" });
    expect(held).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.LANE_HELD });
    expect((await run({ kind: "release", laneId: "lane-1" })).status).toBe(ResultStatus.RESULT_STATUS_OK);
    const removed = await run({ kind: "remove", laneId: "lane-1", removeToken: token() });
    expect(isRemoveDone(removed)).toBe(true);
    // A second remove (a re-issue after a lost reply) reads as done too.
    expect(isRemoveDone(await run({ kind: "remove", laneId: "lane-1" }))).toBe(true);

    expect(rec(A).executeCalls.map((c) => c.kind)).toEqual(["create", "drain", "stop", "start", "restart", "hold", "release", "remove"]);
    // The registration and remove tokens were opened by the agent (sealed to it, bound to each intent id).
    expect(rec(A).executeCalls[0]!.secretBytes).toBeGreaterThan(0);
    expect(rec(A).executeCalls[7]!.secretBytes).toBeGreaterThan(0);
    // Sequences strictly increase and the durable KV value is the last one handed out.
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(await world.sequences.current(A)).toBe(seqs.at(-1));
    expect(rec(B).executeCalls).toEqual([]);
  });

  it("each host has its own sequence", async () => {
    const before = await world.sequences.current(B);
    await world.dispatcher.dispatch({ hostId: B, action: { kind: "create", spec: laneSpec("lane-b1", B), registration: token() } });
    expect(await world.sequences.current(B)).toBe(before + 1);
  });

  it("the same envelope delivered twice executes once and both replies are the same signed bytes", async () => {
    const host = world.hosts.host(A)!;
    const built = buildSignedIntent({
      hostId: A,
      hostSealingKey: host.sealingKey,
      sequence: await world.sequences.next(A),
      action: { kind: "create", spec: laneSpec("lane-dup", A), registration: token() },
      signingKey: world.coordinatorKey,
      nowMs: Date.now(),
    });
    const before = rec(A).executeCalls.length;
    const [r1, r2] = await Promise.all([
      world.coord.request(`lk.v1.intent.${A}`, built.envelope, { timeout: 5_000 }),
      world.coord.request(`lk.v1.intent.${A}`, built.envelope, { timeout: 5_000 }),
    ]);
    expect(Buffer.from(r1.data).equals(Buffer.from(r2.data))).toBe(true);
    expect(rec(A).executeCalls.length).toBe(before + 1);
  });

  it("a timed-out create is re-issued as a NEW intent (new id, new sequence) and runs once (idempotent by lane id)", async () => {
    const ex = rec(A);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    ex.onExecute = (action) => (action.kind === "create" && action.laneId === "lane-slow" ? gate : undefined);
    const before = ex.executeCalls.length;
    const seqBefore = await world.sequences.current(A);
    const pending = world.dispatcher.dispatch({
      hostId: A,
      action: { kind: "create", spec: laneSpec("lane-slow", A), registration: token() },
      timeoutMs: 300,
      attempts: 10,
    });
    pending.catch(() => undefined);
    // The first attempt is stuck in the executor; wait until the dispatcher has re-issued (a second sequence).
    await waitUntil(async () => ((await world.sequences.current(A)) >= seqBefore + 2 ? true : undefined), {
      timeoutMs: 10_000,
      what: "a re-issued intent",
    });
    release();
    const out = await pending;
    ex.onExecute = undefined;
    expect(out.intentIds.length).toBeGreaterThanOrEqual(2);
    expect(new Set(out.intentIds).size).toBe(out.intentIds.length);
    expect(out.result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect(ex.executeCalls.length).toBe(before + 1);
  });

  it("a timed-out restart is not re-issued (not idempotent): the caller gets DISPATCH_TIMEOUT with one intent", async () => {
    const ex = rec(A);
    await world.dispatcher.dispatch({ hostId: A, action: { kind: "create", spec: laneSpec("lane-r", A), registration: token() } });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    ex.onExecute = (action) => (action.kind === "restart" ? gate : undefined);
    const err = await world.dispatcher.dispatch({ hostId: A, action: { kind: "restart", laneId: "lane-r" }, timeoutMs: 300 }).catch((e: unknown) => e);
    release();
    ex.onExecute = undefined;
    expect(err).toBeInstanceOf(DispatchError);
    expect((err as DispatchError).code).toBe("DISPATCH_TIMEOUT");
    expect((err as DispatchError).details?.intentIds).toHaveLength(1);
  });

  it("a host whose agent is down: every attempt is a new intent, none runs, the caller gets a typed error", async () => {
    const b = world.agent(B);
    await b.stop();
    const calls = rec(B).calls.length;
    try {
      const err = await world.dispatcher
        .dispatch({ hostId: B, action: { kind: "start", laneId: "lane-b1" }, attempts: 2, timeoutMs: 300 })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DispatchError);
      // Across the agents account import, nats-server 2.9 reports no "no responders": it is a timeout.
      expect(["DISPATCH_TIMEOUT", "DISPATCH_NO_RESPONDERS"]).toContain((err as DispatchError).code);
      const ids = (err as DispatchError).details?.intentIds as string[];
      expect(ids).toHaveLength(2);
      expect(new Set(ids).size).toBe(2);
    } finally {
      await b.restart();
    }
    expect(rec(B).calls.length).toBe(calls);
  });

  it("agent restart: later intents continue above the persisted high-water mark; a captured envelope replays the cached result", async () => {
    const host = world.hosts.host(A)!;
    const captured = buildSignedIntent({
      hostId: A,
      hostSealingKey: host.sealingKey,
      sequence: await world.sequences.next(A),
      action: { kind: "hold", laneId: "lane-dup", reason: "captured" },
      signingKey: world.coordinatorKey,
      nowMs: Date.now(),
    });
    const first = await world.coord.request(`lk.v1.intent.${A}`, captured.envelope, { timeout: 5_000 });
    const agent = world.agent(A);
    const hwm = agent.replay.hwm;
    await agent.restart();
    expect(agent.replay.hwm).toBe(hwm);
    const calls = rec(A).executeCalls.length;
    const again = await world.coord.request(`lk.v1.intent.${A}`, captured.envelope, { timeout: 5_000 });
    expect(Buffer.from(again.data).equals(Buffer.from(first.data))).toBe(true);
    expect(rec(A).executeCalls.length).toBe(calls);
    const out = await world.dispatcher.dispatch({ hostId: A, action: { kind: "release", laneId: "lane-dup" } });
    expect(out.result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect(out.sequence).toBeGreaterThan(hwm);
  });

  it("a sequence store behind the agent is fast-forwarded from the agent's signed inventory", async () => {
    const agent = world.agent(A);
    // The agent's high-water mark jumps (e.g. the coordinator's KV was restored from an old backup).
    await agent.replay.raiseHwm((await world.sequences.current(A)) + 50);
    await agent.inventory.publishNow();
    await waitUntil(async () => ((await world.collector.agentHwm(A)) === agent.replay.hwm ? true : undefined), {
      timeoutMs: 10_000,
      what: "inventory with the raised hwm",
    });
    const out = await world.dispatcher.dispatch({ hostId: A, action: { kind: "start", laneId: "lane-dup" } });
    expect(out.result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect(out.intentIds).toHaveLength(2);
    expect(out.sequence).toBeGreaterThan(agent.replay.hwm - 1);
  });
});

describe("inventory over NATS", () => {
  it("the coordinator keeps each host's last verified snapshot in JetStream KV", async () => {
    const agent = world.agent(B);
    await agent.inventory.publishNow();
    const stored = await waitUntil(async () => (await world.collector.latest(B)) ?? undefined, { timeoutMs: 10_000, what: "B's inventory" });
    expect(stored.snapshot.hostId).toBe(B);
    expect(stored.snapshot.intentHwm).toBe(agent.replay.hwm);
    expect(stored.snapshot.keysetVersion).toBe(1);
    expect(stored.snapshot.lanes.map((l) => l.laneId)).toContain("lane-b1");
  });

  it("an older snapshot (replayed or reordered) is refused; a stale one too", async () => {
    const agent = world.agent(B);
    const older = await agent.inventory.publishNow();
    const newer = await agent.inventory.publishNow();
    await waitUntil(async () => {
      const s = await world.collector.latest(B);
      return s !== undefined && Buffer.from(s.envelope).equals(Buffer.from(newer)) ? true : undefined;
    }, { timeoutMs: 10_000, what: "newest snapshot stored" });
    await expect(world.collector.ingest(`lk.v1.inventory.${B}`, older)).rejects.toMatchObject({ reason: RejectReason.SEQUENCE_TOO_LOW });
    // The very snapshot stored (a second collector got it too) is no conflict; another body under its number is.
    expect((await world.collector.ingest(`lk.v1.inventory.${B}`, newer)).snapshot.snapshotSeq).toBeGreaterThan(0);
    const stored = await world.collector.latest(B);
    const sameSeq = signInventory(InventorySnapshot.fromPartial({ ...stored?.snapshot, takenAtMs: Date.now() + 1 }), agent.identityKey);
    await expect(world.collector.ingest(`lk.v1.inventory.${B}`, sameSeq)).rejects.toMatchObject({ reason: RejectReason.SEQUENCE_TOO_LOW });
    const stale = signInventory(
      InventorySnapshot.fromPartial({ hostId: B, snapshotSeq: Date.now() * 2, takenAtMs: Date.now() - 10 * 60_000 }),
      agent.identityKey,
    );
    await expect(world.collector.ingest(`lk.v1.inventory.${B}`, stale)).rejects.toMatchObject({ reason: RejectReason.EXPIRED });
  });

  it("a snapshot claiming another host, or on another host's subject, is refused", async () => {
    const a = world.agent(A);
    const claimsB = signInventory(InventorySnapshot.fromPartial({ hostId: B, snapshotSeq: Date.now() * 2, takenAtMs: Date.now() }), a.identityKey);
    await expect(world.collector.ingest(`lk.v1.inventory.${A}`, claimsB)).rejects.toMatchObject({ reason: RejectReason.ISSUER_MISMATCH });
    const ownOnB = signInventory(InventorySnapshot.fromPartial({ hostId: A, snapshotSeq: Date.now() * 2, takenAtMs: Date.now() }), a.identityKey);
    await expect(world.collector.ingest(`lk.v1.inventory.${B}`, ownOnB)).rejects.toMatchObject({ reason: RejectReason.SUBJECT_MISMATCH });
  });
});
