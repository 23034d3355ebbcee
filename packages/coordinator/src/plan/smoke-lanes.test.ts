import { describe, expect, it } from "vitest";
import type { Policy } from "@lanekeeper/shared";
import { buildInputs, hostPolicy, makePolicy, type LaneFixture } from "@lanekeeper/testing";
import { plan } from "./planner.js";
import type { Plan } from "./plan-types.js";

const NOW = 1_800_000_000_000;
const S = "acme/api";
const P = "linux-x64";

function policy(count: number): Policy {
  return makePolicy({
    hosts: { h1: hostPolicy(1, true, 4) },
    scopes: { [S]: { optIn: true } },
    pools: { [P]: { labels: ["linux", "x64"], backend: "systemd", mode: "persistent", runnerVersion: "2.330.0" } },
    lanes: [{ scope: S, pool: P, count, hosts: ["h1"] }],
  });
}

/** A smoke lane: identity labels plus the unique smoke label only; lease until `leaseUntilMs`. */
function smoke(leaseUntilMs: number, p: Partial<LaneFixture> = {}): LaneFixture {
  const laneId = "smoke-0a1b2c3d";
  const label = "lanekeeper-smoke-0a1b2c3d";
  return {
    laneId,
    scope: S,
    pool: P,
    hostId: "h1",
    record: { smoke: { runId: laneId, label, leaseUntilMs } },
    registration: { labels: ["lk-managed", `lk-lane-${laneId}`, "lk-host-h1", `lk-pool-${P}`, label] },
    ...p,
  };
}

const real: LaneFixture = { laneId: `${P}-l1`, scope: S, pool: P, hostId: "h1" };

function run(pol: Policy, lanes: LaneFixture[]): Plan {
  const i = buildInputs(pol, lanes, { nowMs: NOW });
  return plan(i.policy, i.observed, i.records, { nowMs: NOW });
}

describe("plan: lanes of a smoke run", () => {
  it("leaves a smoke lane alone while its lease runs: no scale-down, no relabel, not counted toward the group", () => {
    // count 1 with one real lane: converged; the smoke lane is neither excess nor label drift.
    const p = run(policy(1), [real, smoke(NOW + 60_000)]);
    expect(p.actions).toEqual([]);
    expect(p.warnings.map((w) => w.code)).toEqual(["SMOKE_LANE"]);
    expect(p.groups).toEqual([{ scope: S, pool: P, desired: 1, current: 1, planned: 1 }]);
    // With count 0 the real lane goes and the smoke lane still stays.
    expect(run(policy(0), [real, smoke(NOW + 60_000)]).actions.map((a) => `${a.kind}:${a.laneId}`)).toEqual([`remove:${P}-l1`]);
  });

  it("removes a smoke lane whose lease expired once idle (SMOKE_EXPIRED), through the removal guards", () => {
    const p = run(policy(1), [real, smoke(NOW - 1)]);
    expect(p.actions.map((a) => `${a.kind}:${a.laneId}:${a.reason.code}`)).toEqual(["remove:smoke-0a1b2c3d:SMOKE_EXPIRED"]);
    expect(p.actions[0]?.guards.map((g) => g.kind)).toContain("no-job-evidence");
  });

  it("never removes an expired smoke lane that runs a job: a warning names the command", () => {
    const p = run(policy(1), [real, smoke(NOW - 1, { hostLane: { jobRunning: true } })]);
    expect(p.actions).toEqual([]);
    const w = p.warnings.find((x) => x.code === "SMOKE_LANE_LEFT");
    expect(w?.message).toContain("lanekeeper lanes remove smoke-0a1b2c3d");
  });
});
