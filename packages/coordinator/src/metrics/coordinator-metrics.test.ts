import { describe, expect, it } from "vitest";
import type { GroupScalingSummary, GroupSummary } from "../plan/plan-types.js";
import { CoordinatorMetrics } from "./coordinator-metrics.js";

function group(scope: string, pool: string, scaling?: Partial<GroupScalingSummary>): GroupSummary {
  const base: GroupScalingSummary = {
    queued: 0,
    running: 0,
    idle: 0,
    starting: 0,
    wanted: 0,
    min: 0,
    max: 10,
    idleTarget: 0,
    demandKnown: true,
    why: "",
    schedules: [],
    queuedJobIds: [],
    runningJobIds: [],
    nextScaleDownInMs: null,
  };
  return { scope, pool, desired: 0, current: 0, planned: 0, ...(scaling ? { scaling: { ...base, ...scaling } } : {}) };
}

describe("coordinator metrics: queue-driven pools", () => {
  it("exports wanted, busy, idle and starting lanes and untaken queued jobs per pool, and drops pools no longer planned", async () => {
    const m = new CoordinatorMetrics();
    m.poolsPlanned([group("acme/api", "linux-x64", { queued: 3, running: 4, idle: 1, starting: 2, wanted: 8 }), group("acme/web", "fixed")]);
    const text = await m.registry.metrics();
    expect(text).toMatch(/^lanekeeper_pool_lanes\{scope="acme\/api",pool="linux-x64",kind="wanted"\} 8$/m);
    expect(text).toMatch(/^lanekeeper_pool_lanes\{scope="acme\/api",pool="linux-x64",kind="busy"\} 4$/m);
    expect(text).toMatch(/^lanekeeper_pool_lanes\{scope="acme\/api",pool="linux-x64",kind="idle"\} 1$/m);
    expect(text).toMatch(/^lanekeeper_pool_lanes\{scope="acme\/api",pool="linux-x64",kind="starting"\} 2$/m);
    expect(text).toMatch(/^lanekeeper_pool_queued_jobs\{scope="acme\/api",pool="linux-x64"\} 3$/m);
    expect(text).not.toContain('pool="fixed"');
    m.poolsPlanned([]);
    expect(await m.registry.metrics()).not.toContain('pool="linux-x64"');
  });
});
