// The in-memory runtime's runner model against the runner contract (exit codes 2.4, ephemeral runs, job evidence).
import { describe, expect, it } from "vitest";
import { FakeClock, RejectReason } from "@lanekeeper/shared";
import type { LaneRecord } from "../lanes/lane-marker.js";
import type { RuntimeLane } from "./lane-runtime.js";
import { MemoryProcessTable } from "./memory-processes.js";
import { MemoryRuntime, runShOutcome } from "./memory-runtime.js";

const lane = (laneId: string): RuntimeLane => ({
  record: { laneId, githubUrl: "https://github.com/acme/api" } as LaneRecord,
  laneDir: `/lanes/${laneId}`,
});

async function running(rt: MemoryRuntime, laneId = "l1", mode: "persistent" | "ephemeral" = "persistent"): Promise<void> {
  await rt.create(lane(laneId));
  if (mode === "persistent") await rt.configure(lane(laneId), Buffer.from("t"));
  else await rt.armJit(lane(laneId), Buffer.from("jit"));
  await rt.start(laneId);
}

describe("MemoryRuntime", () => {
  it("maps listener exit codes as run.sh does (contract 2.4)", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 99].map(runShOutcome)).toEqual([0, 0, "restart", "restart", "restart", 0, 0, 7, 0]);
  });

  it("restarts the listener in place on code 2, stops on 0, fails on 7 and on a signal", async () => {
    const rt = new MemoryRuntime({ clock: new FakeClock() });
    await running(rt);
    rt.exitRunner("l1", 2);
    expect(rt.snapshot("l1")).toMatchObject({ activity: "running", starts: 2 });
    expect(await rt.consoleTail(lane("l1"))).toContain("Restarting runner...");
    rt.exitRunner("l1", 1);
    expect(await rt.inspect("l1")).toMatchObject({ activity: "stopped", exitCode: 0 });
    await rt.start("l1");
    rt.exitRunner("l1", 7);
    expect(await rt.inspect("l1")).toMatchObject({ activity: "failed", exitCode: 7 });
    await rt.start("l1");
    rt.crash("l1", "SIGKILL");
    expect(await rt.inspect("l1")).toMatchObject({ activity: "failed", exitCode: 137 });
  });

  it("reports a job as a live Runner.Worker, as the systemd runtime does (cgroup)", async () => {
    const processes = new MemoryProcessTable();
    const rt = new MemoryRuntime({ processes });
    await running(rt);
    expect(await rt.jobEvidence("l1")).toEqual({ jobRunning: false, workerPids: [], source: "cgroup" });
    const pid = rt.runJob("l1");
    expect(processes.alive(pid)).toBe(true);
    expect(await rt.jobEvidence("l1")).toEqual({ jobRunning: true, workerPids: [pid], source: "cgroup" });
    await rt.stop("l1");
    expect(processes.alive(pid)).toBe(false);
    expect(await rt.jobEvidence("l1")).toMatchObject({ jobRunning: false, source: "none" });
    const container = new MemoryRuntime({ backend: "container" });
    await running(container);
    container.runJob("l1");
    expect((await container.jobEvidence("l1")).source).toBe("process-tree");
    expect(container.runtimeName("l1")).not.toBe(rt.runtimeName("l1"));
  });

  it("an ephemeral runner registers from its JIT config, exits 0 after one job and deletes .runner", async () => {
    const rt = new MemoryRuntime();
    await running(rt, "e1", "ephemeral");
    expect(await rt.runnerSettings(lane("e1"))).toMatchObject({ ephemeral: true, agentName: "e1" });
    rt.runJob("e1");
    rt.finishJob("e1");
    expect(await rt.inspect("e1")).toMatchObject({ activity: "stopped", exitCode: 0 });
    expect(await rt.runnerSettings(lane("e1"))).toBeUndefined();
  });

  it("a deleted registration makes every start exit at once with the runner's message", async () => {
    const rt = new MemoryRuntime();
    await running(rt);
    rt.deleteRegistration("l1");
    expect(await rt.inspect("l1")).toMatchObject({ activity: "stopped", exitCode: 0 });
    await rt.start("l1");
    expect(rt.snapshot("l1")?.activity).toBe("stopped");
    expect(await rt.consoleTail(lane("l1"))).toContain("registration has been deleted");
  });

  it("refuses what it does not own and lists it as unmanaged", async () => {
    const rt = new MemoryRuntime();
    rt.plantForeign("x1", RejectReason.BAD_MARKER);
    await expect(rt.checkOwnership("x1")).rejects.toMatchObject({ reason: RejectReason.BAD_MARKER });
    await expect(rt.create(lane("x1"))).rejects.toMatchObject({ reason: RejectReason.BAD_MARKER });
    await expect(rt.start("nope")).rejects.toMatchObject({ reason: RejectReason.LANE_NOT_FOUND });
    expect((await rt.list()).unmanaged).toEqual([expect.objectContaining({ name: rt.runtimeName("x1"), reason: "BAD_MARKER" })]);
  });

  it("injected faults fire once; a failing config.sh is a RunnerConfigError", async () => {
    const rt = new MemoryRuntime();
    await rt.create(lane("l1"));
    rt.failNext("configure");
    await expect(rt.configure(lane("l1"), Buffer.from("t"))).rejects.toMatchObject({ code: "RUNNER_CONFIGURE_FAILED" });
    await expect(rt.configure(lane("l1"), Buffer.from("t"))).resolves.toBeUndefined();
    expect(rt.snapshot("l1")?.configured).toBe(true);
  });
});
