// In-place runner upgrade, crash safety: the agent "dies" (its crash hook never settles) right after each journaled
// step of an upgrade, or the on-disk state a crash leaves is built by hand, and a fresh agent's recovery must leave
// the lane's runner files matching the version its lane.json names, the lane running again, the journal empty and
// the recovery audited. Real files (the swap is the real LaneDirectories code) on the in-memory runtime.
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Backend, FakeClock, generateSigningKey, identityLabels, LaneMode, LaneState as LS, type LaneSpec, type RunnerDownload } from "@lanekeeper/shared";
import type { AuditEntryInput, AuditSink } from "../audit-sink.js";
import type { HealthPolicy } from "./health-policy.js";
import { LaneDirectories, type SwapStep } from "./lane-directory.js";
import { LaneManager } from "./lane-manager.js";
import { MarkerSigner } from "./lane-marker.js";
import { LaneStateStore } from "./lane-state.js";
import { MemoryProcessTable } from "../runtimes/memory-processes.js";
import { MemoryRuntime, type MemoryRuntimeOptions } from "../runtimes/memory-runtime.js";
import type { RuntimeLane } from "../runtimes/lane-runtime.js";
import { OperationJournal, type UpgradeStep } from "./operation-journal.js";

const HOST = "h1";
const HEALTH: HealthPolicy = { maxRestarts: 3, windowMs: 60_000, backoffBaseMs: 1_000, backoffMaxMs: 4_000 };
const FROM = "2.330.0";
const TO = "2.331.0";
const UID = process.getuid?.() ?? 0;
const GID = process.getgid?.() ?? 0;

/** The memory runtime plus a real runner swap over `<distRoot>/<version>/` (what the systemd runtime does). */
class SwappingRuntime extends MemoryRuntime {
  /** Throws once at this swap step (a failure inside a live agent, not a crash). */
  failAt: SwapStep | undefined;

  constructor(
    opts: MemoryRuntimeOptions,
    private readonly laneDirs: LaneDirectories,
    private readonly distRoot: string,
  ) {
    super(opts);
  }

  async swapRunner(lane: RuntimeLane, version: string, _download: RunnerDownload | undefined, onStep?: (step: SwapStep) => Promise<void>): Promise<void> {
    await this.laneDirs.swapRunner(lane.record.laneId, join(this.distRoot, version), UID, GID, async (step) => {
      await onStep?.(step);
      if (step === this.failAt) {
        this.failAt = undefined;
        throw new Error(`injected failure after ${step}`);
      }
    });
  }
}

let root: string;
let clock: FakeClock;
let processes: MemoryProcessTable;
let dirs: LaneDirectories;
let rt: SwappingRuntime;
let stateDir: string;
let audit: AuditEntryInput[];

function agent(crashAt?: string): { manager: LaneManager; crashed: Promise<void> } {
  let signal = (): void => undefined;
  const crashed = new Promise<void>((r) => (signal = r));
  const journal = new OperationJournal(stateDir, (op, step) => {
    if (`${op}:${step}` !== crashAt) return;
    signal();
    // The process is gone: nothing after this step ever runs.
    return new Promise<void>(() => undefined);
  });
  const sink: AuditSink = { append: (e) => Promise.resolve(void audit.push(e)) };
  const manager = new LaneManager({ hostId: HOST, stateDir, dirs, runtimes: { systemd: rt }, audit: sink, health: HEALTH, clock, journal, processes });
  return { manager, crashed };
}

const spec = (laneId: string): LaneSpec => ({
  laneId,
  scope: "acme/api",
  pool: "p1",
  backend: Backend.BACKEND_SYSTEMD,
  mode: LaneMode.LANE_MODE_PERSISTENT,
  labels: [...identityLabels({ laneId, hostId: HOST, pool: "p1" }), "linux"],
  runnerGroup: "",
  githubUrl: "https://github.com/acme/api",
  runnerVersion: FROM,
  image: "",
  limits: { cpuMillis: 0, memoryBytes: 0 },
  runnerDownload: undefined,
});

/** A runner release whose files say which version they are. */
async function release(version: string): Promise<void> {
  const d = join(root, "dist", version);
  await mkdir(join(d, "bin"), { recursive: true });
  await writeFile(join(d, "run.sh"), "#!/bin/sh\n", { mode: 0o755 });
  await writeFile(join(d, "bin", "VERSION"), version);
  await writeFile(join(d, ".runner"), "release files never replace the lane's registration");
}

/** A running, drained lane on FROM with its own copy of the runner and its registration in it. */
async function drainedLane(manager: LaneManager, laneId: string): Promise<void> {
  await manager.create({ spec: spec(laneId), registrationToken: Buffer.from("AABBCCDDEEFF0011") });
  await dirs.copyRunner(laneId, join(root, "dist", FROM), UID, GID);
  await writeFile(join(dirs.runnerDir(laneId), ".runner"), `{"agentName":"${laneId}"}`);
  await manager.drain({ laneId });
}

/** Which version the lane's runner files are, and what else sits beside `runner/`. */
async function onDisk(laneId: string): Promise<{ files: string | undefined; version: string; spare: string[]; registration: string | undefined }> {
  const files = await readFile(join(dirs.runnerDir(laneId), "bin", "VERSION"), "utf8").catch(() => undefined);
  const registration = await readFile(join(dirs.runnerDir(laneId), ".runner"), "utf8").catch(() => undefined);
  const spare = (await readdir(dirs.dir(laneId))).filter((n) => n.startsWith("runner.") && n !== "runner.log");
  return { files, version: (await dirs.read(laneId)).runnerVersion, spare, registration };
}

const stateOf = async (laneId: string) => new LaneStateStore(stateDir).get(laneId);
const pending = async () => new OperationJournal(stateDir).pending();
const upgradeReq = (laneId: string, runnerVersion = TO) => ({ laneId, runnerVersion, operationId: `op-${laneId}` });

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-lane-upgrade-"));
  clock = new FakeClock();
  processes = new MemoryProcessTable();
  dirs = new LaneDirectories(join(root, "lanes"), new MarkerSigner(HOST, generateSigningKey()));
  rt = new SwappingRuntime({ clock, processes, dirs }, dirs, join(root, "dist"));
  stateDir = join(root, "state");
  audit = [];
  await release(FROM);
  await release(TO);
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("upgrade", () => {
  it("swaps the files, keeps the registration, re-signs lane.json, leaves nothing beside runner/ and starts the lane again", async () => {
    const { manager } = agent();
    await drainedLane(manager, "l1");
    const obs = await manager.upgrade(upgradeReq("l1"));
    expect(obs).toMatchObject({ runnerVersion: TO, state: LS.LANE_STATE_RUNNING });
    expect(await onDisk("l1")).toEqual({ files: TO, version: TO, spare: [], registration: '{"agentName":"l1"}' });
    expect(rt.snapshot("l1")).toMatchObject({ activity: "running" });
    expect(await pending()).toEqual([]);
  });

  it.each<SwapStep>(["staged", "swapping", "swapped"])("a failure after %s puts the old runner back and restarts the lane", async (step) => {
    const { manager } = agent();
    await drainedLane(manager, "l1");
    rt.failAt = step;
    await expect(manager.upgrade(upgradeReq("l1"))).rejects.toThrow(`injected failure after ${step}`);
    expect(await onDisk("l1")).toEqual({ files: FROM, version: FROM, spare: [], registration: '{"agentName":"l1"}' });
    expect(rt.snapshot("l1")).toMatchObject({ activity: "running" });
    expect(await pending()).toEqual([]);
    expect(audit.at(-1)).toMatchObject({ action: "upgrade", phase: "failed" });
    expect(audit.at(-1)?.message).toContain("keeps its previous runner");
    // The coordinator's retry then goes through.
    await manager.upgrade(upgradeReq("l1"));
    expect(await onDisk("l1")).toMatchObject({ files: TO, version: TO, spare: [] });
  });
});

describe("kill -9 at each step of an upgrade, then recovery", () => {
  const cases: [UpgradeStep, "rolled-back" | "rolled-forward", string][] = [
    ["begin", "rolled-back", FROM],
    ["stopped", "rolled-back", FROM],
    ["staged", "rolled-back", FROM],
    ["swapping", "rolled-back", FROM],
    ["swapped", "rolled-back", FROM],
    ["recorded", "rolled-forward", TO],
  ];

  it.each(cases)("crash after %s: %s, files and lane.json agree on %s, the lane runs", async (step, outcome, version) => {
    const live = agent();
    await drainedLane(live.manager, "l1");
    const dead = agent(`upgrade:${step}`);
    void dead.manager.upgrade(upgradeReq("l1"));
    await dead.crashed;
    if (step === "swapping") {
      // The window the journal exists for: the old tree moved aside, the new one not yet in place.
      expect((await onDisk("l1")).files).toBeUndefined();
      expect((await onDisk("l1")).spare.sort()).toEqual(["runner.next", "runner.old"]);
    }
    expect(await pending()).toEqual(["l1"]);

    const { manager } = agent();
    const actions = await manager.recover();
    expect(actions).toMatchObject([{ laneId: "l1", op: "upgrade", step, outcome }]);
    expect(await onDisk("l1")).toEqual({ files: version, version, spare: [], registration: '{"agentName":"l1"}' });
    expect(rt.snapshot("l1")).toMatchObject({ activity: "running" });
    expect(await stateOf("l1")).toMatchObject({ desired: "running", state: "running", draining: true });
    expect(await pending()).toEqual([]);
    const recovered = audit.filter((a) => a.action === "recover-upgrade");
    expect(recovered.map((a) => a.phase)).toEqual(["planned", "started", "succeeded"]);
    expect(recovered.at(-1)).toMatchObject({ laneId: "l1", operationId: "op-l1", details: { step, outcome, from: FROM, to: TO, runnerVersion: version } });

    // The coordinator's retry (a new intent, or the same operation again) converges without another swap if the
    // upgrade was committed, and performs it if it was rolled back.
    const again = await manager.upgrade(upgradeReq("l1"));
    expect(again).toMatchObject({ runnerVersion: TO });
    expect(await onDisk("l1")).toMatchObject({ files: TO, version: TO, spare: [] });
    expect(audit.filter((a) => a.action === "upgrade").at(-1)?.details).toMatchObject(outcome === "rolled-forward" ? { unchanged: true } : { from: FROM, to: TO });
  });

  it("a stopped lane is left stopped after recovery", async () => {
    const live = agent();
    await drainedLane(live.manager, "l1");
    await live.manager.stop({ laneId: "l1" });
    const dead = agent("upgrade:swapping");
    void dead.manager.upgrade(upgradeReq("l1"));
    await dead.crashed;
    const [action] = await agent().manager.recover();
    expect(action).toMatchObject({ outcome: "rolled-back" });
    expect(rt.snapshot("l1")).toMatchObject({ activity: "stopped" });
    expect(await stateOf("l1")).toMatchObject({ desired: "stopped", state: "stopped" });
    expect((await onDisk("l1")).files).toBe(FROM);
  });
});

describe("recovery from the on-disk states a crash leaves", () => {
  /** A journal entry as the dead agent left it, and the lane stopped as the upgrade had stopped it. */
  async function interrupted(laneId: string, step: UpgradeStep): Promise<LaneManager> {
    const live = agent();
    await drainedLane(live.manager, laneId);
    await live.manager.stop({ laneId });
    await new OperationJournal(stateDir).write({
      laneId,
      operationId: "op-x",
      backend: "systemd",
      mode: "persistent",
      startedAtMs: 0,
      op: "upgrade",
      step,
      from: FROM,
      to: TO,
      wasRunning: true,
    });
    return agent().manager;
  }

  /** `runner.next/` complete beside the lane's `runner/`, as `swapRunner` stages it. */
  async function stageNext(laneId: string): Promise<void> {
    await dirs.copyRunner(laneId, join(root, "dist", TO), UID, GID);
    await rename(dirs.runnerDir(laneId), join(dirs.dir(laneId), "runner.next"));
    await dirs.copyRunner(laneId, join(root, "dist", FROM), UID, GID);
    await writeFile(join(dirs.runnerDir(laneId), ".runner"), `{"agentName":"${laneId}"}`);
  }

  it("runner.next complete, runner.old, no runner/: the old tree is put back", async () => {
    const manager = await interrupted("l1", "staged");
    await stageNext("l1");
    await rename(dirs.runnerDir("l1"), join(dirs.dir("l1"), "runner.old"));
    expect(await manager.recover()).toMatchObject([{ outcome: "rolled-back" }]);
    expect(await onDisk("l1")).toMatchObject({ files: FROM, version: FROM, spare: [] });
    expect(rt.snapshot("l1")).toMatchObject({ activity: "running" });
  });

  it("swap done but lane.json still names the old version: rolled back so files and record agree", async () => {
    const manager = await interrupted("l1", "swapping");
    await stageNext("l1");
    await rename(dirs.runnerDir("l1"), join(dirs.dir("l1"), "runner.old"));
    await rename(join(dirs.dir("l1"), "runner.next"), dirs.runnerDir("l1"));
    expect((await onDisk("l1")).files).toBe(TO);
    expect(await manager.recover()).toMatchObject([{ outcome: "rolled-back" }]);
    expect(await onDisk("l1")).toMatchObject({ files: FROM, version: FROM, spare: [] });
  });

  it("swap done and lane.json names the new version: the old tree is deleted", async () => {
    const manager = await interrupted("l1", "swapped");
    await stageNext("l1");
    await rename(dirs.runnerDir("l1"), join(dirs.dir("l1"), "runner.old"));
    await rename(join(dirs.dir("l1"), "runner.next"), dirs.runnerDir("l1"));
    await dirs.writeRecord({ ...(await dirs.read("l1")), runnerVersion: TO });
    expect(await manager.recover()).toMatchObject([{ outcome: "rolled-forward" }]);
    expect(await onDisk("l1")).toMatchObject({ files: TO, version: TO, spare: [] });
  });

  it("journal written but nothing moved (a partial runner.next, a stale runner.old): the lane keeps its runner", async () => {
    const manager = await interrupted("l1", "stopped");
    await mkdir(join(dirs.dir("l1"), "runner.next", "bin"), { recursive: true });
    await mkdir(join(dirs.dir("l1"), "runner.old"));
    expect(await manager.recover()).toMatchObject([{ outcome: "rolled-back" }]);
    expect(await onDisk("l1")).toMatchObject({ files: FROM, version: FROM, spare: [], registration: '{"agentName":"l1"}' });
  });

  it("a crash inside the rollback itself (runner.next + runner/ = old) is settled by the next start", async () => {
    const manager = await interrupted("l1", "swapped");
    await stageNext("l1");
    expect(await manager.recover()).toMatchObject([{ outcome: "rolled-back" }]);
    expect(await onDisk("l1")).toMatchObject({ files: FROM, version: FROM, spare: [] });
  });

  it("no runner tree left at all: kept stopped, needs-attention with a recovery note, audited as failed", async () => {
    const manager = await interrupted("l1", "swapping");
    await rm(dirs.runnerDir("l1"), { recursive: true });
    expect(await manager.recover()).toMatchObject([{ outcome: "needs-attention" }]);
    expect(await stateOf("l1")).toMatchObject({ desired: "stopped", state: "needs-attention", attentionReason: "UPGRADE_INCOMPLETE" });
    expect((await stateOf("l1"))?.recoveryNote).toContain("`lanekeeper lanes remove l1`, then `lanekeeper apply`");
    expect(await manager.inspect("l1")).toMatchObject({ state: LS.LANE_STATE_NEEDS_ATTENTION, attentionReason: "UPGRADE_INCOMPLETE" });
    expect(audit.at(-1)).toMatchObject({ action: "recover-upgrade", phase: "failed", reasonCode: "UPGRADE_INCOMPLETE" });
    expect(await pending()).toEqual([]);
    // What the note says to run reaches the agent as a remove: nothing blocks it.
    await expect(manager.remove({ laneId: "l1", removeToken: Buffer.from("AABBCCDDEEFF0011") })).resolves.toMatchObject({ laneId: "l1" });
    expect(await readdir(join(root, "lanes"))).toEqual([]);
  });

  it("an interrupted upgrade still journaled (its recovery failed) is settled before the next upgrade of the lane", async () => {
    const live = agent();
    await drainedLane(live.manager, "l1");
    const dead = agent("upgrade:swapping");
    void dead.manager.upgrade(upgradeReq("l1"));
    await dead.crashed;
    // No restart in between: the retried intent finds the journal entry itself.
    const obs = await agent().manager.upgrade(upgradeReq("l1"));
    expect(obs).toMatchObject({ runnerVersion: TO, state: LS.LANE_STATE_RUNNING });
    expect(await onDisk("l1")).toMatchObject({ files: TO, version: TO, spare: [] });
    expect(audit.filter((a) => a.action === "recover-upgrade").map((a) => a.phase)).toEqual(["planned", "started", "succeeded"]);
    expect(await pending()).toEqual([]);
  });
});
