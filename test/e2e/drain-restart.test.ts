// Acceptance: drain waits for the running job; restart drains, restarts and brings the lane back online with its
// labels. While a lane drains, GitHub shows `lk-draining` instead of its capacity labels, so new jobs go to other
// lanes; the command returns only after the job completed successfully (never cancelled); a restart keeps the
// registration, replaces the runner process and restores the canonical labels. Ordering is asserted, not time.
import { readFile } from "node:fs/promises";
import type { Fleet, RunnerView } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyOk,
  canonicalLabels,
  e2eFleet,
  eventually,
  expectJobsSucceeded,
  expectUnmanagedUntouched,
  identityOf,
  laneCommand,
  laneCommandOk,
  managedRunners,
  waitManagedOnline,
} from "./e2e-fixture.js";

const SCOPE = "acme/api";
const POOL_LABELS = ["linux", "lanes-systemd"];
const JOB_MS = 12_000;

let fleet: Fleet;

beforeAll(async () => {
  fleet = await e2eFleet({
    agents: [{ hostId: "build01", runtime: "systemd", capacity: 4 }],
    pools: { "linux-x64": { backend: "systemd", labels: POOL_LABELS } },
    lanes: [{ scope: SCOPE, pool: "linux-x64", count: 2, hosts: ["build01"] }],
    handmade: { container: false },
  });
  await applyOk(fleet);
  await waitManagedOnline(fleet, 2);
});

afterAll(async () => {
  await fleet?.stop();
});

/** Queues a job for the pool and waits until a lane runs it; returns the job id and the lane. */
async function busyLane(durationMs = JOB_MS): Promise<{ jobId: number; lane: RunnerView }> {
  const { id } = await fleet.github.control.createJob(SCOPE, { labels: ["lanes-systemd"], durationMs });
  const job = await eventually(async () => {
    const j = await fleet.github.control.getJob(id);
    return j.status === "in_progress" ? j : undefined;
  }, `job ${id} to start`);
  const lane = (await managedRunners(fleet)).find((r) => r.id === job.runnerId);
  expect(lane).toBeDefined();
  return { jobId: id, lane: lane! };
}

/** PIDs of the lane's Runner.Listener, seen from the host. */
async function listenerPids(laneId: string): Promise<number[]> {
  const sd = fleet.agent("build01").sandbox!;
  const out: number[] = [];
  for (const pid of await sd.unitHostPids(`lanekeeper-lane-${laneId}.service`)) {
    const comm = (await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")).trim();
    if (comm === "Runner.Listener") out.push(pid);
  }
  return out;
}

describe("drain", () => {
  it("swaps the lane's labels for lk-draining, sends new jobs elsewhere, and returns only after the job finished", async () => {
    const { jobId, lane } = await busyLane();
    const drain = laneCommand(fleet, "drain", lane.name);
    let drainFinishedAt = 0;
    void drain.then(() => (drainFinishedAt = Date.now()));

    // While the job runs the lane advertises only its unique lane label and lk-draining: nothing a workflow can
    // target (no capability label, no lk-pool-, lk-host- or lk-managed).
    const draining = await eventually(async () => {
      const r = (await managedRunners(fleet)).find((x) => x.id === lane.id);
      return r?.labels.includes("lk-draining") ? r : undefined;
    }, `${lane.name} to show lk-draining`);
    for (const l of POOL_LABELS) expect(draining.labels).not.toContain(l);
    expect([...draining.labels].sort()).toEqual(["lk-draining", `lk-lane-${lane.name}`]);

    // A new job for the pool goes to the other lane, not the draining one.
    const other = await fleet.github.control.createJob(SCOPE, { labels: ["lanes-systemd"], durationMs: 1000 });
    const ran = await fleet.github.control.waitForJob(other.id, "completed", 60_000);
    expect(ran.status).toBe("completed");
    expect(ran.runnerId).not.toBe(lane.id);

    const { cli, report } = await drain;
    expect(cli.code, cli.stderr).toBe(0);
    expect(report?.ok).toBe(true);
    // The drain ended after the job did, and the job was not cancelled.
    await expectJobsSucceeded(fleet, [jobId]);
    const job = await fleet.github.control.getJob(jobId);
    expect(Date.parse(job.completedAt ?? "")).toBeLessThanOrEqual(drainFinishedAt);
    // Drained, not removed: still registered, no capacity labels.
    const after = (await managedRunners(fleet)).find((r) => r.id === lane.id);
    expect(after?.labels).toContain("lk-draining");
  });

  it("release puts a drained lane back in service with its canonical labels", async () => {
    const drained = (await managedRunners(fleet)).find((r) => r.labels.includes("lk-draining"));
    expect(drained).toBeDefined();
    await laneCommandOk(fleet, "release", drained!.name);
    const back = await eventually(async () => {
      const r = (await managedRunners(fleet)).find((x) => x.id === drained!.id);
      return r && !r.labels.includes("lk-draining") ? r : undefined;
    }, `${drained!.name} back in service`);
    const id = identityOf(back);
    expect([...back.labels].sort()).toEqual(canonicalLabels(id.laneId, id.hostId, id.pool, POOL_LABELS));
  });
});

describe("restart", () => {
  it("waits for the running job, restarts the runner, keeps the registration and comes back online with its labels", async () => {
    const { jobId, lane } = await busyLane();
    const before = await listenerPids(lane.name);
    expect(before.length).toBe(1);
    const report = await laneCommandOk(fleet, "restart", lane.name);
    expect(report.outcomes.map((o) => [o.kind, o.laneId, o.status])).toEqual([["restart", lane.name, "succeeded"]]);
    await expectJobsSucceeded(fleet, [jobId]);

    const back = await waitManagedOnline(fleet, 2);
    const r = back.find((x) => x.name === lane.name);
    expect(r?.id).toBe(lane.id);
    const id = identityOf(r!);
    expect([...r!.labels].sort()).toEqual(canonicalLabels(id.laneId, id.hostId, id.pool, POOL_LABELS));
    const after = await listenerPids(lane.name);
    expect(after.length).toBe(1);
    expect(after[0]).not.toBe(before[0]);

    // It takes jobs again.
    const { id: next } = await fleet.github.control.createJob(SCOPE, { labels: ["lanes-systemd", `lk-lane-${lane.name}`], durationMs: 500 });
    await expectJobsSucceeded(fleet, [next]);
  });

  it("a drain that reaches its deadline leaves the job running and the lane needs-attention, never a kill", async () => {
    const { jobId, lane } = await busyLane(40_000);
    const { cli, report } = await laneCommand(fleet, "drain", lane.name, ["--deadline", "3s"]);
    expect(cli.code, cli.stdout + cli.stderr).not.toBe(0);
    const outcome = report?.outcomes[0];
    expect(outcome?.status).toBe("needs-attention");
    expect(outcome?.code).toBe("DRAIN_DEADLINE");
    expect(outcome?.safeState).toBe("drained");
    expect(outcome?.recovery).toContain(`lanekeeper lanes release ${lane.name}`);
    // The job was not touched: still running on the lane, then completes successfully.
    const job = await fleet.github.control.getJob(jobId);
    expect(job.status).toBe("in_progress");
    expect(job.runnerId).toBe(lane.id);
    await expectJobsSucceeded(fleet, [jobId], 120_000);
    await laneCommandOk(fleet, "release", lane.name);
    await waitManagedOnline(fleet, 2);
    await expectUnmanagedUntouched(fleet);
  });
});
