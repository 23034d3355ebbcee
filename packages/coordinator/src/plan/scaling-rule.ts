/**
 * The scaling rule of a queue-driven group (docs/scaling.md), as a pure function of the group's lanes, the
 * demand and the plan's instant:
 *
 *   wanted = clamp(busy + queued jobs no lane has taken + idle, min (raised by schedules in force), max)
 *
 * The group pass (`group-scaling.ts`) turns `wanted` into creates (wanted − lanes present) or into removals of
 * lanes idle for at least `scaleDownAfter`.
 */
import { parseDurationString, type ScalingPolicy } from "@lanekeeper/shared";
import { MAX_EVIDENCE_JOB_IDS } from "../limits.js";
import type { LaneView } from "../observe/classify.js";
import type { DemandJob, DemandSnapshot } from "../observe/demand.js";
import type { Evidence } from "./evidence.js";
import { isIdle } from "./lane-idle.js";
import type { GroupLane } from "./plan-context.js";
import { effectiveFloor, type ActiveSchedule } from "./schedules.js";

/** How one lane of a scaling group stands. */
export type LaneActivity = "busy" | "idle" | "starting";

/** The decision for one scaling group, with everything `plan` shows about it. */
export interface ScalingDecision {
  readonly wanted: number;
  readonly min: number;
  readonly max: number;
  readonly idleTarget: number;
  /** Whether demand for the scope is known; when not, nothing is scaled down. */
  readonly demandKnown: boolean;
  /** Queued jobs counted toward `wanted`, oldest first. */
  readonly queuedJobs: readonly DemandJob[];
  /** Queued jobs presumed taken by busy lanes whose own job the demand does not show yet. */
  readonly takenJobs: readonly DemandJob[];
  /** Jobs the demand shows in progress on this group's lanes. */
  readonly runningJobs: readonly DemandJob[];
  readonly busy: number;
  readonly idle: number;
  readonly starting: number;
  readonly activity: ReadonlyMap<string, LaneActivity>;
  /** Per idle lane: since when it has been idle. */
  readonly idleSinceMs: ReadonlyMap<string, number>;
  readonly scaleDownAfterMs: number;
  readonly schedules: readonly ActiveSchedule[];
  /** One line: how `wanted` came about. */
  readonly why: string;
}

/** Inputs of {@link decideScaling}. */
export interface ScalingInputs {
  readonly scope: string;
  readonly pool: string;
  readonly scaling: ScalingPolicy;
  /** The group's lanes that count as present (busy, idle or starting). */
  readonly lanes: readonly GroupLane[];
  /** Lanes counted as present without a view to judge (e.g. unverified orphans). */
  readonly extraPresent: number;
  /** The jobs this group is demand for (see `job-match.ts`). */
  readonly jobs: readonly DemandJob[];
  /** Every job of the scope by runner name, to see which lane runs what (whatever group a job counted for). */
  readonly jobsByRunner: ReadonlyMap<string, readonly DemandJob[]>;
  readonly demandKnown: boolean;
  readonly nowMs: number;
}

/** Whether demand for `scope` is known: a snapshot, and the scope reconciled or heard of by webhook. */
export function demandKnownFor(demand: DemandSnapshot | undefined, scope: string): boolean {
  if (demand === undefined) return false;
  if (Object.hasOwn(demand.reconciledAtMs, scope)) return true;
  return demand.jobs.some((j) => j.scope === scope && j.source === "webhook");
}

/** The names a lane's runner may carry: its registration's, the one its host reports, and its lane id. */
export function runnerNamesOf(v: LaneView): string[] {
  const names = [v.laneId];
  if (v.registration !== undefined) names.push(v.registration.name);
  if (v.hostLane !== undefined && v.hostLane.runnerName !== "") names.push(v.hostLane.runnerName);
  return [...new Set(names)];
}

function jobsOn(v: LaneView, byRunner: ReadonlyMap<string, readonly DemandJob[]>): DemandJob[] {
  return runnerNamesOf(v).flatMap((n) => byRunner.get(n) ?? []);
}

/**
 * The lane's activity. Busy: GitHub says busy, OR the agent reports a job, OR the demand shows a job in progress
 * on its runner (GitHub's busy flag lags the job). Idle: none of those and {@link isIdle} (fresh inventory, no
 * job; an unarmed ephemeral lane is idle capacity the `arm` action re-arms). Anything else is starting (being
 * created, not online yet, or not observable).
 */
export function laneActivity(v: LaneView, byRunner: ReadonlyMap<string, readonly DemandJob[]>): LaneActivity {
  if (v.registration?.busy === true || v.hostLane?.jobRunning === true) return "busy";
  if (jobsOn(v, byRunner).some((j) => j.status === "in_progress")) return "busy";
  return isIdle(v) ? "idle" : "starting";
}

/**
 * Since when an idle lane has been idle: the latest of its creation, its host state change (came online,
 * finished an ephemeral job) and the completion of the last job the demand shows on its runner.
 */
export function idleSince(gl: GroupLane, byRunner: ReadonlyMap<string, readonly DemandJob[]>): number {
  let t = gl.record.createdAtMs;
  if (gl.view.hostLane !== undefined) t = Math.max(t, gl.view.hostLane.stateSinceMs);
  for (const j of jobsOn(gl.view, byRunner)) if (j.completedAtMs !== undefined) t = Math.max(t, j.completedAtMs);
  return t;
}

const byAge = (a: DemandJob, b: DemandJob): number => a.createdAtMs - b.createdAtMs || a.id - b.id;

/** The scaling rule. Pure: the same inputs give the same decision. */
export function decideScaling(input: ScalingInputs): ScalingDecision {
  const { scaling, nowMs, jobsByRunner } = input;
  const floor = effectiveFloor(scaling, nowMs);
  const activity = new Map<string, LaneActivity>();
  const idleSinceMs = new Map<string, number>();
  const running = new Map<number, DemandJob>();
  let busy = 0;
  let idle = 0;
  let starting = input.extraPresent;
  let unattributedBusy = 0;
  for (const gl of input.lanes) {
    const a = laneActivity(gl.view, jobsByRunner);
    activity.set(gl.view.laneId, a);
    if (a === "busy") {
      busy++;
      const mine = jobsOn(gl.view, jobsByRunner).filter((j) => j.status === "in_progress");
      for (const j of mine) running.set(j.id, j);
      if (mine.length === 0) unattributedBusy++;
    } else if (a === "idle") {
      idle++;
      idleSinceMs.set(gl.view.laneId, idleSince(gl, jobsByRunner));
    } else {
      starting++;
    }
  }
  // A busy lane whose job the demand does not show has most likely taken one of the queued jobs (the webhook
  // saying so is late or lost): the oldest queued ones are presumed taken, so that job is not counted twice
  // (an idle lane that takes another job first must not cause an extra create).
  const queuedAll = input.demandKnown ? input.jobs.filter((j) => j.status === "queued").sort(byAge) : [];
  const taken = queuedAll.slice(0, Math.min(unattributedBusy, queuedAll.length));
  const queued = queuedAll.slice(taken.length);
  const raw = busy + queued.length + floor.idle;
  const wanted = Math.max(floor.min, Math.min(raw, scaling.max));
  const parts = [`${busy} busy + ${queued.length} queued + ${floor.idle} idle = ${raw}`];
  if (!input.demandKnown) parts.unshift("demand unknown (queued jobs not counted, no scale-down)");
  if (raw > scaling.max) parts.push(`capped at max ${scaling.max} (${raw - scaling.max} job(s) wait for room)`);
  else if (raw < floor.min) parts.push(floor.minFrom === undefined ? `raised to min ${floor.min}` : `raised to min ${floor.min} by schedule ${floor.minFrom}`);
  if (floor.idle > scaling.idle) parts.push(`idle ${floor.idle} from schedule`);
  return {
    wanted,
    min: floor.min,
    max: scaling.max,
    idleTarget: floor.idle,
    demandKnown: input.demandKnown,
    queuedJobs: queued,
    takenJobs: taken,
    runningJobs: [...running.values()].sort(byAge),
    busy,
    idle,
    starting,
    activity,
    idleSinceMs,
    scaleDownAfterMs: parseDurationString(scaling.scaleDownAfter),
    schedules: floor.active,
    why: parts.join("; "),
  };
}

/** The evidence of a decision: the demand, then each schedule in force. */
export function decisionEvidence(scope: string, pool: string, d: ScalingDecision): Evidence[] {
  const ids = (jobs: readonly DemandJob[]): number[] => jobs.slice(0, MAX_EVIDENCE_JOB_IDS).map((j) => j.id);
  return [
    {
      source: "demand",
      scope,
      pool,
      known: d.demandKnown,
      queuedJobIds: ids(d.queuedJobs),
      queued: d.queuedJobs.length,
      takenJobIds: ids(d.takenJobs),
      runningJobIds: ids(d.runningJobs),
      busy: d.busy,
      idle: d.idle,
      starting: d.starting,
      idleTarget: d.idleTarget,
      min: d.min,
      max: d.max,
      wanted: d.wanted,
    },
    ...d.schedules.map(
      (s): Evidence => ({
        source: "schedule",
        name: s.name,
        cron: s.cron,
        timezone: s.timezone,
        min: s.min,
        idle: s.idle ?? null,
        startMs: s.startMs,
        endMs: s.endMs,
      }),
    ),
  ];
}
