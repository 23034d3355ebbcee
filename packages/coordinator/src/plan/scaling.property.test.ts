/**
 * Property test of the queue-driven scaling rule over random groups and demand (fast-check). The properties are
 * checked against the generated ground truth (which lane is busy, how long each has been idle, which jobs are
 * queued), not against the planner's own view. Replay a failure with
 * `LK_FC_SEED=<seed> LK_FC_PATH=<path> npx vitest run packages/coordinator/src/plan/scaling.property.test.ts`.
 */
import fc from "fast-check";
import { LaneMode, LaneState, type Policy, type ScalingPolicy } from "@lanekeeper/shared";
import { buildInputs, hostPolicy, makePolicy, type LaneFixture } from "@lanekeeper/testing";
import { describe, expect, it } from "vitest";
import type { DemandJob, DemandSnapshot } from "../observe/demand.js";
import type { Plan } from "./plan-types.js";
import { plan } from "./planner.js";

const NOW = Date.parse("2026-12-04T12:00:00Z");
const S = "acme/api";
const P = "linux-x64";
const MAX_REMOVALS = 2;
const RUNS = Number(process.env.LK_FC_RUNS ?? 400);
const SCALE_DOWN = { "30s": 30_000, "5m": 300_000, "10m": 600_000 } as const;

type Kind = "idle" | "busy-github" | "busy-agent" | "busy-demand" | "starting" | "unarmed";

interface LaneGen {
  readonly kind: Kind;
  readonly idleForMs: number;
}

interface World {
  readonly scaling: ScalingPolicy;
  readonly lanes: readonly LaneGen[];
  /** Distinct queued job ids, each delivered `dup` times. */
  readonly queued: readonly { readonly id: number; readonly dup: number }[];
  readonly unrelatedJobs: number;
  readonly demandKnown: boolean;
  readonly scheduleMin: number | undefined;
}

const worldArb: fc.Arbitrary<World> = fc
  .record({
    min: fc.integer({ min: 0, max: 5 }),
    span: fc.integer({ min: 0, max: 6 }),
    idle: fc.integer({ min: 0, max: 3 }),
    scaleDownAfter: fc.constantFrom<keyof typeof SCALE_DOWN>("30s", "5m", "10m"),
    lanes: fc.array(
      fc.record({
        kind: fc.constantFrom<Kind>("idle", "idle", "busy-github", "busy-agent", "busy-demand", "starting", "unarmed"),
        idleForMs: fc.integer({ min: 0, max: 1_200_000 }),
      }),
      { maxLength: 10 },
    ),
    queued: fc.array(fc.record({ id: fc.integer({ min: 1, max: 40 }), dup: fc.integer({ min: 1, max: 3 }) }), { maxLength: 14 }),
    unrelatedJobs: fc.integer({ min: 0, max: 3 }),
    demandKnown: fc.boolean(),
    scheduleMin: fc.option(fc.integer({ min: 0, max: 11 }), { nil: undefined }),
  })
  .map((r) => {
    const max = r.min + r.span;
    const seen = new Set<number>();
    const queued = r.queued.filter((q) => !seen.has(q.id) && (seen.add(q.id), true));
    return {
      scaling: {
        min: r.min,
        max,
        idle: Math.min(r.idle, max),
        scaleDownAfter: r.scaleDownAfter,
        // "* * * * *" for 1h: always in force.
        schedules: r.scheduleMin === undefined ? [] : [{ name: "always", cron: "* * * * *", duration: "1h", timezone: "UTC", min: Math.min(r.scheduleMin, max) }],
      },
      lanes: r.lanes,
      queued,
      unrelatedJobs: r.unrelatedJobs,
      demandKnown: r.demandKnown,
      scheduleMin: r.scheduleMin === undefined ? undefined : Math.min(r.scheduleMin, max),
    };
  });

const laneId = (i: number): string => `${P}-l${String(i).padStart(2, "0")}`;
const runnerOf = (i: number): string => `runner-l${i}`;

function policyOf(w: World): Policy {
  return makePolicy({
    hosts: { h1: hostPolicy(1, true, 20), h2: hostPolicy(2, true, 20) },
    scopes: { [S]: { optIn: true } },
    pools: { [P]: { labels: ["linux", "x64"], backend: "systemd", mode: "persistent", runnerVersion: "2.330.0" } },
    lanes: [{ scope: S, pool: P, hosts: ["h1", "h2"], scaling: w.scaling }],
  });
}

function fixture(i: number, g: LaneGen): LaneFixture {
  const base = { laneId: laneId(i), scope: S, pool: P, hostId: i % 2 === 0 ? "h1" : "h2" };
  const since = NOW - g.idleForMs;
  switch (g.kind) {
    case "idle":
    case "busy-demand":
      return { ...base, registration: { name: runnerOf(i) }, hostLane: { stateSinceMs: since } };
    case "busy-github":
      return { ...base, registration: { name: runnerOf(i), busy: true }, hostLane: { stateSinceMs: since } };
    case "busy-agent":
      return { ...base, registration: { name: runnerOf(i) }, hostLane: { stateSinceMs: since, jobRunning: true } };
    case "starting":
      return { ...base, record: { state: "creating", createdAtMs: NOW - 1000 }, registration: false, hostLane: false };
    case "unarmed":
      return {
        ...base,
        registration: false,
        hostLane: { stateSinceMs: since, state: LaneState.LANE_STATE_IDLE_UNARMED, mode: LaneMode.LANE_MODE_EPHEMERAL },
      };
  }
}

function job(id: number, p: Partial<DemandJob> = {}): DemandJob {
  return { id, runId: id, scope: S, repository: S, labels: ["linux"], status: "queued", createdAtMs: NOW - 100_000 + id, source: "webhook", ...p };
}

function demandOf(w: World, dedupe = false): DemandSnapshot | undefined {
  const jobs: DemandJob[] = [];
  for (const q of w.queued) for (let k = 0; k < (dedupe ? 1 : q.dup); k++) jobs.push(job(q.id));
  w.lanes.forEach((g, i) => {
    if (g.kind === "busy-demand") jobs.push(job(1000 + i, { status: "in_progress", runnerName: runnerOf(i) }));
  });
  for (let k = 0; k < w.unrelatedJobs; k++) jobs.push(job(2000 + k, { labels: ["windows"] }));
  return w.demandKnown ? { jobs, reconciledAtMs: { [S]: NOW - 1000 } } : undefined;
}

function planOf(w: World, dedupe = false): Plan {
  const i = buildInputs(policyOf(w), w.lanes.map((g, n) => fixture(n, g)), { nowMs: NOW });
  return plan(i.policy, { ...i.observed, demand: demandOf(w, dedupe) }, i.records, { nowMs: NOW, maxRemovals: MAX_REMOVALS });
}

const isBusy = (g: LaneGen): boolean => g.kind.startsWith("busy");

/** The rule, restated from the ground truth (a lane busy only by the demand's account looks idle without it). */
function expectedWanted(w: World): number {
  const busy = w.lanes.filter((g) => isBusy(g) && (w.demandKnown || g.kind !== "busy-demand")).length;
  // Busy lanes whose job the demand does not show are presumed to have taken queued jobs.
  const unattributed = w.lanes.filter((g) => g.kind === "busy-github" || g.kind === "busy-agent").length;
  const queued = w.demandKnown ? Math.max(0, w.queued.length - unattributed) : 0;
  const min = Math.max(w.scaling.min, w.scheduleMin ?? 0);
  return Math.max(min, Math.min(busy + queued + w.scaling.idle, w.scaling.max));
}

function check(w: World): void {
  const p = planOf(w);
  const present = w.lanes.length;
  const wanted = expectedWanted(w);
  const creates = p.actions.filter((a) => a.kind === "create").length;
  const removed = p.actions.filter((a) => a.kind === "remove" || a.kind === "drain");
  const byId = new Map(w.lanes.map((g, i) => [laneId(i), g]));

  expect(p.groups[0]?.scaling?.wanted).toBe(wanted);
  // Creates: exactly wanted − present when below (capacity and the create budget suffice here), never past max.
  expect(creates).toBe(Math.max(0, wanted - present));
  expect(present + creates).toBeLessThanOrEqual(Math.max(present, w.scaling.max));
  // Never below min or the schedule's min.
  expect(present + creates - removed.length).toBeGreaterThanOrEqual(Math.min(present, Math.max(w.scaling.min, w.scheduleMin ?? 0)));
  expect(present + creates - removed.length).toBeGreaterThanOrEqual(Math.min(present, wanted));
  // Scale-down: only idle lanes idle for scaleDownAfter, only removals (never a drain), within the budget, only
  // when demand is known.
  expect(removed.length).toBeLessThanOrEqual(MAX_REMOVALS);
  if (!w.demandKnown) expect(removed).toEqual([]);
  for (const a of removed) {
    const g = byId.get(a.laneId);
    expect(a.kind).toBe("remove");
    expect(g === undefined || isBusy(g) || g.kind === "starting").toBe(false);
    expect(g?.idleForMs ?? 0).toBeGreaterThanOrEqual(SCALE_DOWN[w.scaling.scaleDownAfter as keyof typeof SCALE_DOWN]);
  }
  if (creates > 0) expect(removed).toEqual([]);
  // Nothing in the demand is dropped: every distinct queued job not presumed taken is still counted.
  if (w.demandKnown) {
    const unattributed = w.lanes.filter((g) => g.kind === "busy-github" || g.kind === "busy-agent").length;
    expect(p.groups[0]?.scaling?.queued).toBe(Math.max(0, w.queued.length - unattributed));
  }
}

function params(): fc.Parameters<[World]> {
  const seed = process.env.LK_FC_SEED;
  return { numRuns: RUNS, ...(seed === undefined ? {} : { seed: Number(seed), path: process.env.LK_FC_PATH }) };
}

describe("scaling rule (property)", () => {
  it("never above max, never below min, creates = wanted − present, scale-down only of lanes idle long enough", () => {
    fc.assert(fc.property(worldArb, check), params());
  });

  it("several queued events for one job count once (garm #73)", () => {
    fc.assert(
      fc.property(worldArb, (w) => {
        expect(planOf(w).actions).toEqual(planOf(w, true).actions);
      }),
      params(),
    );
  });

  it("demand above max gives max lanes, and the rest stays counted until served", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 8 }), (max, extra) => {
        const queued = Array.from({ length: max + extra }, (_, k) => ({ id: k + 1, dup: 1 }));
        const w: World = {
          scaling: { min: 0, max, idle: 0, scaleDownAfter: "5m", schedules: [] },
          lanes: [],
          queued,
          unrelatedJobs: 0,
          demandKnown: true,
          scheduleMin: undefined,
        };
        expect(planOf(w).actions.filter((a) => a.kind === "create")).toHaveLength(max);
        // Later: max lanes busy with the first jobs (the demand shows them in progress), the rest still queued.
        const later: World = { ...w, lanes: Array.from({ length: max }, () => ({ kind: "busy-demand" as const, idleForMs: 0 })), queued: queued.slice(max) };
        const p = planOf(later);
        expect(p.actions).toEqual([]);
        expect(p.groups[0]?.scaling).toMatchObject({ queued: extra, wanted: max });
        // One lane finishes: it stays (idle, serving the queue), nothing is removed.
        const freed: World = { ...later, lanes: [{ kind: "idle", idleForMs: 3_600_000 }, ...later.lanes.slice(1)] };
        const q = planOf(freed);
        expect(q.actions).toEqual([]);
        expect(q.groups[0]?.scaling).toMatchObject({ queued: extra, wanted: max, idle: 1 });
      }),
      { numRuns: 60 },
    );
  });
});
