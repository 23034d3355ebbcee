// Drains and removals a coordinator left half-done, against the real world: nats-server (lane records, operation
// leases in `lk_operations`), the GitHub emulator and a real agent running lanes in a real systemd. The dead
// coordinator is played by a record it wrote (its operation's lease gone, as after a kill -9 or a freeze past the
// TTL) and the intents it got out before dying. The next plan must resume each action from the first step that did
// not take effect (never a second drain, remove or create that took effect), never leave a lane half-drained, leave
// an action whose lease is live to its owner, and never stop a busy lane. A drain wait whose own lease is lost stops
// at once without sending anything more.
import { DRAINING_LABEL } from "@lanekeeper/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvOperationLeases } from "../../packages/coordinator/src/lane-store-kv/kv-operation-leases.js";
import { observeAndPlan } from "../../packages/coordinator/src/context/observe-world.js";
import { OPERATIONS_BUCKET } from "../../packages/coordinator/src/apply/limits.js";
import { recordWithout } from "../../packages/coordinator/src/observe/lane-record.js";
import type { Plan } from "../../packages/coordinator/src/plan/plan-types.js";
import type { RemoveAction } from "../../packages/coordinator/src/plan/action.js";
import { eventually } from "./agent-fixture.js";
import { HOST, startApplyWorld, type ApplyWorld } from "./coordinator-apply-fixture.js";

let w: ApplyWorld;
/** This coordinator's leases (the one that resumes). */
let leases: KvOperationLeases;
/** Another live coordinator's leases. */
let other: KvOperationLeases;

const DEAD_OP = "op-dead00000000000001";

async function plan(count: number): Promise<Plan> {
  return (await observeAndPlan({ policy: w.policy(count), github: w.github, store: w.store, inventory: w.inventory, leases })).plan;
}

const summary = (p: Plan): string[] => p.actions.map((a) => `${a.kind}:${a.laneId}:${a.reason.code}`);

/** What the agent carried out for a lane, from its audit chain: `action:operationId` per succeeded intent. */
async function agentDid(laneId: string): Promise<string[]> {
  return (await w.agentAuditRecords()).filter((r) => r.laneId === laneId && r.phase === "succeeded" && r.intentId !== undefined).map((r) => `${r.action}:${r.operationId ?? ""}`);
}

async function customLabels(laneId: string): Promise<string[]> {
  const r = (await w.gh.control.listRunners()).find((x) => x.name === laneId);
  return [...(r?.labels ?? [])].sort();
}

async function hostLane(laneId: string): Promise<{ draining: boolean; jobRunning: boolean } | undefined> {
  const s = await w.inventory.latest(HOST);
  return s?.snapshot.lanes.find((l) => l.laneId === laneId);
}

/** Queue a job and wait until it runs on `laneId`. */
async function busy(laneId: string, durationMs: number): Promise<number> {
  const job = await w.gh.control.createJob("acme/api", { labels: ["linux"], durationMs });
  await eventually(async () => {
    const j = await w.gh.control.getJob(job.id);
    const r = (await w.gh.control.listRunners()).find((x) => x.name === laneId);
    return j.status === "in_progress" && j.runnerId === r?.id && (await hostLane(laneId))?.jobRunning === true;
  }, `job ${job.id} running on ${laneId}`, 60_000);
  return job.id;
}

/** Play a coordinator that wrote `state` on the lane's record and died (no lease is left for `op`). */
async function deadWrote(laneId: string, state: "draining" | "removing", op = DEAD_OP): Promise<void> {
  const r = await w.store.get(laneId);
  if (r === undefined) throw new Error(`no record of ${laneId}`);
  await w.store.update({ ...recordWithout(r), state, ...(state === "draining" ? { drainReason: "scale-down" as const } : {}), updatedAtMs: Date.now(), operationId: op }, r.revision);
}

beforeAll(async () => {
  w = await startApplyWorld({ drain: { settleMs: 500, deadlineMs: 60_000, pollMs: 200 } });
  leases = await KvOperationLeases.open(w.coord.jetstream(), { instance: "next" });
  other = await KvOperationLeases.open(w.coord.jetstream(), { instance: "still-running" });
});
afterAll(async () => {
  await other?.close();
  await leases?.close();
  await w?.close();
});

describe("interrupted drains and removals resume from what took effect", () => {
  let drained = "";
  let jobId = 0;

  it("a drain that died after writing its record (labels not swapped, agent not told) is finished, the job keeps running", async () => {
    const first = await w.apply(1);
    expect(first.report.ok).toBe(true);
    drained = first.plan.actions[0]?.laneId ?? "";
    jobId = await busy(drained, 20_000);
    await deadWrote(drained, "draining");
    // Half-drained: the record says draining, GitHub still offers the lane to new jobs, the agent does not know.
    expect(await customLabels(drained)).toContain("linux");
    await eventually(async () => (await hostLane(drained))?.draining === false && (await w.inventory.latest(HOST))!.receivedAtMs > (await w.store.get(drained))!.updatedAtMs + 2_000, "an inventory after the record", 30_000);

    // Still running elsewhere (its lease is live): left to it.
    await other.hold(DEAD_OP, { laneId: drained, kind: "drain" });
    const inFlight = await plan(0);
    expect(inFlight.actions.filter((a) => a.laneId === drained)).toEqual([]);
    expect(inFlight.warnings.find((x) => x.laneId === drained)?.code).toBe("OPERATION_IN_FLIGHT");
    await other.release(DEAD_OP);

    const p = await plan(0);
    expect(summary(p)).toEqual([`drain:${drained}:DRAIN_INTERRUPTED`]);
    expect(p.actions[0]?.steps).toEqual(["write-record", "set-draining-labels", "send-drain"]);
    expect(p.warnings.find((x) => x.code === "DRAIN_INTERRUPTED")?.laneId).toBe(drained);
    const report = await w.engine(w.policy(0), { leases }).run(p);
    expect(report.outcomes.map((o) => [o.kind, o.status, o.code ?? ""])).toEqual([["drain", "succeeded", ""]]);

    expect(await customLabels(drained)).toEqual([DRAINING_LABEL, `lk-lane-${drained}`].sort());
    await eventually(async () => (await hostLane(drained))?.draining === true, "the agent's drain mark", 30_000);
    expect((await w.store.get(drained))?.state).toBe("draining");
    expect((await w.gh.control.getJob(jobId)).status).toBe("in_progress");
    // Done: the next plan does not drain it again while the job runs.
    expect(summary(await plan(0))).toEqual([]);
    expect((await agentDid(drained)).filter((x) => x.startsWith("drain:"))).toHaveLength(1);
  });

  it("once the job is done the drained lane is removed; the job succeeded", async () => {
    await eventually(async () => (await w.gh.control.getJob(jobId)).conclusion === "success", "the job to finish", 60_000);
    await eventually(async () => (await hostLane(drained))?.jobRunning === false, "no job on the host", 30_000);
    const p = await eventually(async () => {
      const q = await plan(0);
      return summary(q).join() === `remove:${drained}:SCALE_DOWN` ? q : undefined;
    }, "the drained lane's removal planned", 30_000);
    expect((await w.engine(w.policy(0), { leases }).run(p)).ok).toBe(true);
    expect(await w.store.get(drained)).toBeUndefined();
  });

  it("a removal that died after its host removed the lane: the remove is not sent again, only the registration and the record go", async () => {
    const created = await w.apply(1);
    const laneId = created.plan.actions[0]?.laneId ?? "";
    expect(created.report.ok).toBe(true);
    await deadWrote(laneId, "removing");
    // What the dead coordinator got out: the remove intent (without the remove token, so GitHub keeps the registration).
    const out = await w.dispatcher.deliver({ hostId: HOST, action: { kind: "remove", laneId, force: false }, operationId: DEAD_OP });
    expect(out.kind).toBe("succeeded");
    await eventually(async () => (await hostLane(laneId)) === undefined, "the host no longer reports the lane", 30_000);
    expect((await w.gh.control.listRunners()).some((r) => r.name === laneId)).toBe(true);

    const p = await plan(1);
    const resume = p.actions.find((a) => a.laneId === laneId) as RemoveAction | undefined;
    expect(resume?.reason.code).toBe("RESUME_REMOVE");
    expect(resume?.steps).toEqual(["write-record", "delete-registration", "verify-gone", "delete-record"]);
    const report = await w.engine(w.policy(1), { leases }).run(p);
    expect(report.outcomes.find((o) => o.laneId === laneId)?.status).toBe("succeeded");
    expect((await w.gh.control.listRunners()).some((r) => r.name === laneId)).toBe(false);
    expect(await w.store.get(laneId)).toBeUndefined();
    // One remove on the host: the dead coordinator's.
    expect((await agentDid(laneId)).filter((x) => x.startsWith("remove:"))).toEqual([`remove:${DEAD_OP}`]);
  });

  it("a removal waiting for a job stops at once when its lease is lost (a freeze past the TTL): nothing is sent, the job runs on", async () => {
    const laneId = (await w.store.list())[0]?.laneId ?? "";
    const job = await busy(laneId, 15_000);
    // A removal started by a coordinator that died before its drain: resumed from the drain, it waits for the job.
    await deadWrote(laneId, "removing", "op-dead00000000000002");
    const p = await plan(0);
    expect(summary(p)).toEqual([`remove:${laneId}:RESUME_REMOVE`]);
    expect(p.actions[0]?.steps.slice(0, 4)).toEqual(["write-record", "set-draining-labels", "send-drain", "wait-idle"]);
    const mine = await KvOperationLeases.open(w.coord.jetstream(), { instance: "frozen" });
    const run = w.engine(w.policy(0), { leases: mine }).run(p);
    // Inside the wait: the agent drained by this removal's operation.
    let opId = "";
    await eventually(async () => {
      opId = (await agentDid(laneId)).find((x) => x.startsWith("drain:"))?.slice("drain:".length) ?? "";
      return opId !== "";
    }, "the removal's drain", 30_000);
    // What a freeze past the TTL leaves: the lease key gone (aged out), so the next renewal finds it lost.
    const kv = await w.coord.jetstream().views.kv(OPERATIONS_BUCKET);
    await kv.purge(opId);
    const report = await run;
    expect(report.outcomes.map((o) => [o.kind, o.status, o.code ?? "", o.failedStep ?? ""])).toEqual([["remove", "failed", "OPERATION_LEASE_LOST", "wait-idle"]]);
    expect((await agentDid(laneId)).filter((x) => x.startsWith("remove:"))).toEqual([]);
    expect((await w.gh.control.getJob(job)).status).toBe("in_progress");
    await mine.close();
    await eventually(async () => (await w.gh.control.getJob(job)).conclusion === "success", "the job to finish", 60_000);
  });
});
