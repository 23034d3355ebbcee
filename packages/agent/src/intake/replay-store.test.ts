import { constants as fsConstants } from "node:fs";
import { mkdtemp, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FakeClock, RejectReason } from "@lanekeeper/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { INSTANCE_LOCK_FILE, InstanceLock } from "../instance-lock.js";
import { ReplayStore } from "./replay-store.js";
import { FileStateStore, MemoryStateStore } from "./state-store.js";

const HOST = "build01";
let dir: string;
let clock: FakeClock;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "lk-replay-"));
  clock = new FakeClock();
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function intent(seq: number, id = seq.toString(16).padStart(32, "0"), digestByte = seq % 256) {
  return {
    intentId: id,
    digest: Buffer.alloc(32, digestByte),
    sequence: seq,
    issuedAtMs: clock.now(),
    expiresAtMs: clock.now() + 60_000,
  };
}

async function openFresh(): Promise<{ store: FileStateStore; rs: ReplayStore }> {
  const store = new FileStateStore(dir, HOST);
  await store.initialize();
  return { store, rs: await ReplayStore.open(store, { hostId: HOST, clock }) };
}

describe("ReplayStore", () => {
  it("fencing: refuses a token below the highest accepted, and keeps that mark in snapshots and the journal", async () => {
    const mem = new MemoryStateStore();
    await mem.save({ formatVersion: 1, hostId: HOST, hwm: 0, keysetVersion: 0, recent: [] });
    const rs = await ReplayStore.open(mem, { hostId: HOST, clock });
    const a = rs.check({ ...intent(1), fencingToken: 5 });
    expect(a.kind).toBe("fresh");
    if (a.kind === "fresh") await rs.durable(a.reservation);
    // A snapshot store sees the mark with the reservation's write, before the intent could run.
    expect(mem.state?.fence).toBe(5);
    const stale = rs.check({ ...intent(2), fencingToken: 4 });
    expect(stale).toMatchObject({ kind: "reject", reason: RejectReason.FENCING_TOKEN_STALE });
    // The refused sequence was not consumed: the same sequence with a current token is fresh.
    expect(rs.check({ ...intent(2), fencingToken: 5 }).kind).toBe("fresh");
    await rs.close();

    const { store, rs: file } = await openFresh();
    const f = file.check({ ...intent(1), fencingToken: 9 });
    if (f.kind === "fresh") await file.durable(f.reservation);
    await file.close();
    const reopened = await ReplayStore.open(store, { hostId: HOST, clock });
    expect(reopened.fence).toBe(9);
    expect(reopened.check({ ...intent(2), fencingToken: 8 })).toMatchObject({ kind: "reject", reason: RejectReason.FENCING_TOKEN_STALE });
    await reopened.close();
  });

  it("accepts increasing sequences with gaps and refuses lower or equal ones", async () => {
    const { rs } = await openFresh();
    expect(rs.check(intent(1)).kind).toBe("fresh");
    expect(rs.check(intent(5)).kind).toBe("fresh");
    const low = rs.check(intent(3));
    expect(low).toMatchObject({ kind: "reject", reason: RejectReason.SEQUENCE_TOO_LOW });
    const same = rs.check(intent(5, "f".repeat(32)));
    expect(same).toMatchObject({ kind: "reject", reason: RejectReason.SEQUENCE_TOO_LOW });
    await rs.close();
  });

  it("answers an exact duplicate with the recorded result, and refuses an id reused with other content", async () => {
    const { rs } = await openFresh();
    const first = rs.check(intent(7));
    if (first.kind !== "fresh") throw new Error("expected fresh");
    const dup = rs.check(intent(7));
    expect(dup.kind).toBe("duplicate");
    rs.complete(first.reservation, new Uint8Array([1, 2, 3]));
    if (dup.kind === "duplicate") expect(await dup.result).toEqual(new Uint8Array([1, 2, 3]));
    const other = rs.check(intent(8, intent(7).intentId, 99));
    expect(other).toMatchObject({ kind: "reject", reason: RejectReason.REPLAY });
    await rs.close();
  });

  it("persists the reservation before durable() resolves, and survives a restart", async () => {
    const { store, rs } = await openFresh();
    const c = rs.check(intent(42));
    if (c.kind !== "fresh") throw new Error("expected fresh");
    await rs.durable(c.reservation);
    const onDisk = JSON.parse(await readFile(store.path, "utf8"));
    expect(onDisk.hwm).toBe(42);
    expect(onDisk.recent.map((e: { intentId: string }) => e.intentId)).toEqual([intent(42).intentId]);
    rs.complete(c.reservation, new Uint8Array([9]));
    await rs.close();

    const again = await ReplayStore.open(new FileStateStore(dir, HOST), { hostId: HOST, clock });
    expect(again.hwm).toBe(42);
    expect(again.floor).toBeUndefined();
    const dup = again.check(intent(42));
    expect(dup.kind).toBe("duplicate");
    if (dup.kind === "duplicate") expect(await dup.result).toEqual(new Uint8Array([9]));
    expect(again.check(intent(41, "a".repeat(32)))).toMatchObject({ reason: RejectReason.SEQUENCE_TOO_LOW });
    await again.close();
  });

  it("group-commits: many reservations share few writes, each durable before it resolves", async () => {
    const mem = new MemoryStateStore();
    mem.state = { formatVersion: 1, hostId: HOST, hwm: 0, keysetVersion: 0, recent: [] };
    const rs = await ReplayStore.open(mem, { hostId: HOST, clock });
    const waits: Promise<void>[] = [];
    for (let s = 1; s <= 50; s++) {
      const c = rs.check(intent(s));
      if (c.kind !== "fresh") throw new Error("expected fresh");
      waits.push(rs.durable(c.reservation).then(() => expect(mem.state!.hwm).toBeGreaterThanOrEqual(s)));
    }
    await Promise.all(waits);
    expect(mem.saves).toBeLessThan(50);
    await rs.close();
  });

  it("fails the waiting reservation when the state cannot be written", async () => {
    const mem = new MemoryStateStore();
    mem.state = { formatVersion: 1, hostId: HOST, hwm: 0, keysetVersion: 0, recent: [] };
    const rs = await ReplayStore.open(mem, { hostId: HOST, clock });
    mem.failSaves = true;
    const c = rs.check(intent(1));
    if (c.kind !== "fresh") throw new Error("expected fresh");
    await expect(rs.durable(c.reservation)).rejects.toThrow(/save failed/);
    // The sequence stays consumed in memory: failing closed never lowers the mark.
    expect(rs.check(intent(1, "b".repeat(32)))).toMatchObject({ reason: RejectReason.SEQUENCE_TOO_LOW });
    mem.failSaves = false;
    await rs.close();
  });

  it.each([
    ["missing", (): Promise<void> => Promise.resolve()],
    ["garbage", async (): Promise<void> => writeFile(join(dir, "replay-state.json"), "{not json")],
    [
      "another host",
      async (): Promise<void> =>
        writeFile(join(dir, "replay-state.json"), JSON.stringify({ formatVersion: 1, hostId: "other", hwm: 9, keysetVersion: 0, recent: [] })),
    ],
    [
      "prototype pollution",
      async (): Promise<void> =>
        writeFile(
          join(dir, "replay-state.json"),
          '{"formatVersion":1,"hostId":"build01","hwm":9,"keysetVersion":0,"recent":[],"__proto__":{"x":1}}',
        ),
    ],
    [
      "entry above hwm",
      async (): Promise<void> =>
        writeFile(
          join(dir, "replay-state.json"),
          JSON.stringify({
            formatVersion: 1,
            hostId: HOST,
            hwm: 1,
            keysetVersion: 0,
            recent: [{ intentId: "a".repeat(32), digest: "b".repeat(64), seq: 5, expiresAt: 1 }],
          }),
        ),
    ],
  ])("state %s: floor rule, then the first accepted sequence is persisted", async (_name, prepare) => {
    await prepare();
    const start = clock.now();
    const store = new FileStateStore(dir, HOST);
    const rs = await ReplayStore.open(store, { hostId: HOST, clock, skewMs: 30_000, processStartMs: start });
    expect(rs.floor).toBe(start + 30_000);
    expect(rs.stateLostReason).toBeDefined();
    // Issued before start + skew: refused whatever its sequence.
    expect(rs.check({ ...intent(1_000_000), issuedAtMs: start + 30_000 })).toMatchObject({ reason: RejectReason.BEFORE_FLOOR });
    clock.advance(31_000);
    const ok = rs.check(intent(17));
    if (ok.kind !== "fresh") throw new Error("expected fresh");
    await rs.durable(ok.reservation);
    expect(JSON.parse(await readFile(store.path, "utf8")).hwm).toBe(17);
    await rs.close();
  });

  it("refuses everything with STATE_LOST when configured to", async () => {
    const rs = await ReplayStore.open(new FileStateStore(dir, HOST), { hostId: HOST, clock, onStateLost: "refuse" });
    clock.advance(3_600_000);
    expect(rs.check(intent(1))).toMatchObject({ reason: RejectReason.STATE_LOST });
    await rs.close();
  });

  it("prunes expired entries and caps the cache", async () => {
    const mem = new MemoryStateStore();
    mem.state = { formatVersion: 1, hostId: HOST, hwm: 0, keysetVersion: 0, recent: [] };
    const rs = await ReplayStore.open(mem, { hostId: HOST, clock, maxRecent: 3, skewMs: 0 });
    for (let s = 1; s <= 5; s++) {
      const c = rs.check(intent(s));
      if (c.kind !== "fresh") throw new Error("expected fresh");
      rs.complete(c.reservation, new Uint8Array([s]));
    }
    await rs.flush();
    expect(mem.state.recent.map((e) => e.seq)).toEqual([3, 4, 5]);
    clock.advance(61_000);
    await rs.raiseHwm(100);
    expect(mem.state.recent).toEqual([]);
    expect(mem.state.hwm).toBe(100);
    await rs.close();
  });

  it("refuses a second store on the same directory while the lock is held", async () => {
    const a = new FileStateStore(dir, HOST);
    await a.lock();
    await expect(new FileStateStore(dir, HOST).lock()).rejects.toMatchObject({ code: "AGENT_LOCKED" });
    await a.unlock();
    const b = new FileStateStore(dir, HOST);
    await b.lock();
    await b.unlock();
  });

  it("uses the agent's one instance lock: refused while the daemon holds it, no second lock file when handed in", async () => {
    const daemonLock = await InstanceLock.acquire(dir);
    // A store that locks on its own conflicts with the daemon's lock: they are the same lock.
    await expect(new FileStateStore(dir, HOST).lock()).rejects.toMatchObject({ code: "AGENT_LOCKED" });
    const store = new FileStateStore(dir, HOST, { instanceLock: daemonLock });
    await store.lock();
    await store.initialize();
    expect((await readdir(dir)).filter((f) => f.endsWith(".lock"))).toEqual([INSTANCE_LOCK_FILE]);
    // Unlocking the store leaves the lock with its owner.
    await store.unlock();
    await expect(InstanceLock.acquire(dir)).rejects.toMatchObject({ code: "AGENT_LOCKED" });
    await daemonLock.release();
    // A released lock or one on another directory is no lock.
    await expect(new FileStateStore(dir, HOST, { instanceLock: daemonLock }).lock()).rejects.toMatchObject({ code: "STATE_STORE_FAILED" });
    const elsewhere = await InstanceLock.acquire(join(dir, "other"));
    await expect(new FileStateStore(dir, HOST, { instanceLock: elsewhere }).lock()).rejects.toMatchObject({ code: "STATE_STORE_FAILED" });
    await elsewhere.release();
  });

  it("journal: changes go to the journal between snapshots; loading applies it; a torn last line is dropped", async () => {
    const { store, rs } = await openFresh();
    for (let s = 1; s <= 3; s++) {
      const c = rs.check(intent(s));
      if (c.kind !== "fresh") throw new Error("expected fresh");
      await rs.durable(c.reservation);
      rs.complete(c.reservation, new Uint8Array([s]));
    }
    await rs.close();
    const snapshot = JSON.parse(await readFile(store.path, "utf8"));
    expect(snapshot.hwm).toBeLessThan(3);
    const journal = await readFile(store.journalPath, "utf8");
    expect(journal.split("\n").filter(Boolean).length).toBeGreaterThan(0);
    // A crash in the middle of an append leaves a partial last line: it was never acknowledged.
    await writeFile(store.journalPath, `${journal}{"t":"r","i":"${"e".repeat(32)}","d":"`);
    const loaded = await new FileStateStore(dir, HOST).load();
    expect(loaded.kind).toBe("ok");
    if (loaded.kind === "ok") {
      expect(loaded.state.hwm).toBe(3);
      expect(loaded.state.recent.map((e) => [e.seq, e.resultEnvelope])).toEqual([
        [1, Buffer.from([1]).toString("base64")],
        [2, Buffer.from([2]).toString("base64")],
        [3, Buffer.from([3]).toString("base64")],
      ]);
    }
  });

  it("journal: a full snapshot replaces it after journalMaxLines, and loading gives the same state", async () => {
    const store = new FileStateStore(dir, HOST);
    await store.initialize();
    const rs = await ReplayStore.open(store, { hostId: HOST, clock, journalMaxLines: 5 });
    for (let s = 1; s <= 12; s++) {
      const c = rs.check(intent(s));
      if (c.kind !== "fresh") throw new Error("expected fresh");
      await rs.durable(c.reservation);
      rs.complete(c.reservation, new Uint8Array([s]));
    }
    await rs.close();
    const snapshot = JSON.parse(await readFile(store.path, "utf8"));
    expect(snapshot.hwm).toBeGreaterThanOrEqual(8);
    expect((await readFile(store.journalPath, "utf8")).split("\n").filter(Boolean).length).toBeLessThanOrEqual(5);
    const loaded = await new FileStateStore(dir, HOST).load();
    expect(loaded.kind === "ok" && loaded.state.hwm).toBe(12);
    expect(loaded.kind === "ok" && loaded.state.recent.length).toBe(12);
  });

  it("journal: appended through a synchronized (O_DSYNC) descriptor, so an append returns only once it is on disk", async () => {
    const { store, rs } = await openFresh();
    for (let s = 1; s <= 2; s++) {
      const c = rs.check(intent(s));
      if (c.kind !== "fresh") throw new Error("expected fresh");
      await rs.durable(c.reservation); // the first write is a snapshot, the second a journal append
    }
    // Linux shows each open descriptor's flags (octal) in /proc/self/fdinfo.
    let flags: number | undefined;
    for (const fd of await readdir("/proc/self/fd")) {
      const target = await readlink(`/proc/self/fd/${fd}`).catch(() => "");
      if (target !== store.journalPath) continue;
      const info = await readFile(`/proc/self/fdinfo/${fd}`, "utf8").catch(() => "");
      const m = /^flags:\s+([0-7]+)$/m.exec(info);
      if (m !== null) flags = parseInt(m[1]!, 8);
    }
    expect(flags).toBeDefined();
    expect(flags! & fsConstants.O_DSYNC).toBe(fsConstants.O_DSYNC);
    expect(flags! & fsConstants.O_APPEND).toBe(fsConstants.O_APPEND);
    await rs.close();
    await store.unlock();
  });
});
