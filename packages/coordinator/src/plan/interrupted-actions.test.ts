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
