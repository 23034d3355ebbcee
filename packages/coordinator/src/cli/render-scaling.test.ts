import { buildInputs, hostPolicy, makePolicy } from "@lanekeeper/testing";
import type { Policy } from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import type { DemandJob } from "../observe/demand.js";
import { plan } from "../plan/planner.js";
import { planToJson, planToText } from "./render-plan.js";
import { renderScalingTable } from "./render-scaling.js";

const NOW = Date.parse("2026-12-04T12:00:00Z");
const S = "acme/api";

function policyWith(lanes: Policy["lanes"]): Policy {
  return makePolicy({
    hosts: { h1: hostPolicy(1, true, 4) },
    scopes: { [S]: { optIn: true } },
    pools: {
      "linux-x64": { labels: ["linux"], backend: "systemd", mode: "persistent", runnerVersion: "2.330.0" },
      gpu: { labels: ["gpu"], backend: "systemd", mode: "persistent", runnerVersion: "2.330.0" },
    },
    lanes,
  });
}

const job = (id: number): DemandJob => ({ id, runId: 1, scope: S, repository: S, labels: ["linux"], status: "queued", createdAtMs: NOW - 1000, source: "webhook" });

describe("queue-driven pools in plan output", () => {
  it("prints queued, running, idle, wanted and why per scaling pool, and puts the figures in --json", () => {
    const pol = policyWith([
      { scope: S, pool: "linux-x64", hosts: ["h1"], scaling: { min: 0, max: 2, idle: 0, scaleDownAfter: "5m", schedules: [] } },
      { scope: S, pool: "gpu", count: 1, hosts: ["h1"] },
    ]);
    const i = buildInputs(pol, [], { nowMs: NOW });
    const p = plan(pol, { ...i.observed, demand: { jobs: [job(7), job(8), job(9)], reconciledAtMs: { [S]: NOW } } }, i.records, { nowMs: NOW });
    const text = planToText(p, { notes: [], gaps: [] });
    expect(text).toContain("Queue-driven pools (docs/scaling.md):");
    expect(text).toMatch(/acme\/api\s+linux-x64\s+3\s+0\s+0\s+2 \(0-2\)\s+0 busy \+ 3 queued \+ 0 idle = 3; capped at max 2 \(1 job\(s\) wait for room\)/);
    expect(text).not.toMatch(/acme\/api\s+gpu\s+\d+\s+\d+\s+\d+\s+\d+ \(/); // the fixed pool has no scaling row
    const json = planToJson(p, { notes: [], gaps: [] }) as { groups: { pool: string; scaling?: { queued: number; wanted: number } }[] };
    expect(json.groups.find((g) => g.pool === "linux-x64")?.scaling).toMatchObject({ queued: 3, wanted: 2, queuedJobIds: [7, 8, 9] });
    expect(json.groups.find((g) => g.pool === "gpu")?.scaling).toBeUndefined();
  });

  it("prints nothing when no pool scales with demand", () => {
    const pol = policyWith([{ scope: S, pool: "gpu", count: 1, hosts: ["h1"] }]);
    const i = buildInputs(pol, [], { nowMs: NOW });
    const p = plan(pol, i.observed, i.records, { nowMs: NOW });
    expect(renderScalingTable(p.groups)).toBe("");
    expect(planToText(p, { notes: [], gaps: [] })).not.toContain("Queue-driven pools");
  });
});
