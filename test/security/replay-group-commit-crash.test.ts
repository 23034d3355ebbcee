// security-cases group 1 (replay) and DESIGN invariant 4 (an intent is executed at most once) under the replay
// store's group commit: several intents that arrive together share one journal write and one fdatasync. The agent
// dies (no flush, no further I/O) either between that write and its fsync, or right after the fsync and before
// any of the intents ran. Whatever the disk kept, no intent runs twice, none runs before the fsync that covers
// it, and none is answered OK by the process that died.
import { appendFile, stat, truncate } from "node:fs/promises";
import { RejectReason, ResultStatus } from "@lanekeeper/shared";
import { afterEach, describe, expect, it } from "vitest";
import type { FileStateStore, JournaledStateStore, LoadedReplayState, ReplayState } from "../../packages/agent/src/intake/state-store.js";
import { makeIntake, type Answer, type IntakeFixture } from "./intake-fixture.js";

/** How the agent process dies at its next journal write. */
type Death = "none" | "before-fsync" | "after-fsync";

/**
 * The real file-backed store with a process death injected at the next journal append. A dead process does no
 * further I/O and never gets a completion back, so nothing waiting on the write runs on.
 */
class DyingStore implements JournaledStateStore {
  death: Death = "none";
  dead = false;
  /** Journal bytes known to be on disk (fsynced): what a power cut leaves. */
  syncedJournalBytes = 0;
  /** Lines of the write the process died in. */
  dyingWrite = "";
  private died!: () => void;
  /** Resolves when the process has died. */
  readonly death$ = new Promise<void>((resolve) => {
    this.died = resolve;
  });

  constructor(readonly file: FileStateStore) {}

  load(): Promise<LoadedReplayState> {
    return this.file.load();
  }

  async save(state: ReplayState): Promise<void> {
    if (this.dead) return hang();
    await this.file.save(state);
    this.syncedJournalBytes = 0;
  }

  async writeSnapshot(text: string): Promise<void> {
    if (this.dead) return hang();
    await this.file.writeSnapshot(text);
    this.syncedJournalBytes = 0;
  }

  async appendJournal(lines: string): Promise<void> {
    if (this.dead) return hang();
    switch (this.death) {
      case "none":
        await this.file.appendJournal(lines);
        this.syncedJournalBytes = (await stat(this.file.journalPath)).size;
        return;
      case "before-fsync":
        // The bytes reach the page cache; the fdatasync never happens.
        await appendFile(this.file.journalPath, lines);
        return this.die(lines);
      case "after-fsync":
        await this.file.appendJournal(lines);
        this.syncedJournalBytes = (await stat(this.file.journalPath)).size;
        return this.die(lines);
    }
  }

  private async die(lines: string): Promise<void> {
    this.dead = true;
    this.dyingWrite = lines;
    await this.file.unlock(); // the kernel closes a dead process's files
    this.died();
    return hang();
  }
}

function hang(): Promise<never> {
  return new Promise<never>(() => undefined);
}

let fx: IntakeFixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

const stop = (laneId: string) => ({ $case: "stop" as const, value: { laneId, force: false } });

async function setup(): Promise<{ fx: IntakeFixture; stores: DyingStore[] }> {
  const stores: DyingStore[] = [];
  fx = await makeIntake({
    stateStore: (file) => {
      const s = new DyingStore(file);
      stores.push(s);
      return s;
    },
  });
  for (const lane of ["lane-1", "lane-2", "lane-3", "lane-4", "lane-5"]) {
    fx.executor.setLane(lane, "owned", { scope: "acme/api", pool: "linux-x64", backend: 1 });
  }
  return { fx, stores };
}

/** Execute calls per intent id. */
function executions(f: IntakeFixture): Map<string, number> {
  const m = new Map<string, number>();
  for (const c of f.executor.executeCalls) m.set(c.intentId ?? "", (m.get(c.intentId ?? "") ?? 0) + 1);
  return m;
}

describe("replay state group commit: a crash between the journal write and its fsync", () => {
  for (const disk of ["lost", "kept"] as const) {
    it(`no intent of the group ran or was answered before the fsync; after restart none runs twice (unsynced record ${disk})`, async () => {
      const { fx: f, stores } = await setup();
      // Two intents durably accepted and run before the fault (the first write is a snapshot, the second a journal line).
      const a = f.intent(stop("lane-1"));
      const b = f.intent(stop("lane-2"));
      expect((await f.send(a.bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
      expect((await f.send(b.bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
      expect(executions(f).get(b.intent.intentId)).toBe(1);

      // Three intents arrive together: one group, one write. The agent dies before that write's fsync.
      const store = stores[0]!;
      store.death = "before-fsync";
      const group = [f.intent(stop("lane-3")), f.intent(stop("lane-4")), f.intent(stop("lane-5"))];
      const answered: Answer[] = [];
      for (const g of group) void f.send(g.bytes).then((r) => answered.push(r));
      await store.death$;
      await new Promise((r) => setTimeout(r, 100));
      // The write covered all three (the group commit), and none of them ran or got an answer.
      for (const g of group) expect(store.dyingWrite).toContain(g.intent.intentId);
      for (const g of group) expect(executions(f).has(g.intent.intentId)).toBe(false);
      expect(answered).toEqual([]);

      await f.crashAndRestart(async () => {
        // A power cut loses what was never fsynced; a plain kill -9 leaves it in the page cache, hence on disk.
        if (disk === "lost") await truncate(stores[0]!.file.journalPath, stores[0]!.syncedJournalBytes);
      });
      expect(f.replay.stateLostReason).toBeUndefined();

      // The coordinator (or an attacker) re-delivers everything, twice.
      const before = executions(f);
      for (let round = 0; round < 2; round++) {
        for (const x of [a, b, ...group]) {
          const r = (await f.send(x.bytes)).result;
          expect([ResultStatus.RESULT_STATUS_OK, ResultStatus.RESULT_STATUS_REJECTED]).toContain(r.status);
        }
      }
      const after = executions(f);
      // Run before the crash: never again.
      expect(after.get(a.intent.intentId)).toBe(1);
      expect(after.get(b.intent.intentId)).toBe(1);
      for (const g of group) {
        expect(before.has(g.intent.intentId)).toBe(false);
        // At most once in all: a lost record means the intent never ran, so it may run now, once; a kept record
        // means it was accepted before the crash and is refused now (outcome unknown), never run.
        expect(after.get(g.intent.intentId) ?? 0).toBe(disk === "lost" ? 1 : 0);
      }
      if (disk === "kept") {
        const r = (await f.send(group[0]!.bytes)).result;
        expect(r).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.REPLAY });
      }
      // The high-water mark covers everything accepted: an older sequence stays refused.
      const old = f.intent(stop("lane-1"), { sequence: group[2]!.intent.sequence });
      expect((await f.send(old.bytes)).result.reasonCode).toBe(RejectReason.SEQUENCE_TOO_LOW);
    });
  }

  it("a crash after the fsync and before execution drops the group: after restart re-deliveries are refused, not run", async () => {
    const { fx: f, stores } = await setup();
    const a = f.intent(stop("lane-1"));
    expect((await f.send(a.bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    const store = stores[0]!;
    store.death = "after-fsync";
    const group = [f.intent(stop("lane-2")), f.intent(stop("lane-3")), f.intent(stop("lane-4"))];
    const answered: Answer[] = [];
    for (const g of group) void f.send(g.bytes).then((r) => answered.push(r));
    await store.death$;
    await new Promise((r) => setTimeout(r, 100));
    for (const g of group) expect(executions(f).has(g.intent.intentId)).toBe(false);
    expect(answered).toEqual([]);

    await f.crashAndRestart();
    for (const g of group) {
      const r = (await f.send(g.bytes)).result;
      expect(r).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.REPLAY });
    }
    for (const g of group) expect(executions(f).has(g.intent.intentId)).toBe(false);
    // The next new intent runs: the coordinator re-issues under a new sequence.
    expect((await f.send(f.intent(stop("lane-2")).bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
  });
});
