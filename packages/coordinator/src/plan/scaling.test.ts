import { LaneMode, LaneState, type Policy, type ScalingPolicy } from "@lanekeeper/shared";
import { buildInputs, hostPolicy, makePolicy, type FleetExtras, type LaneFixture } from "@lanekeeper/testing";
import { describe, expect, it } from "vitest";
import type { DemandJob, DemandSnapshot } from "../observe/demand.js";
import type { Action, PlanActionKind } from "./action.js";
import type { Evidence } from "./evidence.js";
import { groupForJob, jobLabelsMatch, jobsByGroup } from "./job-match.js";
import type { Plan } from "./plan-types.js";
import { plan } from "./planner.js";

const NOW = Date.parse("2026-12-04T12:00:00Z");
const S = "acme/api";
const P = "linux-x64";
const MIN = 60_000;

function policy(scaling: Partial<ScalingPolicy> = {}, mode: "persistent" | "ephemeral" = "persistent"): Policy {
  return makePolicy({
    hosts: { h1: hostPolicy(1, true, 4), h2: hostPolicy(2, true, 4) },
    scopes: { [S]: { optIn: true } },
    pools: { [P]: { labels: ["linux", "x64"], backend: "systemd", mode, runnerVersion: "2.330.0" } },
    lanes: [{ scope: S, pool: P, hosts: ["h1", "h2"], scaling: { min: 0, max: 6, idle: 0, scaleDownAfter: "5m", schedules: [], ...scaling } }],
  });
}

function job(id: number, p: Partial<DemandJob> = {}): DemandJob {
  return { id, runId: 1, scope: S, repository: S, labels: ["linux"], status: "queued", createdAtMs: NOW - 10_000 + id, source: "webhook", ...p };
}

function demand(jobs: DemandJob[], reconciled = true): DemandSnapshot {
  return { jobs, reconciledAtMs: reconciled ? { [S]: NOW - 5000 } : {} };
}

/** A lane idle since `idleForMs` ago (host state since then, created a day ago). */
function lane(n: number, p: Partial<LaneFixture> = {}, idleForMs = 60 * MIN): LaneFixture {
  return { laneId: `${P}-l${n}`, scope: S, pool: P, hostId: n % 2 === 1 ? "h1" : "h2", hostLane: { stateSinceMs: NOW - idleForMs }, ...p };
}

function run(pol: Policy, lanes: LaneFixture[], d: DemandSnapshot | undefined, nowMs = NOW, extras: FleetExtras = {}): Plan {
  const i = buildInputs(pol, lanes, { nowMs, ...extras });
  return plan(i.policy, { ...i.observed, demand: d }, i.records, { nowMs });
}

const ofKind = <K extends PlanActionKind>(p: Plan, k: K): Extract<Action, { kind: K }>[] =>
  p.actions.filter((a): a is Extract<Action, { kind: K }> => a.kind === k);
const demandEvidence = (a: Action): Extract<Evidence, { source: "demand" }> | undefined =>
  a.evidence.find((e): e is Extract<Evidence, { source: "demand" }> => e.source === "demand");

describe("job matching (GitHub's rule)", () => {
  it("matches when every runs-on label is offered, ignoring case; self-hosted only when the pool lists it", () => {
    expect(jobLabelsMatch(["Linux", "X64"], ["linux", "x64"])).toBe(true);
    expect(jobLabelsMatch(["self-hosted", "linux"], ["linux", "x64", "lk-managed"])).toBe(false);
    expect(jobLabelsMatch(["self-hosted", "linux"], ["self-hosted", "linux"])).toBe(true);
    expect(jobLabelsMatch([], ["linux"])).toBe(false);
  });

  it("counts a job several groups match once, for the first pool by name", () => {
    const groups = [
      { scope: S, pool: "zeta", labels: ["linux"] },
      { scope: S, pool: "alpha", labels: ["linux", "gpu"] },
      { scope: "acme/other", pool: "aaa", labels: ["linux"] },
    ];
    expect(groupForJob(job(1), groups)?.pool).toBe("alpha");
    expect(groupForJob(job(1, { labels: ["lk-pool-zeta"] }), groups)?.pool).toBe("zeta");
    const by = jobsByGroup([job(1), job(1), job(2, { labels: ["gpu"] }), job(3, { labels: ["arm64"] })], groups);
    expect([...by.entries()].map(([k, js]) => [k, js.map((j) => j.id)])).toEqual([[`${S}\u0000alpha`, [1, 2]]]);
  });
});

describe("plan: queue-driven scale-up", () => {
  it("creates one lane per queued job at once, with the job ids as evidence", () => {
    const p = run(policy(), [], demand([job(11), job(12)]));
    const creates = ofKind(p, "create");
    expect(creates).toHaveLength(2);
    expect(creates[0]?.reason.code).toBe("SCALE_UP");
    expect(demandEvidence(creates[0]!)).toMatchObject({ queuedJobIds: [11, 12], queued: 2, wanted: 2, known: true });
    expect(p.groups[0]?.scaling).toMatchObject({ queued: 2, running: 0, idle: 0, wanted: 2, demandKnown: true, queuedJobIds: [11, 12] });
  });

  it("counts several queued events for one job once (garm #73)", () => {
    const p = run(policy(), [], demand([job(11), job(11, { source: "rest" }), job(11)]));
    expect(ofKind(p, "create")).toHaveLength(1);
  });

  it("ignores jobs no lane of the pool could run, and jobs of other scopes", () => {
    const p = run(policy(), [], demand([job(11, { labels: ["self-hosted", "linux"] }), job(12, { scope: "acme/web" })]));
    expect(ofKind(p, "create")).toHaveLength(0);
  });

  it("an idle lane that takes another job first means no extra create (actions-runner-controller #1219)", () => {
    // One idle lane, one queued job: the idle lane serves it.
    expect(ofKind(run(policy(), [lane(1)], demand([job(11)])), "create")).toHaveLength(0);
    // The lane has taken a job (the agent sees it), the demand still says queued: still no create.
    const p = run(policy(), [lane(1, { hostLane: { jobRunning: true, stateSinceMs: NOW - MIN } })], demand([job(11)]));
    expect(ofKind(p, "create")).toHaveLength(0);
    expect(p.groups[0]?.scaling).toMatchObject({ running: 1, queued: 0, wanted: 1 });
  });

  it("caps at max and keeps the rest of the demand for when room appears (garm #47)", () => {
    const jobs = [1, 2, 3, 4, 5, 6].map((n) => job(n));
    const first = run(policy({ max: 3 }), [], demand(jobs));
    expect(ofKind(first, "create")).toHaveLength(3);
    expect(first.groups[0]?.scaling?.why).toContain("capped at max 3 (3 job(s) wait for room)");
    // Three lanes busy with jobs 1-3, jobs 4-6 queued: nothing more, nothing forgotten.
    const busy = [1, 2, 3].map((n) => lane(n, { registration: { busy: true, name: `r${n}` } }));
    const running = jobs.map((j) => (j.id <= 3 ? { ...j, status: "in_progress" as const, runnerName: `r${j.id}` } : j));
    const second = run(policy({ max: 3 }), busy, demand(running));
    expect(second.actions).toEqual([]);
    expect(second.groups[0]?.scaling).toMatchObject({ running: 3, queued: 3, wanted: 3 });
    // Job 1 completes: its lane is idle and kept (jobs 4-6 still wait), not removed.
    const done = running.map((j) => (j.id === 1 ? { ...j, status: "completed" as const, completedAtMs: NOW - 10 * MIN } : j));
    const third = run(policy({ max: 3 }), [lane(1, { registration: { name: "r1" } }), ...busy.slice(1)], demand(done));
    expect(third.actions).toEqual([]);
    expect(third.groups[0]?.scaling).toMatchObject({ running: 2, idle: 1, queued: 3, wanted: 3 });
  });

  it("keeps idle lanes ready beyond the queued jobs", () => {
    const p = run(policy({ idle: 2 }), [lane(1, { hostLane: { jobRunning: true } })], demand([job(11)]));
    // busy 1, job 11 presumed taken by it (the demand does not show the lane's job), + 2 idle = 3 wanted.
    expect(ofKind(p, "create")).toHaveLength(2);
    expect(p.groups[0]?.scaling).toMatchObject({ wanted: 3, running: 1, queued: 0 });
  });
});

describe("plan: queue-driven scale-down", () => {
  it("removes lanes idle for scaleDownAfter, never below min, within the removal budget", () => {
    const lanes = [1, 2, 3, 4].map((n) => lane(n));
    const p = run(policy({ min: 1 }), lanes, demand([]));
    const removes = ofKind(p, "remove");
    expect(removes).toHaveLength(2); // removal budget of 2 per plan
    expect(removes[0]?.reason.code).toBe("SCALE_DOWN");
    expect(removes[0]?.evidence.some((e) => e.source === "idle" && e.idleForMs === 60 * MIN && e.scaleDownAfterMs === 5 * MIN)).toBe(true);
    expect(p.groups[0]?.scaling?.wanted).toBe(1);
  });

  it("waits for scaleDownAfter, and says how long is left", () => {
    const p = run(policy({ scaleDownAfter: "90s" }), [lane(1, {}, 30_000)], demand([]));
    expect(p.actions).toEqual([]);
    expect(p.groups[0]?.scaling?.nextScaleDownInMs).toBe(60_000);
    const later = run(policy({ scaleDownAfter: "90s" }), [lane(1, {}, 90_000)], demand([]));
    expect(ofKind(later, "remove")).toHaveLength(1);
  });

  it("counts idleness from the last job the demand shows completed on the lane", () => {
    const d = demand([job(11, { status: "completed", runnerName: "r1", completedAtMs: NOW - 2 * MIN })]);
    const p = run(policy(), [lane(1, { registration: { name: "r1" } })], d);
    expect(p.actions).toEqual([]);
    expect(p.groups[0]?.scaling?.nextScaleDownInMs).toBe(3 * MIN);
  });

  it("never removes a lane the demand shows running a job, though GitHub's busy flag lags", () => {
    const d = demand([job(11, { status: "in_progress", runnerName: "r1" })]);
    const p = run(policy(), [lane(1, { registration: { name: "r1", busy: false } })], d);
    expect(p.actions).toEqual([]);
    expect(p.groups[0]?.scaling).toMatchObject({ running: 1, wanted: 1, runningJobIds: [11] });
  });

  it("never drains a busy lane to scale down", () => {
    const p = run(policy(), [lane(1, { registration: { busy: true } })], demand([]));
    expect(p.actions).toEqual([]);
  });

  it("does not scale down, and warns, while demand is unknown", () => {
    for (const d of [undefined, demand([], false)]) {
      const p = run(policy({ min: 1 }), [1, 2, 3].map((n) => lane(n)), d);
      expect(p.actions).toEqual([]);
      expect(p.warnings.map((w) => w.code)).toContain("DEMAND_UNKNOWN");
      expect(p.groups[0]?.scaling?.demandKnown).toBe(false);
    }
    // Still brought up to min.
    expect(ofKind(run(policy({ min: 2 }), [], undefined), "create")).toHaveLength(2);
    // A webhook for the scope makes it known even before the first reconciliation.
    const heard = run(policy({ min: 1 }), [1, 2].map((n) => lane(n)), demand([job(11, { status: "completed", runnerName: "x" })], false));
    expect(heard.warnings.map((w) => w.code)).not.toContain("DEMAND_UNKNOWN");
    expect(ofKind(heard, "remove")).toHaveLength(1);
  });
});

describe("plan: ephemeral lanes", () => {
  it("an unarmed ephemeral lane is idle capacity: re-armed, no create for the queued job", () => {
    const unarmed = lane(1, { registration: false, hostLane: { state: LaneState.LANE_STATE_IDLE_UNARMED, mode: LaneMode.LANE_MODE_EPHEMERAL, stateSinceMs: NOW - 1000 } });
    const p = run(policy({}, "ephemeral"), [unarmed], demand([job(11)]));
    expect(p.actions.map((a) => a.kind)).toEqual(["arm"]);
    expect(p.groups[0]?.scaling).toMatchObject({ idle: 1, queued: 1, wanted: 1 });
  });
});

describe("plan: schedules", () => {
  const office = { name: "office", cron: "0 8 * * 1-5", duration: "10h", timezone: "Europe/Berlin", min: 3 };

  it("raises min inside the window, in its time zone, with the schedule as evidence", () => {
    // Friday 2026-12-04 12:00 UTC = 13:00 in Berlin: in force.
    const p = run(policy({ schedules: [office] }), [], demand([]));
    const creates = ofKind(p, "create");
    expect(creates).toHaveLength(3);
    expect(creates[0]?.evidence).toContainEqual({
      source: "schedule",
      name: "office",
      cron: "0 8 * * 1-5",
      timezone: "Europe/Berlin",
      min: 3,
      idle: null,
      startMs: Date.parse("2026-12-04T07:00:00Z"),
      endMs: Date.parse("2026-12-04T17:00:00Z"),
    });
    expect(p.groups[0]?.scaling?.why).toContain("raised to min 3 by schedule office");
    expect(p.groups[0]?.scaling?.schedules).toEqual(["office"]);
  });

  it("window boundaries: the start is inside, the end is outside", () => {
    const at = (iso: string): number => ofKind(run(policy({ schedules: [office] }), [], demand([]), Date.parse(iso)), "create").length;
    expect(at("2026-12-04T06:59:59Z")).toBe(0);
    expect(at("2026-12-04T07:00:00Z")).toBe(3);
    expect(at("2026-12-04T16:59:59Z")).toBe(3);
    expect(at("2026-12-04T17:00:00Z")).toBe(0);
    // Saturday: no window.
    expect(at("2026-12-05T09:00:00Z")).toBe(0);
  });

  it("a schedule may raise idle too", () => {
    const p = run(policy({ schedules: [{ ...office, min: 0, idle: 2 }] }), [], demand([job(11)]));
    expect(ofKind(p, "create")).toHaveLength(3);
    expect(p.groups[0]?.scaling).toMatchObject({ idleTarget: 2, wanted: 3 });
  });

  it("DST: the window starts at the local wall-clock time on both sides of a change, and lasts elapsed time", () => {
    const night = { name: "night", cron: "30 1 * * *", duration: "2h", timezone: "Europe/Berlin", min: 2 };
    const at = (iso: string): number => ofKind(run(policy({ schedules: [night] }), [], demand([]), Date.parse(iso)), "create").length;
    // Sunday 2026-03-29: clocks go from 02:00 to 03:00 CET→CEST. 01:30 CET = 00:30 UTC; two hours later is 02:30 UTC.
    expect(at("2026-03-29T00:29:00Z")).toBe(0);
    expect(at("2026-03-29T00:30:00Z")).toBe(2);
    expect(at("2026-03-29T02:29:00Z")).toBe(2);
    expect(at("2026-03-29T02:30:00Z")).toBe(0);
    // The next day 01:30 CEST = 23:30 UTC the day before.
    expect(at("2026-03-29T23:30:00Z")).toBe(2);
  });

  it("an out-of-window plan falls back to the base min", () => {
    const p = run(policy({ min: 1, schedules: [office] }), [], demand([]), Date.parse("2026-12-05T09:00:00Z"));
    expect(ofKind(p, "create")).toHaveLength(1);
    expect(p.groups[0]?.scaling?.schedules).toEqual([]);
  });
});

describe("plan: fixed count pools have no scaling figures", () => {
  it("does not read demand", () => {
    const pol = makePolicy({
      hosts: { h1: hostPolicy(1, true, 4) },
      scopes: { [S]: { optIn: true } },
      pools: { [P]: { labels: ["linux"], backend: "systemd", mode: "persistent", runnerVersion: "2.330.0" } },
      lanes: [{ scope: S, pool: P, count: 1, hosts: ["h1"] }],
    });
    const p = run(pol, [], demand([job(1), job(2)]));
    expect(ofKind(p, "create")).toHaveLength(1);
    expect(p.groups[0]).toEqual({ scope: S, pool: P, desired: 1, current: 0, planned: 1 });
  });
});
