// LaneManager on the in-memory runtime: create rollback, crash recovery at every journaled step, holds, the job
// guard at stop, and health backoff. A fake clock and fake processes: no real sleeps, no systemd, no podman.
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Backend, FakeClock, generateSigningKey, identityLabels, LaneMode, LaneState as LS, RejectReason, type LaneSpec } from "@lanekeeper/shared";
import type { AuditEntryInput, AuditSink } from "../audit-sink.js";
import type { HealthPolicy } from "./health-policy.js";
import { LaneDirectories } from "./lane-directory.js";
import { writeHold } from "./lane-holds.js";
import { LaneManager } from "./lane-manager.js";
import { MarkerSigner, type LaneRecord } from "./lane-marker.js";
import { LaneStateStore } from "./lane-state.js";
import { MemoryProcessTable } from "../runtimes/memory-processes.js";
import { MemoryRuntime } from "../runtimes/memory-runtime.js";
import { OperationJournal } from "./operation-journal.js";

const HOST = "h1";
const HEALTH: HealthPolicy = { maxRestarts: 3, windowMs: 60_000, backoffBaseMs: 1_000, backoffMaxMs: 4_000 };
const TOKEN = (): Buffer => Buffer.from("AABBCCDDEEFF0011");

/** A signer whose `lane.json` signing can be made to fail (a failure inside the directory step of a create). */
class FlakySigner extends MarkerSigner {
  failSign = false;
  override signRecord(record: LaneRecord): string {
    if (this.failSign) throw new Error("injected signing failure");
    return super.signRecord(record);
  }
}

interface Host {
  stateDir: string;
  laneRoot: string;
  clock: FakeClock;
  processes: MemoryProcessTable;
  rt: MemoryRuntime;
  signer: FlakySigner;
  dirs: LaneDirectories;
  audit: AuditEntryInput[];
  /** A manager (an agent process) over this host; `crashAt` freezes it right after that journal step. */
  agent(crashAt?: string, health?: HealthPolicy): { manager: LaneManager; crashed: Promise<void> };
}

let root: string;
let host: Host;

async function newHost(): Promise<Host> {
  root = await mkdtemp(join(tmpdir(), "lk-lane-manager-"));
  const clock = new FakeClock();
  const processes = new MemoryProcessTable();
  const signer = new FlakySigner(HOST, generateSigningKey());
  const dirs = new LaneDirectories(join(root, "lanes"), signer);
  const h: Host = {
    stateDir: join(root, "state"),
    laneRoot: join(root, "lanes"),
    clock,
    processes,
    rt: new MemoryRuntime({ clock, processes, dirs }),
    signer,
    dirs,
    audit: [],
    agent(crashAt, health = HEALTH) {
      let signal = (): void => undefined;
      const crashed = new Promise<void>((r) => (signal = r));
      const journal = new OperationJournal(this.stateDir, (op, step) => {
        if (`${op}:${step}` !== crashAt) return;
        signal();
        // The process is gone: nothing after this step ever runs.
        return new Promise<void>(() => undefined);
      });
      const sink: AuditSink = { append: (e) => Promise.resolve(void this.audit.push(e)) };
      const manager = new LaneManager({
        hostId: HOST,
        stateDir: this.stateDir,
        dirs: this.dirs,
        runtimes: { systemd: this.rt },
        audit: sink,
        health,
        clock,
        journal,
        processes,
      });
      return { manager, crashed };
    },
  };
  return h;
}

const spec = (laneId: string, mode: LaneMode = LaneMode.LANE_MODE_PERSISTENT): LaneSpec => ({
  laneId,
  scope: "acme/api",
  pool: "p1",
  backend: Backend.BACKEND_SYSTEMD,
  mode,
  labels: [...identityLabels({ laneId, hostId: HOST, pool: "p1" }), "linux"],
  runnerGroup: "",
  githubUrl: "https://github.com/acme/api",
  runnerVersion: "2.330.0",
  image: "",
  limits: { cpuMillis: 0, memoryBytes: 0 },
  runnerDownload: undefined,
});

const createReq = (laneId: string, mode: LaneMode = LaneMode.LANE_MODE_PERSISTENT) =>
  mode === LaneMode.LANE_MODE_PERSISTENT ? { spec: spec(laneId, mode), registrationToken: TOKEN() } : { spec: spec(laneId, mode), jitConfig: TOKEN() };

/** Nothing of `laneId` is left: no unit, no directory, no state, no journal entry. */
async function expectNothingLeft(laneId: string): Promise<void> {
  expect(host.rt.snapshot(laneId)).toBeUndefined();
  expect(await readdir(host.laneRoot).catch(() => [])).not.toContain(laneId);
  expect(await new LaneStateStore(host.stateDir).get(laneId)).toBeUndefined();
  expect(await new OperationJournal(host.stateDir).pending()).toEqual([]);
}

const phases = (laneId: string, action: string): string[] => host.audit.filter((a) => a.laneId === laneId && a.action === action).map((a) => a.phase);
const stateOf = async (laneId: string) => new LaneStateStore(host.stateDir).get(laneId);

beforeEach(async () => {
  host = await newHost();
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("create", () => {
  it("creates, registers and starts a lane", async () => {
    const { manager } = host.agent();
    const obs = await manager.create(createReq("l1"));
    expect(obs).toMatchObject({ laneId: "l1", state: LS.LANE_STATE_RUNNING, runnerId: 1 });
    expect(host.rt.snapshot("l1")).toMatchObject({ activity: "running", configured: true });
    expect(phases("l1", "create")).toEqual(["planned", "started", "succeeded"]);
  });

  it.each([
    ["the lane directory", () => (host.signer.failSign = true)],
    ["the unit", () => host.rt.failNext("create")],
    ["config.sh", () => host.rt.failNext("configure")],
  ])("a failure creating %s leaves nothing behind", async (_what, inject) => {
    const { manager } = host.agent();
    inject();
    await expect(manager.create(createReq("l1"))).rejects.toThrow();
    await expectNothingLeft("l1");
    expect(phases("l1", "create")).toEqual(["planned", "started", "failed"]);
    expect(host.audit.at(-1)?.message).toContain("rolled back");
  });

  it("a failure handing an ephemeral lane its JIT config leaves nothing behind", async () => {
    const { manager } = host.agent();
    host.rt.failNext("armJit");
    await expect(manager.create(createReq("e1", LaneMode.LANE_MODE_EPHEMERAL))).rejects.toThrow("injected armJit failure");
    await expectNothingLeft("e1");
  });

  it("a failed start after registration keeps the lane (no orphaned registration) and says what to do", async () => {
    const { manager } = host.agent();
    host.rt.failNext("start");
    await expect(manager.create(createReq("l1"))).rejects.toThrow("injected start failure");
    expect(host.rt.snapshot("l1")).toMatchObject({ configured: true, activity: "stopped" });
    expect(await stateOf("l1")).toMatchObject({ state: "needs-attention", attentionReason: "START_FAILED", desired: "stopped" });
    expect((await stateOf("l1"))?.recoveryNote).toContain("lanekeeper lanes restart l1");
  });

  it("refuses a unit of that name it does not own and touches nothing", async () => {
    const { manager } = host.agent();
    host.rt.plantForeign("l1", RejectReason.FOREIGN_HOST);
    await expect(manager.create(createReq("l1"))).rejects.toMatchObject({ reason: RejectReason.FOREIGN_HOST });
    expect(phases("l1", "create")).toEqual(["rejected"]);
    expect(await readdir(host.laneRoot).catch(() => [])).toEqual([]);
  });
});

describe("recovery after a crash at each step", () => {
  it.each([
    ["create:begin", "rolled-back"],
    ["create:dir", "rolled-back"],
    ["create:runtime", "rolled-back"],
    ["create:runtime+child", "rolled-back"],
    ["create:configured", "rolled-forward"],
    ["create:started", "rolled-forward"],
  ])("persistent %s: %s", async (at, outcome) => {
    const dead = host.agent(at);
    void dead.manager.create(createReq("l1"));
    await dead.crashed;
    const { manager } = host.agent();
    const [action, ...more] = await manager.recover();
    expect(more).toEqual([]);
    expect(action).toMatchObject({ laneId: "l1", op: "create", outcome });
    if (outcome === "rolled-back") {
      await expectNothingLeft("l1");
    } else {
      expect(host.rt.snapshot("l1")).toMatchObject({ activity: "running", configured: true });
      expect(await manager.inspect("l1")).toMatchObject({ state: LS.LANE_STATE_RUNNING, runnerId: 1 });
    }
    if (at.endsWith("+child")) {
      // The dead agent's config.sh is killed before anything is decided.
      expect(host.processes.killed).toHaveLength(1);
      expect(action?.message).toContain("config.sh");
    }
    expect(phases("l1", "recover-create")).toEqual(["planned", "started", "succeeded"]);
  });

  it.each([
    ["create:runtime", "rolled-back"],
    ["create:configured", "rolled-forward"],
    ["create:started", "rolled-forward"],
  ])("ephemeral %s: %s", async (at, outcome) => {
    const dead = host.agent(at);
    void dead.manager.create(createReq("e1", LaneMode.LANE_MODE_EPHEMERAL));
    await dead.crashed;
    const [action] = await host.agent().manager.recover();
    expect(action).toMatchObject({ op: "create", outcome });
    if (outcome === "rolled-back") await expectNothingLeft("e1");
    else expect(host.rt.snapshot("e1")).toMatchObject({ activity: "running", configured: true });
  });

  it.each([
    ["remove:begin", "rolled-back"],
    ["remove:stopped", "needs-attention"],
    ["remove:stopped+child", "needs-attention"],
    ["remove:deregistered", "rolled-forward"],
    ["remove:runtime-removed", "rolled-forward"],
    ["remove:dir-removed", "rolled-forward"],
  ])("%s: %s", async (at, outcome) => {
    await host.agent().manager.create(createReq("l1"));
    const dead = host.agent(at);
    void dead.manager.remove({ laneId: "l1", removeToken: TOKEN() });
    await dead.crashed;
    const { manager } = host.agent();
    const [action] = await manager.recover();
    expect(action).toMatchObject({ laneId: "l1", op: "remove", outcome });
    if (outcome === "rolled-forward") {
      await expectNothingLeft("l1");
    } else if (outcome === "rolled-back") {
      expect(host.rt.snapshot("l1")?.activity).toBe("running");
    } else {
      // The remove token is never stored: the lane stays stopped and registered until the coordinator retries.
      expect(host.rt.snapshot("l1")).toMatchObject({ activity: "stopped", configured: true });
      expect(await stateOf("l1")).toMatchObject({ state: "needs-attention", attentionReason: "REMOVE_INCOMPLETE", desired: "stopped" });
    }
    if (at.endsWith("+child")) expect(host.processes.killed).toHaveLength(1);
  });

  it.each([
    ["arm:armed", "rolled-back"],
    ["arm:started", "rolled-forward"],
  ])("%s: %s", async (at, outcome) => {
    await host.agent().manager.create(createReq("e1", LaneMode.LANE_MODE_EPHEMERAL));
    host.rt.runJob("e1");
    host.rt.finishJob("e1");
    const dead = host.agent(at);
    void dead.manager.arm({ laneId: "e1", jitConfig: TOKEN() });
    await dead.crashed;
    const [action] = await host.agent().manager.recover();
    expect(action).toMatchObject({ op: "arm", outcome });
    // Either way no JIT config stays in the lane's environment.
    expect(host.rt.snapshot("e1")?.jitArmed).toBe(false);
    expect((await stateOf("e1"))?.state).toBe(outcome === "rolled-back" ? "idle-unarmed" : "running");
  });

  it("refuses new operations on a lane with an interrupted operation until recovery ran", async () => {
    await host.agent().manager.create(createReq("l1"));
    const dead = host.agent("remove:begin");
    void dead.manager.remove({ laneId: "l1", removeToken: TOKEN() });
    await dead.crashed;
    const { manager } = host.agent();
    await expect(manager.stop({ laneId: "l1" })).rejects.toThrow("interrupted operation");
    await manager.recover();
    await expect(manager.stop({ laneId: "l1" })).resolves.toMatchObject({ state: LS.LANE_STATE_STOPPED });
  });
});

describe("holds", () => {
  it("refuses every mutation of a held lane until it is released, and the health loop leaves it alone", async () => {
    const { manager } = host.agent();
    await manager.create(createReq("l1"));
    await manager.hold({ laneId: "l1", reason: "disk check", by: "ops" });
    const held = { reason: RejectReason.LANE_HELD };
    await expect(manager.stop({ laneId: "l1", force: true })).rejects.toMatchObject(held);
    await expect(manager.restart({ laneId: "l1" })).rejects.toMatchObject(held);
    await expect(manager.start({ laneId: "l1" })).rejects.toMatchObject(held);
    await expect(manager.drain({ laneId: "l1" })).rejects.toMatchObject(held);
    await expect(manager.remove({ laneId: "l1", removeToken: TOKEN() })).rejects.toMatchObject(held);
    expect(phases("l1", "remove")).toEqual(["rejected"]);
    host.rt.crash("l1");
    await manager.superviseOnce();
    expect(host.rt.snapshot("l1")?.activity).toBe("failed");
    expect((await manager.inspect("l1")).held).toBe(true);
    await manager.release({ laneId: "l1" });
    await manager.superviseOnce();
    expect(host.rt.snapshot("l1")?.activity).toBe("running");
  });

  it("audits a hold placed locally (the CLI writes the file) once", async () => {
    const { manager } = host.agent();
    await manager.create(createReq("l1"));
    await writeHold(host.stateDir, { laneId: "l1", reason: "local", atMs: 0, by: "root" });
    await manager.superviseOnce();
    await manager.superviseOnce();
    expect(phases("l1", "hold")).toEqual(["succeeded"]);
    await expect(manager.stop({ laneId: "l1" })).rejects.toMatchObject({ reason: RejectReason.LANE_HELD });
  });
});

describe("the job guard at stop", () => {
  it("a live Runner.Worker refuses stop, restart and remove; the lane keeps running its job", async () => {
    const { manager } = host.agent();
    await manager.create(createReq("l1"));
    const worker = host.rt.runJob("l1");
    expect((await manager.inspect("l1")).jobRunning).toBe(true);
    const job = { reason: RejectReason.JOB_RUNNING };
    await expect(manager.stop({ laneId: "l1" })).rejects.toMatchObject(job);
    await expect(manager.restart({ laneId: "l1" })).rejects.toMatchObject(job);
    await expect(manager.remove({ laneId: "l1", removeToken: TOKEN() })).rejects.toMatchObject(job);
    expect(host.rt.snapshot("l1")).toMatchObject({ activity: "running", workerPids: [worker], configured: true });
    expect(await stateOf("l1")).toMatchObject({ desired: "running", state: "running" });
    expect(phases("l1", "stop")).toEqual(["planned", "started", "rejected"]);
    host.rt.finishJob("l1");
    await expect(manager.stop({ laneId: "l1" })).resolves.toMatchObject({ state: LS.LANE_STATE_STOPPED });
  });

  it("a forced stop kills the job and is audited as forced", async () => {
    const { manager } = host.agent();
    await manager.create(createReq("l1"));
    host.rt.runJob("l1");
    await manager.stop({ laneId: "l1", force: true, forcedBy: "alice" });
    expect(host.rt.snapshot("l1")).toMatchObject({ activity: "stopped", workerPids: [] });
    const planned = host.audit.find((a) => a.action === "stop" && a.phase === "planned");
    expect(planned?.details).toMatchObject({ forced: true, forcedBy: "alice" });
  });
});

describe("health supervision", () => {
  const nextRestartAt = async (laneId: string): Promise<number> => (await stateOf(laneId))?.nextRestartAtMs ?? -1;

  it("restarts at once, then with exponential backoff, and after maxRestarts in the window marks needs-attention", async () => {
    const { manager } = host.agent();
    await manager.create(createReq("l1"));
    const starts = (): number => host.rt.snapshot("l1")?.starts ?? 0;
    host.rt.crash("l1");
    await manager.superviseOnce();
    expect(starts()).toBe(2); // the first restart after a healthy run is immediate
    for (const delay of [1_000, 2_000]) {
      host.rt.crash("l1");
      const t0 = host.clock.now();
      await manager.superviseOnce();
      expect(await nextRestartAt("l1")).toBe(t0 + delay);
      const before = starts();
      host.clock.advance(delay - 1);
      await manager.superviseOnce();
      expect(starts()).toBe(before);
      host.clock.advance(1);
      await manager.superviseOnce();
      expect(starts()).toBe(before + 1);
    }
    host.rt.crash("l1");
    await manager.superviseOnce();
    const obs = await manager.inspect("l1");
    expect(obs).toMatchObject({ state: LS.LANE_STATE_NEEDS_ATTENTION, attentionReason: "CRASH_LOOP", restartsInWindow: 3, lastExitCode: 137 });
    expect(obs.recoveryNote).toContain("lanekeeper lanes restart l1");
    host.clock.advance(HEALTH.windowMs * 2);
    await manager.superviseOnce();
    expect(host.rt.snapshot("l1")?.activity).toBe("failed");
    // An operator restart clears the state and the count.
    await manager.restart({ laneId: "l1" });
    expect(await manager.inspect("l1")).toMatchObject({ state: LS.LANE_STATE_RUNNING, restartsInWindow: 0, attentionReason: "" });
  });

  it("caps the backoff at backoffMaxMs", async () => {
    const { manager } = host.agent(undefined, { ...HEALTH, maxRestarts: 10, windowMs: 600_000 });
    await manager.create(createReq("l1"));
    host.rt.crash("l1");
    await manager.superviseOnce();
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      host.rt.crash("l1");
      const t0 = host.clock.now();
      await manager.superviseOnce();
      const at = await nextRestartAt("l1");
      delays.push(at - t0);
      host.clock.set(at);
      await manager.superviseOnce();
      expect(host.rt.snapshot("l1")?.activity).toBe("running");
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 4_000, 4_000]);
  });

  it("restarts older than the window no longer count towards the crash-loop breaker", async () => {
    const { manager } = host.agent();
    await manager.create(createReq("l1"));
    for (let i = 0; i < 2 * HEALTH.maxRestarts; i++) {
      host.rt.crash("l1");
      await manager.superviseOnce();
      expect(host.rt.snapshot("l1")?.activity).toBe("running");
      host.clock.advance(HEALTH.windowMs);
    }
    expect((await manager.inspect("l1")).state).toBe(LS.LANE_STATE_RUNNING);
  });

  it("a deleted registration is reported, not restarted forever", async () => {
    const { manager } = host.agent();
    await manager.create(createReq("l1"));
    host.rt.deleteRegistration("l1");
    await manager.superviseOnce();
    expect(await manager.inspect("l1")).toMatchObject({ state: LS.LANE_STATE_NEEDS_ATTENTION, attentionReason: "REGISTRATION_DELETED" });
    expect(host.rt.snapshot("l1")?.starts).toBe(1);
    expect(phases("l1", "health")).toEqual(["failed"]);
  });

  it("leaves a run.sh in-place restart (listener code 2) alone, and restarts after exit code 7", async () => {
    const { manager } = host.agent();
    await manager.create(createReq("l1"));
    host.rt.exitRunner("l1", 2);
    await manager.superviseOnce();
    expect(phases("l1", "health-restart")).toEqual([]);
    host.rt.exitRunner("l1", 7);
    expect(host.rt.snapshot("l1")).toMatchObject({ activity: "failed", exitCode: 7 });
    await manager.superviseOnce();
    expect(phases("l1", "health-restart")).toEqual(["planned", "started", "succeeded"]);
    expect(host.rt.snapshot("l1")?.activity).toBe("running");
  });

  it("an ephemeral lane whose runner just finished its job is reported idle-unarmed, not failed, before the supervisor's next pass", async () => {
    const { manager } = host.agent();
    await manager.create(createReq("e2", LaneMode.LANE_MODE_EPHEMERAL));
    await manager.superviseOnce();
    host.rt.runJob("e2");
    host.rt.finishJob("e2");
    // The inventory published between the runner's exit and the supervisor's pass: the coordinator reads it.
    expect(await manager.inspect("e2")).toMatchObject({ state: LS.LANE_STATE_IDLE_UNARMED });
    // A runner that failed with its registration still configured stays a failure.
    await manager.create(createReq("e3", LaneMode.LANE_MODE_EPHEMERAL));
    await manager.superviseOnce();
    host.rt.exitRunner("e3", 1);
    expect(await manager.inspect("e3")).toMatchObject({ state: LS.LANE_STATE_FAILED });
  });

  it("an ephemeral lane that finished its job waits idle for a fresh JIT config, then is armed", async () => {
    const { manager } = host.agent();
    await manager.create(createReq("e1", LaneMode.LANE_MODE_EPHEMERAL));
    expect(await host.dirs.envHasContent("e1")).toBe(true);
    await manager.superviseOnce();
    // The runner wrote .runner from it: the JIT config is wiped from disk.
    expect(await host.dirs.envHasContent("e1")).toBe(false);
    expect(host.rt.snapshot("e1")?.jitArmed).toBe(false);
    host.rt.runJob("e1");
    host.rt.finishJob("e1");
    await manager.superviseOnce();
    expect(await manager.inspect("e1")).toMatchObject({ state: LS.LANE_STATE_IDLE_UNARMED });
    await manager.arm({ laneId: "e1", jitConfig: TOKEN() });
    expect(host.rt.snapshot("e1")).toMatchObject({ activity: "running", configured: true });
  });
});
