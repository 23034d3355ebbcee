// The full lane lifecycle through the coordinator, real parts end to end: `apply` creates a lane (registration
// token minted and sealed to the host, CreateLane intent over NATS, the agent builds a systemd unit in a real
// systemd and the runner emulator registers with the GitHub emulator), verified online with exactly the canonical
// labels; then the operator commands drain, restart and remove it; records live in JetStream KV and every
// mutation leaves planned/started/terminal audit records in the local chain and in the LK_AUDIT stream.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { verifyAuditChain, type AuditRecord } from "@lanekeeper/shared";
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { observeAndPlan } from "../../packages/coordinator/src/context/observe-world.js";
import { runLaneCommand, type LaneCommandDeps } from "../../packages/coordinator/src/apply/lane-commands.js";
import { verifyStreamChains } from "../../packages/coordinator/src/audit/audit-stream.js";
import { eventually } from "./agent-fixture.js";
import { HOST, POOL, startApplyWorld, type ApplyWorld } from "./coordinator-apply-fixture.js";

let w: ApplyWorld;
let laneId = "";

beforeAll(async () => {
  w = await startApplyWorld();
});
afterAll(async () => {
  await w?.close();
});

const t0 = Date.now();
const debug = (e: unknown): void => {
  if (process.env.LK_DEBUG) console.log(Date.now() - t0, JSON.stringify(e).slice(0, 300));
};

function deps(count = 1): LaneCommandDeps {
  const policy = w.policy(count);
  return { policy, github: w.github, store: w.store, inventory: w.inventory, dispatcher: w.dispatcher, audit: w.audit, engine: w.engine(policy) };
}

function phases(records: readonly AuditRecord[], action: string, lane: string): string[] {
  return records.filter((r) => r.action === action && r.laneId === lane).map((r) => r.phase);
}

async function hostReports(pred: (lanes: { laneId: string; draining: boolean; state: number }[]) => boolean, what: string): Promise<void> {
  await eventually(async () => {
    const s = await w.inventory.latest(HOST);
    return s !== undefined && pred(s.snapshot.lanes);
  }, what);
}

describe("coordinator apply: full lifecycle on a real agent", () => {
  it("apply creates the lane: online on GitHub with exactly the canonical labels, record active, audited", async () => {
    const policy = w.policy(1);
    const { plan } = await observeAndPlan({ policy, github: w.github, store: w.store, inventory: w.inventory });
    expect(plan.actions.map((a) => a.kind)).toEqual(["create"]);
    laneId = plan.actions[0]!.laneId;
    const report = await w.engine(policy).run(plan, { onEvent: debug });
    expect(report.outcomes.map((o) => [o.kind, o.status, o.code ?? ""])).toEqual([["create", "succeeded", ""]]);

    const runner = (await w.gh.control.listRunners()).find((r) => r.name === laneId);
    expect(runner?.status).toBe("online");
    expect([...(runner?.labels ?? [])].sort()).toEqual(["linux", "lk-host-build01", `lk-lane-${laneId}`, "lk-managed", `lk-pool-${POOL}`].sort());
    const rec = await w.store.get(laneId);
    expect(rec).toMatchObject({ state: "active", hostId: HOST, runnerId: runner?.id });
    expect(existsSync(join(w.sd.unitDir, `lanekeeper-lane-${laneId}.service`))).toBe(true);
    expect(phases(await w.auditRecords(), "create", laneId)).toEqual(["planned", "started", "succeeded"]);
    // The registration token never reached the audit chain or the lane record.
    const text = await readFile(w.auditPath, "utf8");
    expect(text).not.toMatch(/"token"|registration_token|ACTIONS_RUNNER_INPUT/i);
  });

  it("re-running apply converges to an empty plan (nothing left to do)", async () => {
    await hostReports((lanes) => lanes.some((l) => l.laneId === laneId), "the lane in the host inventory");
    const { plan } = await observeAndPlan({ policy: w.policy(1), github: w.github, store: w.store, inventory: w.inventory });
    expect(plan.actions).toEqual([]);
  });

  it("lanes drain: labels reduced to lk-lane-<id> + lk-draining, agent drained, record draining (operator), idle wait audited", async () => {
    const report = await runLaneCommand(deps(), "drain", laneId, { operator: "alice", onEvent: debug });
    expect(report.outcomes.map((o) => [o.kind, o.status, o.code ?? ""])).toEqual([["drain", "succeeded", ""]]);
    const runner = (await w.gh.control.listRunners()).find((r) => r.name === laneId);
    expect([...(runner?.labels ?? [])].sort()).toEqual(["lk-draining", `lk-lane-${laneId}`].sort());
    expect(await w.store.get(laneId)).toMatchObject({ state: "draining", drainReason: "operator" });
    await hostReports((lanes) => lanes.some((l) => l.laneId === laneId && l.draining), "the agent's drain mark");
    expect(phases(await w.auditRecords(), "drain", laneId)).toEqual(["planned", "started", "succeeded"]);
    // No job is picked up by the drained lane: not for the capacity label, nor for a (misused) pool, host or
    // managed label, which a drained lane no longer carries.
    const jobs = await Promise.all(
      [["linux"], [`lk-pool-${POOL}`], ["lk-host-build01"], ["lk-managed"]].map((labels) =>
        w.gh.control.createJob("acme/api", { labels, durationMs: 100 }),
      ),
    );
    await new Promise((r) => setTimeout(r, 1500));
    for (const job of jobs) {
      expect((await w.gh.control.getJob(job.id)).status).toBe("queued");
      await w.gh.control.cancelJob(job.id);
    }
  });

  it("lanes restart: drain, restart, verify online, restore the canonical labels; the record is active again", async () => {
    const before = (await w.gh.control.listRunners()).find((r) => r.name === laneId);
    const report = await runLaneCommand(deps(), "restart", laneId, { operator: "alice", onEvent: debug });
    expect(report.outcomes.map((o) => [o.kind, o.status, o.code ?? ""])).toEqual([["restart", "succeeded", ""]]);
    const after = (await w.gh.control.listRunners()).find((r) => r.name === laneId);
    expect(after?.id).toBe(before?.id);
    expect(after?.status).toBe("online");
    expect([...(after?.labels ?? [])].sort()).toEqual(["linux", "lk-host-build01", `lk-lane-${laneId}`, "lk-managed", `lk-pool-${POOL}`].sort());
    expect(await w.store.get(laneId)).toMatchObject({ state: "active" });
    expect((await w.store.get(laneId))?.drainReason).toBeUndefined();
    await hostReports((lanes) => lanes.some((l) => l.laneId === laneId && !l.draining), "the agent undrained");
    expect(phases(await w.auditRecords(), "restart", laneId)).toEqual(["planned", "started", "succeeded"]);
    // Back in service: it takes a job again.
    const job = await w.gh.control.createJob("acme/api", { labels: ["linux"], durationMs: 100 });
    await eventually(async () => (await w.gh.control.getJob(job.id)).conclusion === "success", "the job to run on the restarted lane");
  });

  it("apply relabels a lane whose capability labels drifted from its pool", async () => {
    const { plan, report } = await w.apply(1, {}, {}, { capability: ["linux", "gpu"] });
    expect(plan.actions.map((a) => [a.kind, a.reason.code])).toEqual([["relabel", "LABEL_DRIFT"]]);
    expect(report.outcomes.map((o) => o.status)).toEqual(["succeeded"]);
    const runner = (await w.gh.control.listRunners()).find((r) => r.name === laneId);
    expect([...(runner?.labels ?? [])].sort()).toEqual(["gpu", "linux", "lk-host-build01", `lk-lane-${laneId}`, "lk-managed", `lk-pool-${POOL}`].sort());
    expect(phases(await w.auditRecords(), "relabel", laneId)).toEqual(["planned", "started", "succeeded"]);
    // And back, so the rest of the suite sees the canonical set of the default policy.
    expect((await w.apply(1)).report.outcomes.map((o) => [o.kind, o.status])).toEqual([["relabel", "succeeded"]]);
  });

  it("lanes remove: drain, stop, deregister, delete unit and directory, verify gone (GitHub 404 and host inventory)", async () => {
    const runnerId = (await w.store.get(laneId))?.runnerId;
    expect(runnerId).toBeGreaterThan(0);
    const report = await runLaneCommand(deps(), "remove", laneId, { operator: "alice", onEvent: debug });
    expect(report.outcomes.map((o) => [o.kind, o.status, o.code ?? ""])).toEqual([["remove", "succeeded", ""]]);
    expect((await w.gh.control.listRunners()).find((r) => r.name === laneId)).toBeUndefined();
    expect(await w.github.getRunner("acme/api", runnerId!)).toBeUndefined();
    expect(existsSync(join(w.sd.unitDir, `lanekeeper-lane-${laneId}.service`))).toBe(false);
    expect(existsSync(w.agent.parts.dirs.dir(laneId))).toBe(false);
    expect(await w.store.get(laneId)).toBeUndefined();
    const s = await w.inventory.latest(HOST);
    expect(s?.snapshot.lanes.map((l) => l.laneId)).not.toContain(laneId);
    expect(phases(await w.auditRecords(), "remove", laneId)).toEqual(["planned", "started", "succeeded"]);
  });

  it("apply carries out a plan's actions side by side, at most applyConcurrency at once, and reports them in plan order", async () => {
    const seq = (await w.auditRecords()).length;
    const created = await w.apply(3, { onEvent: debug });
    expect(created.report.outcomes.map((o) => [o.kind, o.status])).toEqual([["create", "succeeded"], ["create", "succeeded"], ["create", "succeeded"]]);
    expect(created.report.outcomes.map((o) => o.laneId)).toEqual(created.plan.actions.map((a) => a.laneId));
    // All three started before the first of them finished (the fixture's policy keeps the default, 4).
    const phasesInOrder = (await w.auditRecords()).slice(seq).filter((r) => r.action === "create").map((r) => r.phase);
    expect(phasesInOrder.lastIndexOf("started")).toBeLessThan(phasesInOrder.indexOf("succeeded"));
    for (const o of created.report.outcomes) expect((await w.gh.control.listRunners()).find((r) => r.name === o.laneId)?.status).toBe("online");

    // With applyConcurrency 1 the same engine runs them one after another: each ends before the next starts.
    const seq2 = (await w.auditRecords()).length;
    // A lane is removed only once an inventory shows it idle on its host: under load the latest snapshot may
    // predate the last create, so plan again on each new snapshot until all three are seen (or 60 s pass).
    const replan = () => observeAndPlan({ policy: w.policy(0), github: w.github, store: w.store, inventory: w.inventory }, { maxRemovals: 3 });
    let { plan } = await replan();
    for (const until = Date.now() + 60_000; plan.actions.length < 3 && Date.now() < until; ) {
      await w.inventory.nextSnapshot(5_000);
      ({ plan } = await replan());
    }
    expect(plan.actions.map((a) => a.kind)).toEqual(["remove", "remove", "remove"]);
    const removed = await w.engine(w.policy(0), { concurrency: 1 }).run(plan, { onEvent: debug });
    expect(removed.outcomes.map((o) => o.status)).toEqual(["succeeded", "succeeded", "succeeded"]);
    const removes = (await w.auditRecords()).slice(seq2).filter((r) => r.action === "remove" && r.phase !== "planned").map((r) => r.phase);
    expect(removes).toEqual(["started", "succeeded", "started", "succeeded", "started", "succeeded"]);
  });

  it("the audit chain verifies locally and its copy in the LK_AUDIT stream verifies too", async () => {
    const local = verifyAuditChain(await readFile(w.auditPath, "utf8"));
    expect(local.ok).toBe(true);
    const jsm = await w.coord.jetstreamManager();
    const stream = await verifyStreamChains(jsm);
    expect(stream.ok).toBe(true);
    const mine = stream.subjects.find((s) => s.subject === w.audit.streamSubject);
    expect(mine?.result.count).toBe(local.count);
  });
});
