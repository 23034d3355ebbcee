import { describe, expect, it } from "vitest";
import { plan } from "../plan/planner.js";
import { budgetUsage } from "../github/create-budget.js";
import { buildInputs, hostPolicy, makePolicy } from "@lanekeeper/testing";
import { planToJson, planToText } from "./render-plan.js";

const NOW = 1_800_000_000_000;

describe("plan output: the GitHub create budget", () => {
  it("shows the budget's use and the creates it deferred, in text and --json", () => {
    const pol = makePolicy({
      hosts: { h1: hostPolicy(1, true, 8) },
      scopes: { "acme/api": { optIn: true } },
      pools: { eph: { labels: ["linux"], backend: "systemd", mode: "ephemeral", runnerVersion: "2.330.0" } },
      lanes: [{ scope: "acme/api", pool: "eph", count: 5, hosts: ["h1"] }],
    });
    const i = buildInputs(pol, [], { nowMs: NOW });
    const mints = Array.from({ length: 12 }, (_, k) => NOW - 1000 * (k + 1));
    const createBudget = budgetUsage([...mints, NOW - 30 * 60_000], { perMinute: 14, perHour: 500 }, NOW);
    const p = plan(i.policy, { ...i.observed, createBudget }, i.records, { nowMs: NOW });
    expect(planToText(p, { notes: [] })).toContain("GitHub create budget: 12/14 this minute, 13/500 this hour, 3 create(s) deferred to a later cycle");
    expect(planToJson(p, { notes: [] }).createBudget).toMatchObject({ thisMinute: 12, perMinute: 14, thisHour: 13, allowance: 2, deferred: 3 });
  });
});
