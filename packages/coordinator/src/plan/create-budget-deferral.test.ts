import { LaneState, type Policy } from "@lanekeeper/shared";
import { buildInputs, hostPolicy, makePolicy, type LaneFixture } from "@lanekeeper/testing";
import { describe, expect, it } from "vitest";
import { budgetUsage } from "../github/create-budget.js";
import type { Plan } from "./plan-types.js";
import { plan } from "./planner.js";

const NOW = 1_800_000_000_000;
const S = "acme/api";
const P = "linux-x64";

function policy(count: number, mode: "ephemeral" | "persistent"): Policy {
  return makePolicy({
    hosts: { h1: hostPolicy(1, true, 8), h2: hostPolicy(2, true, 8) },
    scopes: { [S]: { optIn: true } },
    pools: { [P]: { labels: ["linux"], backend: "systemd", mode, runnerVersion: "2.330.0" } },
    lanes: [{ scope: S, pool: P, count, hosts: ["h1", "h2"] }],
  });
}

/** Plan with the shared budget at `used` mints this minute out of `perMinute`. */
function run(pol: Policy, lanes: LaneFixture[], used: number, perMinute: number): Plan {
  const i = buildInputs(pol, lanes, { nowMs: NOW });
  const mints = Array.from({ length: used }, (_, k) => NOW - 500 * (k + 1));
  const createBudget = budgetUsage(mints, { perMinute, perHour: 500 }, NOW);
  return plan(i.policy, { ...i.observed, createBudget }, i.records, { nowMs: NOW });
}

describe("plan: the GitHub create budget", () => {
  it("creates ephemeral lanes only within the budget; the rest are deferred with the budget's figures, never dropped", () => {
    const p = run(policy(5, "ephemeral"), [], 78, 80);
    expect(p.actions.filter((a) => a.kind === "create")).toHaveLength(2);
    expect(p.createBudget).toMatchObject({ thisMinute: 78, perMinute: 80, allowance: 2, deferred: 3 });
    const w = p.warnings.find((x) => x.code === "GITHUB_CREATE_BUDGET");
    expect(w?.message).toMatch(/^3 JIT registration\(s\) of acme\/api\/linux-x64 deferred: the GitHub create budget is used up \(78\/80 this minute, 78\/500 this hour\); they are planned again/);
    // The group still wants 5: the next plan (with room) creates the rest.
    expect(p.groups[0]).toMatchObject({ desired: 5, planned: 2 });
    const later = run(policy(5, "ephemeral"), [], 0, 80);
    expect(later.actions.filter((a) => a.kind === "create")).toHaveLength(5);
    expect(later.createBudget?.deferred).toBe(0);
  });

  it("a used-up budget defers re-arming an ephemeral lane too", () => {
    const unarmed: LaneFixture = { laneId: `${P}-l1`, scope: S, pool: P, hostId: "h1", registration: false, hostLane: { state: LaneState.LANE_STATE_IDLE_UNARMED, runnerId: 0 } };
    expect(run(policy(1, "ephemeral"), [unarmed], 80, 80).actions).toEqual([]);
    expect(run(policy(1, "ephemeral"), [unarmed], 80, 80).createBudget?.deferred).toBe(1);
    expect(run(policy(1, "ephemeral"), [unarmed], 79, 80).actions.map((a) => a.kind)).toEqual(["arm"]);
  });

  it("persistent lanes share one cached registration token per scope: their creates are not held back per lane", () => {
    const p = run(policy(4, "persistent"), [], 80, 80);
    expect(p.actions.filter((a) => a.kind === "create")).toHaveLength(4);
    expect(p.createBudget?.deferred).toBe(0);
  });
});
