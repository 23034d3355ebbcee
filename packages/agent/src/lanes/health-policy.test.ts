import { describe, expect, it } from "vitest";
import { backoffDelayMs, decideHealth, pruneRestarts, recoveryNote, type HealthPolicy } from "./health-policy.js";
import { initialLaneState, type LaneState } from "./lane-state.js";

const policy: HealthPolicy = { maxRestarts: 3, windowMs: 60_000, backoffBaseMs: 1000, backoffMaxMs: 5000 };
const base = (patch: Partial<LaneState> = {}): LaneState => ({ ...initialLaneState("l1", 0), desired: "running", state: "running", health: "healthy", ...patch });

describe("health policy", () => {
  it("restarts at once the first time, then doubles up to the cap", () => {
    expect([0, 1, 2, 3, 4, 10].map((n) => backoffDelayMs(n, policy))).toEqual([0, 1000, 2000, 4000, 5000, 5000]);
  });

  it("prunes restarts outside the window", () => {
    expect(pruneRestarts([1, 50_000, 70_000], 100_000, 60_000)).toEqual([50_000, 70_000]);
  });

  it("restarts a dead persistent runner that is still configured", () => {
    const d = decideHealth({ state: base(), mode: "persistent", activity: "stopped", nowMs: 10, policy, console: "Exiting runner...", runnerConfigured: true });
    expect(d).toEqual({ kind: "restart" });
  });

  it("schedules by backoff after earlier restarts, and restarts once the time has come", () => {
    const s = base({ restarts: [5_000] });
    expect(decideHealth({ state: s, mode: "persistent", activity: "failed", nowMs: 10_000, policy, console: "", runnerConfigured: true })).toEqual({
      kind: "schedule",
      atMs: 11_000,
    });
    const waiting = base({ restarts: [5_000], health: "restarting", nextRestartAtMs: 11_000 });
    expect(decideHealth({ state: waiting, mode: "persistent", activity: "failed", nowMs: 10_500, policy, console: "", runnerConfigured: true }).kind).toBe("wait");
    expect(decideHealth({ state: waiting, mode: "persistent", activity: "failed", nowMs: 11_000, policy, console: "", runnerConfigured: true }).kind).toBe("restart");
  });

  it("breaks a crash loop after maxRestarts within the window", () => {
    const s = base({ restarts: [1, 2, 3], health: "restarting", nextRestartAtMs: 4 });
    expect(decideHealth({ state: s, mode: "persistent", activity: "stopped", nowMs: 10, policy, console: "", runnerConfigured: true })).toEqual({
      kind: "attention",
      reason: "CRASH_LOOP",
      health: "crash-loop",
    });
  });

  it("never restarts a runner whose registration was deleted", () => {
    const console = "Failed to create a session. The runner registration has been deleted from the server, please re-configure.";
    const d = decideHealth({ state: base(), mode: "persistent", activity: "stopped", nowMs: 10, policy, console, runnerConfigured: true });
    expect(d).toEqual({ kind: "attention", reason: "REGISTRATION_DELETED", health: "registration-deleted" });
  });

  it("treats an ephemeral runner without .runner as done, and a persistent one as broken", () => {
    expect(decideHealth({ state: base(), mode: "ephemeral", activity: "stopped", nowMs: 1, policy, console: "", runnerConfigured: false }).kind).toBe("idle-unarmed");
    expect(decideHealth({ state: base(), mode: "persistent", activity: "stopped", nowMs: 1, policy, console: "", runnerConfigured: false })).toMatchObject({
      kind: "attention",
      reason: "NOT_CONFIGURED",
    });
  });

  it("waits when .runner cannot be read right now", () => {
    expect(decideHealth({ state: base(), mode: "persistent", activity: "stopped", nowMs: 1, policy, console: "", runnerConfigured: undefined }).kind).toBe("wait");
  });

  it("waits through transitions and reports a vanished unit", () => {
    expect(decideHealth({ state: base(), mode: "persistent", activity: "starting", nowMs: 1, policy, console: "", runnerConfigured: true }).kind).toBe("wait");
    expect(decideHealth({ state: base(), mode: "persistent", activity: "missing", nowMs: 1, policy, console: "", runnerConfigured: true })).toMatchObject({
      reason: "RUNTIME_MISSING",
    });
  });

  it("names exact commands in recovery notes", () => {
    const n = recoveryNote("CRASH_LOOP", { laneId: "l1", backend: "systemd", laneDir: "/var/lib/lanekeeper-lanes/l1", runtimeName: "lanekeeper-lane-l1.service", restarts: 5, windowMs: 600_000 });
    expect(n).toContain("lanekeeper lanes restart l1");
    expect(n).toContain("/var/lib/lanekeeper-lanes/l1/runner.log");
    expect(recoveryNote("REGISTRATION_DELETED", { laneId: "l1", backend: "container", laneDir: "/x", runtimeName: "lanekeeper-lane-l1" })).toContain(
      "lanekeeper lanes remove l1",
    );
    // A lane that would not start may have a broken copy of the runner: the note says when to recreate it instead.
    const start = recoveryNote("START_FAILED", { laneId: "l1", backend: "systemd", laneDir: "/x", runtimeName: "lanekeeper-lane-l1.service" });
    expect(start).toContain("lanekeeper lanes restart l1");
    expect(start).toContain("`lanekeeper lanes remove l1`, then `lanekeeper apply`");
    // An upgrade whose runner files are gone cannot be restarted, only recreated.
    const upgrade = recoveryNote("UPGRADE_INCOMPLETE", { laneId: "l1", backend: "systemd", laneDir: "/x/l1", runtimeName: "lanekeeper-lane-l1.service" });
    expect(upgrade).toContain("runner.old/ under /x/l1");
    expect(upgrade).toContain("`lanekeeper lanes remove l1`, then `lanekeeper apply`");
  });
});
