import type { Policy } from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import { buildInputs, hostPolicy, makePolicy, type FleetExtras, type LaneFixture } from "@lanekeeper/testing";
import { planFromWorld } from "../context/observe-world.js";
import type { Plan } from "./plan-types.js";

const NOW = 1_800_000_000_000;
const S = "acme/api";
const P = "linux-x64";
const OP = "op-0123456789abcdef";

function policy(count: number): Policy {
  return makePolicy({
    hosts: { h1: hostPolicy(1, true, 4), h2: hostPolicy(2, true, 4) },
    scopes: { [S]: { optIn: true } },
    pools: { [P]: { labels: ["linux", "x64"], backend: "systemd", mode: "persistent", runnerVersion: "2.330.0" } },
    lanes: [{ scope: S, pool: P, count, hosts: ["h1", "h2"] }],
  });
}

/** A lane whose create a coordinator started 20 s ago (record only, unless the fixture adds more). */
function creating(n: number, hostId: string, p: Partial<LaneFixture> = {}): LaneFixture {
  return {
    laneId: `${P}-l${n}`,
    scope: S,
    pool: P,
    hostId,
    record: { state: "creating", createdAtMs: NOW - 20_000, updatedAtMs: NOW - 20_000, operationId: `${OP}${n}`, runnerId: undefined },
    registration: false,
    hostLane: false,
    ...p,
  };
}

function run(pol: Policy, lanes: LaneFixture[], live: string[] | undefined, extras: FleetExtras = {}): Plan {
  const i = buildInputs(pol, lanes, { nowMs: NOW, ...extras });
  return planFromWorld(i.policy, {
    observed: i.observed,
    records: i.records,
    observedAtMs: NOW,
    ...(live === undefined ? {} : { liveOperations: new Set(live) }),
  });
}

const summary = (p: Plan): string[] => p.actions.map((a) => `${a.kind}:${a.laneId}:${a.reason.code}`);

describe("interrupted creates (a coordinator killed mid-apply)", () => {
  it("a create whose intent never reached the host is resumed at once under the same lane id, and plan says why", () => {
    const p = run(policy(2), [creating(1, "h1"), creating(2, "h2")], []);
    expect(summary(p)).toEqual([`create:${P}-l1:CREATE_INTERRUPTED`, `create:${P}-l2:CREATE_INTERRUPTED`]);
    const c = p.actions[0];
    if (c?.kind !== "create") throw new Error("expected a create");
    expect(c.spec.laneId).toBe(`${P}-l1`);
    expect(c.spec.labels).toContain(`lk-lane-${P}-l1`);
    expect(c.guards[0]).toEqual({ kind: "record-revision", laneId: `${P}-l1`, revision: 1 });
    expect(c.evidence).toContainEqual({ source: "operation", operationId: `${OP}1`, lease: "gone" });
    expect(c.evidence).toContainEqual({ source: "absent", what: "host-lane", where: "h1" });
    expect(p.warnings.filter((w) => w.code === "CREATE_INTERRUPTED").map((w) => w.laneId)).toEqual([`${P}-l1`, `${P}-l2`]);
    // The records still count: no extra lanes are created on top of the resumed ones.
    expect(p.counts.create).toBe(2);
    expect(p.groups[0]).toMatchObject({ desired: 2, current: 2 });
  });

  it("a create still running in another coordinator (live lease) is left to it: no action, no warning", () => {
    const p = run(policy(1), [creating(1, "h1")], [`${OP}1`]);
    expect(p.actions).toEqual([]);
    expect(p.warnings.map((w) => w.code)).not.toContain("CREATE_INTERRUPTED");
  });

  it("without lease information nothing is concluded (the planner's grace applies, as before)", () => {
    const p = run(policy(1), [creating(1, "h1")], undefined);
    expect(p.actions).toEqual([]);
  });

  it("an intent that took effect (the host reports the lane) is never sent again; the record completes once online", () => {
    const p = run(policy(1), [creating(1, "h1", { hostLane: { runnerId: 0 } })], []);
    expect(p.actions).toEqual([]);
    expect(p.warnings.find((w) => w.code === "CREATE_INTERRUPTED")?.message).toMatch(/took effect on h1/);
    const online = run(policy(1), [creating(1, "h1", { hostLane: { runnerId: 5000 }, registration: { id: 5000 } })], []);
    expect(summary(online)).toEqual([`update-record:${P}-l1:CREATE_COMPLETED`]);
  });

  it("an unused JIT registration minted before the crash is rolled back with the record, and a replacement planned", () => {
    const p = run(policy(1), [creating(1, "h1", { registration: { id: 7001, status: "offline", busy: false } })], []);
    expect(summary(p)[0]).toBe(`cleanup-orphan:${P}-l1:CREATE_INTERRUPTED`);
    const c = p.actions[0];
    if (c?.kind !== "cleanup-orphan") throw new Error("expected a cleanup");
    expect(c.runnerId).toBe(7001);
    expect(c.steps).toEqual(["delete-registration", "verify-gone", "delete-record"]);
    expect(c.guards.map((g) => g.kind)).toEqual(expect.arrayContaining(["runner-not-busy", "lane-absent-on-host", "runner-identity-labels"]));
    const creates = p.actions.filter((a) => a.kind === "create");
    expect(creates).toHaveLength(1);
    expect(creates[0]?.laneId).not.toBe(`${P}-l1`);
  });

  it("a registration that is online or busy although the host has no lane is left to a person", () => {
    const p = run(policy(1), [creating(1, "h1", { registration: { id: 7001, status: "online", busy: true } })], []);
    expect(p.actions.filter((a) => a.reason.code === "CREATE_INTERRUPTED")).toEqual([]);
    expect(p.warnings.find((w) => w.code === "CREATE_INTERRUPTED")?.message).toMatch(/nothing is done automatically/);
  });

  it("an inventory from before the record was written proves nothing: it waits", () => {
    const p = run(policy(1), [creating(1, "h1")], [], { inventory: { h1: { receivedAtMs: NOW - 30_000 } } });
    expect(p.actions).toEqual([]);
    expect(p.warnings.find((w) => w.code === "CREATE_INTERRUPTED")?.message).toMatch(/waiting for a fresh inventory/);
  });

  it("a record older than the registration grace is rolled back instead, and replaced at once", () => {
    const old = creating(1, "h1", { record: { state: "creating", createdAtMs: NOW - 600_000, updatedAtMs: NOW - 600_000, operationId: `${OP}1` } });
    const p = run(policy(1), [old], []);
    expect(summary(p)[0]).toBe(`forget-record:${P}-l1:CREATE_INTERRUPTED`);
    expect(p.actions.filter((a) => a.kind === "create")).toHaveLength(1);
    expect(p.actions.some((a) => a.kind === "mark-orphan")).toBe(false);
  });

  it("a removal running in another coordinator is left to it (no second RESUME_REMOVE)", () => {
    const removing = { laneId: `${P}-l1`, scope: S, pool: P, hostId: "h1", record: { state: "removing" as const, operationId: `${OP}1` } };
    expect(summary(run(policy(0), [removing], []))).toEqual([`remove:${P}-l1:RESUME_REMOVE`]);
    const p = run(policy(0), [removing], [`${OP}1`]);
    expect(p.actions).toEqual([]);
    expect(p.warnings.map((w) => w.code)).toContain("OPERATION_IN_FLIGHT");
  });
});

/** A lane whose drain a coordinator started 20 s ago: busy with a job, the record says draining. */
function draining(n: number, hostId: string, p: Partial<LaneFixture> = {}): LaneFixture {
  return {
    laneId: `${P}-l${n}`,
    scope: S,
    pool: P,
    hostId,
    record: { state: "draining", drainReason: "scale-down", updatedAtMs: NOW - 20_000, operationId: `${OP}${n}` },
    registration: { busy: true },
    hostLane: { jobRunning: true, draining: false },
    ...p,
  };
}

const drainedLabels = (n: number): string[] => [`lk-lane-${P}-l${n}`, "lk-draining"];

describe("interrupted drains (the record says draining, the drain's coordinator is gone)", () => {
  it("a drain that died after writing the record is resumed with the label swap and the agent's drain: the lane takes no new job", () => {
    const p = run(policy(1), [draining(1, "h1"), { laneId: `${P}-l2`, scope: S, pool: P, hostId: "h2" }], []);
    expect(summary(p)).toEqual([`drain:${P}-l1:DRAIN_INTERRUPTED`]);
    const d = p.actions[0];
    if (d?.kind !== "drain") throw new Error("expected a drain");
    expect(d.steps).toEqual(["write-record", "set-draining-labels", "send-drain"]);
    expect(d.drainReason).toBe("scale-down");
    // Claimed by compare-and-set on the record as read: two coordinators never both resume it.
    expect(d.guards[0]).toEqual({ kind: "record-revision", laneId: `${P}-l1`, revision: 1 });
    expect(d.guards.map((g) => g.kind)).toEqual(expect.arrayContaining(["lane-marker-valid", "lane-not-held", "runner-id-matches", "runner-identity-labels"]));
    expect(d.evidence).toContainEqual({ source: "operation", operationId: `${OP}1`, lease: "gone" });
    // Nothing waits for or stops the job: a resumed drain only takes new work away.
    expect(d.steps).not.toContain("wait-idle");
    expect(p.warnings.find((w) => w.code === "DRAIN_INTERRUPTED")?.message).toMatch(/still carries linux,x64.*not told/);
  });

  it("a step that took effect is not repeated: labels swapped, only the agent is told", () => {
    const p = run(policy(1), [draining(1, "h1", { registration: { busy: true, labels: drainedLabels(1) } }), { laneId: `${P}-l2`, scope: S, pool: P, hostId: "h2" }], []);
    const d = p.actions.find((a) => a.kind === "drain");
    expect(d?.steps).toEqual(["write-record", "send-drain"]);
    const agentDone = run(policy(1), [draining(1, "h1", { hostLane: { jobRunning: true, draining: true } }), { laneId: `${P}-l2`, scope: S, pool: P, hostId: "h2" }], []);
    expect(agentDone.actions.find((a) => a.kind === "drain")?.steps).toEqual(["write-record", "set-draining-labels"]);
  });

  it("a drain that finished (labels swapped, agent draining) gets nothing: no action, no warning, the lane waits for its job", () => {
    const done = draining(1, "h1", { registration: { busy: true, labels: drainedLabels(1) }, hostLane: { jobRunning: true, draining: true } });
    const p = run(policy(1), [done, { laneId: `${P}-l2`, scope: S, pool: P, hostId: "h2" }], []);
    expect(p.actions).toEqual([]);
    expect(p.warnings.map((w) => w.code)).not.toContain("DRAIN_INTERRUPTED");
  });

  it("a drain still running in another coordinator is left to it, with an OPERATION_IN_FLIGHT warning", () => {
    const p = run(policy(1), [draining(1, "h1"), { laneId: `${P}-l2`, scope: S, pool: P, hostId: "h2" }], [`${OP}1`]);
    expect(p.actions).toEqual([]);
    expect(p.warnings.find((w) => w.code === "OPERATION_IN_FLIGHT")?.message).toMatch(/its drain .* is running in another coordinator/);
  });

  it("without lease information nothing is concluded about a drain", () => {
    const p = run(policy(1), [draining(1, "h1"), { laneId: `${P}-l2`, scope: S, pool: P, hostId: "h2" }], undefined);
    expect(p.actions).toEqual([]);
  });

  it("an idle half-drained lane is removed by the group pass (whose removal swaps the labels itself), not drained again", () => {
    const idle = draining(1, "h1", { registration: { busy: false }, hostLane: { jobRunning: false, draining: false } });
    const p = run(policy(1), [idle, { laneId: `${P}-l2`, scope: S, pool: P, hostId: "h2" }], []);
    expect(summary(p)).toEqual([`remove:${P}-l1:SCALE_DOWN`]);
  });

  it("an operator's drain is resumed as the operator's (the group pass leaves it alone afterwards)", () => {
    const op = draining(1, "h1", { record: { state: "draining", drainReason: "operator", updatedAtMs: NOW - 20_000, operationId: `${OP}1` } });
    const p = run(policy(2), [op, { laneId: `${P}-l2`, scope: S, pool: P, hostId: "h2" }], []);
    const d = p.actions.find((a) => a.kind === "drain");
    if (d?.kind !== "drain") throw new Error("expected a drain");
    expect(d.drainReason).toBe("operator");
  });

  it("an inventory from before the record was written proves nothing about the agent: only GitHub's side is resumed", () => {
    const p = run(policy(1), [draining(1, "h1"), { laneId: `${P}-l2`, scope: S, pool: P, hostId: "h2" }], [], { inventory: { h1: { receivedAtMs: NOW - 30_000 } } });
    expect(p.actions.find((a) => a.kind === "drain")?.steps).toEqual(["write-record", "set-draining-labels"]);
    const unknown = run(
      policy(1),
      [draining(1, "h1", { registration: { busy: true, labels: drainedLabels(1) } }), { laneId: `${P}-l2`, scope: S, pool: P, hostId: "h2" }],
      [],
      { inventory: { h1: { receivedAtMs: NOW - 30_000 } } },
    );
    expect(unknown.actions).toEqual([]);
    expect(unknown.warnings.find((w) => w.code === "DRAIN_INTERRUPTED")?.message).toMatch(/waiting for a fresh inventory from h1/);
  });
});

describe("interrupted removals", () => {
  const removing = (p: Partial<LaneFixture> = {}): LaneFixture => ({
    laneId: `${P}-l1`,
    scope: S,
    pool: P,
    hostId: "h1",
    record: { state: "removing", operationId: `${OP}1`, updatedAtMs: NOW - 20_000 },
    registration: { labels: drainedLabels(1), status: "offline" },
    ...p,
  });

  it("the host removed the lane before the coordinator died: the remove intent is not sent again, only GitHub's side and the record", () => {
    const p = run(policy(0), [removing({ hostLane: false })], []);
    expect(summary(p)).toEqual([`remove:${P}-l1:RESUME_REMOVE`]);
    const r = p.actions[0];
    expect(r?.steps).toEqual(["write-record", "delete-registration", "verify-gone", "delete-record"]);
    expect(r?.steps).not.toContain("send-remove");
    expect(r?.guards.map((g) => g.kind)).toEqual(expect.arrayContaining(["record-revision", "lane-absent-on-host", "runner-id-matches", "runner-not-busy"]));
  });

  it("the lane still on its host: the removal resumes with the drain steps that did not take effect, then waits for idle before any stop", () => {
    const fresh = run(policy(0), [removing({ registration: { status: "online" } })], []);
    expect(fresh.actions[0]?.steps).toEqual(["write-record", "set-draining-labels", "send-drain", "wait-idle", "mint-remove-token", "send-remove", "delete-registration", "verify-gone", "delete-record"]);
    // Labels swapped before the crash: not swapped again; the agent was not told yet.
    const labels = run(policy(0), [removing()], []);
    expect(labels.actions[0]?.steps).toEqual(["write-record", "send-drain", "wait-idle", "mint-remove-token", "send-remove", "delete-registration", "verify-gone", "delete-record"]);
    // Both took effect (the crash came during the wait for idle): the drain is not repeated at all.
    const both = run(policy(0), [removing({ hostLane: { draining: true } })], []);
    const r = both.actions[0];
    expect(r?.steps).toEqual(["write-record", "wait-idle", "mint-remove-token", "send-remove", "delete-registration", "verify-gone", "delete-record"]);
    expect(r?.reason.message).toMatch(/labels swapped, h1 draining: not done again/);
    expect(r?.guards.map((g) => g.kind)).toEqual(expect.arrayContaining(["record-revision", "no-job-evidence", "runner-not-busy"]));
    expect(r?.guards.filter((g) => g.kind === "record-revision")).toHaveLength(1);
  });

  it("with the host unknown nothing is concluded from the lane's absence there", () => {
    const p = run(policy(0), [removing({ hostLane: false })], [], { knownHosts: ["h2"] });
    expect(p.actions.filter((a) => a.kind === "remove" && !a.steps.includes("send-remove"))).toEqual([]);
    expect(summary(p)).toEqual([`remove:${P}-l1:RESUME_REMOVE`]);
  });
});
