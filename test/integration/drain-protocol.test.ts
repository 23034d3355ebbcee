// The drain protocol against real parts (GitHub emulator, nats-server, systemd, a real agent): a lane with a
// running job is drained and removed without the job being cancelled; with GitHub's `busy` flag lagging (the
// emulator's busyLagMs fault) the agent's Runner.Worker evidence holds the drain; when the coordinator's view is
// wrong (an inventory source that hides the job) the agent refuses the stop with JOB_RUNNING and the coordinator
// goes back to waiting; a deadline turns into needs-attention with a recovery note, never into a kill, and only
// an explicit --force stops the job, audited with forced_by.
import { RejectReason, type InventorySnapshot } from "@lanekeeper/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApplyEvent } from "../../packages/coordinator/src/apply/apply-events.js";
import type { HostSnapshot, InventorySource } from "../../packages/coordinator/src/observe/inventory-source.js";
import { runLaneCommand } from "../../packages/coordinator/src/apply/lane-commands.js";
import { eventually } from "./agent-fixture.js";
import { startApplyWorld, type ApplyWorld } from "./coordinator-apply-fixture.js";

let w: ApplyWorld;

beforeAll(async () => {
  w = await startApplyWorld({ drain: { settleMs: 400, deadlineMs: 60_000, pollMs: 150 } });
});
afterAll(async () => {
  await w?.close();
});

interface Timed {
  readonly at: number;
  readonly e: ApplyEvent;
}

function recorder(): { events: Timed[]; onEvent: (e: ApplyEvent) => void } {
  const events: Timed[] = [];
  return { events, onEvent: (e) => events.push({ at: Date.now(), e }) };
}

/** Scale to one lane and return its id (creating it when there is none). */
async function oneLane(): Promise<string> {
  const { report } = await w.apply(1);
  expect(report.outcomes.filter((o) => o.status !== "succeeded")).toEqual([]);
  const records = await w.store.list();
  const active = records.filter((r) => r.state === "active");
  expect(active).toHaveLength(1);
  const laneId = active[0]!.laneId;
  await eventually(async () => (await w.gh.control.listRunners()).find((r) => r.name === laneId)?.status === "online", `${laneId} online`);
  return laneId;
}

async function startJob(durationMs: number): Promise<number> {
  const job = await w.gh.control.createJob("acme/api", { labels: ["linux"], durationMs, name: `job-${durationMs}` });
  const seen = await w.gh.control.waitForJob(job.id, "in_progress", 30_000);
  expect(seen.status).toBe("in_progress");
  return job.id;
}

async function cancelledJobs(): Promise<number> {
  return (await w.gh.control.listJobs()).filter((j) => j.conclusion === "cancelled").length;
}

describe("drain protocol: never kill a job", () => {
  it("remove while a job runs: the drain waits for it, the job succeeds, nothing is cancelled", async () => {
    const laneId = await oneLane();
    // Long enough that the drain is certainly waiting while it runs, even on a loaded machine.
    const jobId = await startJob(8000);
    const rec = recorder();
    const report = await runLaneCommand(w.laneDeps(1), "remove", laneId, { operator: "alice", onEvent: rec.onEvent });
    expect(report.outcomes.map((o) => [o.status, o.code ?? ""])).toEqual([["succeeded", ""]]);
    const job = await w.gh.control.getJob(jobId);
    expect(job).toMatchObject({ status: "completed", conclusion: "success" });
    expect(await cancelledJobs()).toBe(0);
    // The wait saw the job (on the host or on GitHub) and the stop was sent only after the job had completed.
    const waits = rec.events.flatMap((t) => (t.e.type === "drain-wait" ? [t.e.waitingFor] : []));
    expect(waits.some((x) => x === "job-on-host" || x === "github-busy")).toBe(true);
    const sendRemove = rec.events.find((t) => t.e.type === "step" && t.e.step === "send-remove");
    expect(sendRemove).toBeDefined();
    expect(Date.parse(job.completedAt!)).toBeLessThanOrEqual(sendRemove!.at);
  });

  it("with GitHub's busy flag lagging, the agent's Runner.Worker evidence holds the drain; the job succeeds", async () => {
    const laneId = await oneLane();
    await w.gh.control.setFaults({ busyLagMs: 120_000 });
    try {
      const jobId = await startJob(8000);
      const runnerId = (await w.store.get(laneId))!.runnerId!;
      // GitHub (REST) really says "not busy" while the job runs: only the host knows.
      expect((await w.github.getRunner("acme/api", runnerId))?.busy).toBe(false);
      const rec = recorder();
      const report = await runLaneCommand(w.laneDeps(1), "drain", laneId, { operator: "alice", onEvent: rec.onEvent });
      expect(report.outcomes.map((o) => [o.status, o.code ?? ""])).toEqual([["succeeded", ""]]);
      expect(await w.gh.control.getJob(jobId)).toMatchObject({ status: "completed", conclusion: "success" });
      expect(await cancelledJobs()).toBe(0);
      const waits = rec.events.flatMap((t) => (t.e.type === "drain-wait" ? [t.e.waitingFor] : []));
      expect(waits).toContain("job-on-host");
      expect(waits).not.toContain("github-busy");
    } finally {
      await w.gh.control.clearFaults();
    }
    // Put it back in service for the next test: release restores the labels and undrains the agent.
    const rel = await runLaneCommand(w.laneDeps(1), "release", laneId, { operator: "alice" });
    expect(rel.outcomes.map((o) => [o.kind, o.status])).toEqual([
      ["release", "succeeded"],
      ["undrain", "succeeded"],
    ]);
    expect(await w.store.get(laneId)).toMatchObject({ state: "active" });
  });

  it("a job the coordinator cannot see: the agent refuses the stop (JOB_RUNNING), the coordinator waits again, the job succeeds", async () => {
    const laneId = await oneLane();
    await w.gh.control.setFaults({ busyLagMs: 120_000 });
    // An inventory source that hides job evidence: the coordinator's view is wrong on purpose.
    const blind: InventorySource = {
      async latest(hostId: string): Promise<HostSnapshot | undefined> {
        const s = await w.inventory.latest(hostId);
        if (s === undefined) return undefined;
        const snapshot: InventorySnapshot = { ...s.snapshot, lanes: s.snapshot.lanes.map((l) => ({ ...l, jobRunning: false })) };
        return { ...s, snapshot };
      },
    };
    try {
      const jobId = await startJob(10_000);
      const rec = recorder();
      const report = await runLaneCommand(w.laneDeps(1, { inventory: blind }), "remove", laneId, { operator: "alice", onEvent: rec.onEvent });
      expect(report.outcomes.map((o) => [o.status, o.code ?? ""])).toEqual([["succeeded", ""]]);
      expect(await w.gh.control.getJob(jobId)).toMatchObject({ status: "completed", conclusion: "success" });
      expect(await cancelledJobs()).toBe(0);
      const removes = rec.events.flatMap((t) => (t.e.type === "intent" && t.e.action === "remove" ? [t.e.result] : []));
      expect(removes[0]).toBe("rejected");
      expect(removes.at(-1)).toBe("ok");
      const agentRejects = (await w.agentAuditRecords()).filter((r) => r.action === "remove" && r.laneId === laneId && r.phase === "rejected");
      expect(agentRejects.length).toBeGreaterThan(0);
      expect(agentRejects.every((r) => r.reasonCode === RejectReason.JOB_RUNNING)).toBe(true);
    } finally {
      await w.gh.control.clearFaults();
    }
  });

  it("a deadline turns into needs-attention with a recovery note, never a kill; --force stops it, audited", async () => {
    const laneId = await oneLane();
    const jobId = await startJob(120_000);
    const report = await runLaneCommand(w.laneDeps(1), "remove", laneId, { operator: "alice", deadlineMs: 1500 });
    const o = report.outcomes[0]!;
    expect([o.status, o.code, o.safeState]).toEqual(["needs-attention", "DRAIN_DEADLINE", "drained"]);
    expect(o.recovery).toContain(`lanekeeper lanes remove ${laneId} --deadline 2h`);
    expect(o.recovery).toContain(`lanekeeper lanes remove ${laneId} --force --deadline 10m`);
    const rec = await w.store.get(laneId);
    expect(rec?.state).toBe("needs-attention");
    expect(rec?.attention).toMatchObject({ code: "DRAIN_DEADLINE" });
    expect(rec?.attention?.message).toContain(`lanekeeper lanes remove ${laneId} --force`);
    // Nothing was killed: the job still runs, the unit is active, the registration is there (drained).
    expect((await w.gh.control.getJob(jobId)).status).toBe("in_progress");
    expect((await w.sd.unitProperties(`lanekeeper-lane-${laneId}.service`, ["ActiveState"])).ActiveState).toBe("active");
    const runner = (await w.gh.control.listRunners()).find((r) => r.name === laneId);
    expect(runner?.labels).toContain("lk-draining");
    const failed = (await w.auditRecords()).filter((r) => r.action === "remove" && r.laneId === laneId).at(-1);
    expect(failed).toMatchObject({ phase: "failed", reasonCode: "DRAIN_DEADLINE" });
    expect((failed?.details as { recovery?: string }).recovery).toContain("--force");

    // --force never means "now": without an explicit deadline it is refused before anything is read or done.
    await expect(runLaneCommand(w.laneDeps(1), "remove", laneId, { operator: "alice", force: true })).rejects.toMatchObject({ code: "DEADLINE_INVALID" });
    expect((await w.gh.control.getJob(jobId)).status).toBe("in_progress");
    // The operator decides to stop the job after a short deadline: forced, and audited on both sides with who forced it.
    const forced = await runLaneCommand(w.laneDeps(1), "remove", laneId, { operator: "alice", force: true, deadlineMs: 500 });
    expect(forced.outcomes.map((x) => [x.status, x.code ?? "", x.forcedBy ?? ""])).toEqual([["succeeded", "", "alice"]]);
    expect((await w.gh.control.getJob(jobId)).conclusion).toBe("cancelled");
    expect(await w.store.get(laneId)).toBeUndefined();
    const done = (await w.auditRecords()).filter((r) => r.action === "remove" && r.laneId === laneId).at(-1);
    expect(done).toMatchObject({ phase: "succeeded", details: { forcedBy: "alice" } });
    const agentRemove = (await w.agentAuditRecords()).filter((r) => r.action === "remove" && r.laneId === laneId && r.phase === "succeeded").at(-1);
    expect(agentRemove?.details).toMatchObject({ forcedBy: "alice" });
  });
});
