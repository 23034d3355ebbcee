// security-cases group 1 (replay) at the agent's intake, with the real file-backed replay store.
import { createHash } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { decodeEnvelope, RejectReason, ResultStatus } from "@lanekeeper/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ReplayStore } from "../../packages/agent/src/intake/replay-store.js";
import { FileStateStore } from "../../packages/agent/src/intake/state-store.js";
import { HOST, makeIntake, type IntakeFixture } from "./intake-fixture.js";

let fx: IntakeFixture;
beforeEach(async () => {
  fx = await makeIntake();
});
afterEach(async () => {
  await fx.close();
});

const stop = (laneId: string) => ({ $case: "stop" as const, value: { laneId, force: false } });

describe("replay", () => {
  it("the identical envelope twice executes once; the second delivery gets the cached signed result", async () => {
    const { bytes } = fx.create("lane-1");
    const first = await fx.send(bytes);
    expect(first.result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    const second = await fx.send(bytes);
    expect(Buffer.from(second.bytes).equals(Buffer.from(first.bytes))).toBe(true);
    expect(fx.executor.executeCalls).toHaveLength(1);
    expect(fx.outcomes.map((o) => o.duplicate)).toEqual([false, true]);
  });

  it("replay after an agent restart: cached result, no second execution", async () => {
    const { bytes } = fx.create("lane-1");
    const first = await fx.send(bytes);
    await fx.restart();
    const again = await fx.send(bytes);
    expect(Buffer.from(again.bytes).equals(Buffer.from(first.bytes))).toBe(true);
    expect(fx.executor.executeCalls).toHaveLength(1);
  });

  it("a lower sequence (out of order) is refused with SEQUENCE_TOO_LOW and not executed", async () => {
    fx.executor.setLane("lane-1", "owned", { scope: "acme/api", pool: "linux-x64", backend: 1 });
    const older = fx.intent(stop("lane-1"), { sequence: 5 });
    const newer = fx.intent(stop("lane-1"), { sequence: 6 });
    expect((await fx.send(newer.bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    const calls = fx.executor.calls.length;
    const r = (await fx.send(older.bytes)).result;
    expect(r).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.SEQUENCE_TOO_LOW });
    expect(fx.executor.calls.length).toBe(calls);
    expect(fx.executor.executeCalls).toHaveLength(1);
  });

  it("the same sequence in another intent is refused", async () => {
    fx.executor.setLane("lane-1", "owned", { scope: "acme/api", pool: "linux-x64", backend: 1 });
    await fx.send(fx.intent(stop("lane-1"), { sequence: 9 }).bytes);
    const r = (await fx.send(fx.intent(stop("lane-1"), { sequence: 9 }).bytes)).result;
    expect(r.reasonCode).toBe(RejectReason.SEQUENCE_TOO_LOW);
    expect(fx.executor.executeCalls).toHaveLength(1);
  });

  it("gaps are allowed: a lost intent does not block later ones", async () => {
    fx.executor.setLane("lane-1", "owned", { scope: "acme/api", pool: "linux-x64", backend: 1 });
    expect((await fx.send(fx.intent(stop("lane-1"), { sequence: 3 }).bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect((await fx.send(fx.intent(stop("lane-1"), { sequence: 300 }).bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
  });

  it("two concurrent deliveries of one intent: exactly one executes, both get the same signed result", async () => {
    const { bytes } = fx.create("lane-1");
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    fx.executor.onExecute = () => gate;
    const a = fx.send(bytes);
    const b = fx.send(bytes);
    const c = fx.send(bytes);
    release();
    const [ra, rb, rc] = await Promise.all([a, b, c]);
    expect(fx.executor.executeCalls).toHaveLength(1);
    expect(Buffer.from(rb.bytes).equals(Buffer.from(ra.bytes))).toBe(true);
    expect(Buffer.from(rc.bytes).equals(Buffer.from(ra.bytes))).toBe(true);
    expect(ra.result.status).toBe(ResultStatus.RESULT_STATUS_OK);
  });

  it("the high-water mark and intent id are on disk before the executor runs", async () => {
    const { bytes, intent } = fx.create("lane-1");
    let onDisk: { hwm: number; recent: readonly { intentId: string }[] } | undefined;
    fx.executor.onExecute = async () => {
      // What a crash right now would leave: the snapshot plus the journal, read the way a restart reads them.
      const loaded = await new FileStateStore(fx.dir, HOST).load();
      if (loaded.kind === "ok") onDisk = loaded.state;
    };
    await fx.send(bytes);
    expect(onDisk?.hwm).toBe(intent.sequence);
    expect(onDisk?.recent.map((e) => e.intentId)).toContain(intent.intentId);
  });

  it("crash after the reservation but before execution: the intent is dropped, never run after restart", async () => {
    const { bytes, intent } = fx.create("lane-1");
    // Reserve it the way the intake does, make it durable, then "crash" (never complete it).
    const res = fx.replay.check({
      intentId: intent.intentId,
      digest: createHash("sha256").update(decodeEnvelope("intent", bytes).payload).digest(),
      sequence: intent.sequence,
      issuedAtMs: intent.issuedAtMs,
      expiresAtMs: intent.expiresAtMs,
    });
    if (res.kind !== "fresh") throw new Error("expected fresh");
    await fx.replay.durable(res.reservation);
    await fx.restart();
    const r = (await fx.send(bytes)).result;
    expect(r).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.REPLAY });
    expect(r.message).toMatch(/outcome is unknown/);
    expect(fx.executor.executeCalls).toHaveLength(0);
  });

  it("state file deleted: an intent signed before the restart is refused by the floor rule (BEFORE_FLOOR)", async () => {
    const old = fx.create("lane-1");
    await fx.send(old.bytes);
    expect(fx.executor.executeCalls).toHaveLength(1);
    // A captured, still-valid intent with a sequence far above anything seen, signed before the restart.
    const captured = fx.create("lane-2", {}, { sequence: 1_000_000 });
    await fx.intake.close();
    await fx.replay.close();
    await rm(join(fx.dir, "replay-state.json"));
    fx.clock.advance(1_000);
    await fx.restart();
    expect(fx.replay.floor).toBe(fx.clock.now() + 30_000);
    for (const env of [old.bytes, captured.bytes]) {
      const r = (await fx.send(env)).result;
      expect(r).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.BEFORE_FLOOR });
    }
    // Within the skew after start, even a fresh intent is refused: clocks may disagree by up to the skew.
    expect((await fx.send(fx.create("lane-3").bytes)).result.reasonCode).toBe(RejectReason.BEFORE_FLOOR);
    expect(fx.executor.executeCalls).toHaveLength(1);
    // Once issued after start + skew, intents run again and the first accepted sequence becomes the hwm.
    fx.clock.advance(31_000);
    const fresh = fx.create("lane-4");
    expect((await fx.send(fresh.bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    const loaded = await new FileStateStore(fx.dir, HOST).load();
    expect(loaded.kind === "ok" && loaded.state.hwm).toBe(fresh.intent.sequence);
    expect(fx.executor.executeCalls).toHaveLength(2);
  });

  it("a corrupt journal line (not the torn last one) fails closed with the floor rule", async () => {
    const old = fx.create("lane-1");
    await fx.send(old.bytes);
    await fx.send(fx.create("lane-2").bytes);
    await fx.intake.close();
    await fx.replay.close();
    const path = join(fx.dir, "replay-state.journal");
    const lines = (await readFile(path, "utf8")).split("\n");
    lines[0] = lines[0]!.replace('"t":"r"', '"t":"x"');
    await writeFile(path, lines.join("\n"));
    await fx.restart();
    expect(fx.replay.stateLostReason).toMatch(/journal line 1/);
    expect((await fx.send(old.bytes)).result.reasonCode).toBe(RejectReason.BEFORE_FLOOR);
    expect(fx.executor.executeCalls).toHaveLength(2);
  });

  it("corrupt state file: fails closed with the floor rule", async () => {
    const old = fx.create("lane-1");
    await fx.send(old.bytes);
    await fx.intake.close();
    await fx.replay.close();
    await writeFile(join(fx.dir, "replay-state.json"), '{"formatVersion":1,"hostId":"build01","hwm":');
    await fx.restart();
    expect(fx.replay.stateLostReason).toMatch(/corrupt/);
    expect((await fx.send(old.bytes)).result.reasonCode).toBe(RejectReason.BEFORE_FLOOR);
    expect(fx.executor.executeCalls).toHaveLength(1);
  });

  it("a snapshot rolled back to an older copy does not lower the mark while the journal holds it", async () => {
    const a = fx.create("lane-1");
    const first = await fx.send(a.bytes);
    await fx.intake.close();
    await fx.replay.close();
    const path = join(fx.dir, "replay-state.json");
    const state = JSON.parse(await readFile(path, "utf8"));
    await writeFile(path, JSON.stringify({ ...state, hwm: 0, recent: [] }));
    const reopened = await ReplayStore.open(new FileStateStore(fx.dir, HOST), { hostId: HOST, clock: fx.clock });
    expect(reopened.hwm).toBe(a.intent.sequence);
    await reopened.close();
    await fx.restart();
    expect(Buffer.from((await fx.send(a.bytes)).bytes).equals(Buffer.from(first.bytes))).toBe(true);
    expect(fx.executor.executeCalls).toHaveLength(1);
  });

  it("a state whose entries lie above its hwm is corrupt: fails closed with the floor rule", async () => {
    const a = fx.create("lane-1");
    await fx.send(a.bytes);
    await fx.intake.close();
    await fx.replay.close();
    await rm(join(fx.dir, "replay-state.journal"), { force: true });
    const path = join(fx.dir, "replay-state.json");
    const state = JSON.parse(await readFile(path, "utf8"));
    await writeFile(path, JSON.stringify({ ...state, hwm: 0, recent: [{ intentId: a.intent.intentId, digest: "0".repeat(64), seq: 5, expiresAt: 1 }] }));
    await fx.restart();
    expect(fx.replay.stateLostReason).toMatch(/above hwm/);
    expect((await fx.send(a.bytes)).result.reasonCode).toBe(RejectReason.BEFORE_FLOOR);
    expect(fx.executor.executeCalls).toHaveLength(1);
  });

  it("an intent id reused with other content is refused as REPLAY", async () => {
    fx.executor.setLane("lane-1", "owned", { scope: "acme/api", pool: "linux-x64", backend: 1 });
    const a = fx.intent(stop("lane-1"));
    await fx.send(a.bytes);
    const b = fx.intent(stop("lane-1"), { intentId: a.intent.intentId });
    expect((await fx.send(b.bytes)).result.reasonCode).toBe(RejectReason.REPLAY);
    expect(fx.executor.executeCalls).toHaveLength(1);
  });
});
