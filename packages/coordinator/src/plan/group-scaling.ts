import { canonicalLabels, Health, LaneState, LanekeeperError, type PoolPolicy, type ScalingPolicy } from "@lanekeeper/shared";
import type { LaneView } from "../observe/classify.js";
import type { DemandJob } from "../observe/demand.js";
import type { ReasonCode } from "./action.js";
import type { Evidence } from "./evidence.js";
import type { Guard } from "./guard.js";
import { jobsByGroup, type MatchGroup } from "./job-match.js";
import { isIdle } from "./lane-idle.js";
import { hostGuards, removalGuards } from "./lane-guards.js";
import { newLaneId } from "./lane-id.js";
import { laneSpecFor } from "./lane-spec.js";
import { MAX_EVIDENCE_JOB_IDS } from "../limits.js";
import { cmp, type GroupLane, type PlanContext } from "./plan-context.js";
import { groupKey, Placement, type PlacementRequest } from "./placement.js";
import type { GroupScalingSummary } from "./plan-types.js";
import { decideScaling, decisionEvidence, demandKnownFor, type ScalingDecision } from "./scaling-rule.js";
import { STEPS } from "./steps.js";

export { isIdle } from "./lane-idle.js";

/**
 * What the policy wants of one group: the summed `count` of its `lanes` entries (or its `scaling`) and the hosts
 * they list.
 */
interface GroupWant {
  readonly scope: string;
  readonly pool: string;
  readonly count: number;
  readonly scaling?: ScalingPolicy | undefined;
  readonly hosts: readonly string[];
}

/** The demand, sorted out once per plan for every scaling group. */
interface DemandView {
  /** Jobs per `scope\0pool` (each job once, see `job-match.ts`). */
  readonly byGroup: ReadonlyMap<string, readonly DemandJob[]>;
  /** Jobs per scope, then runner name. */
  readonly byRunner: ReadonlyMap<string, ReadonlyMap<string, readonly DemandJob[]>>;
}

/**
 * The group pass: every group (scope, pool) the policy declares or that has lanes converges on its `count`.
 * Scale up reuses drained lanes, then creates on eligible hosts (spread; existing lanes never move); scale down
 * removes idle lanes only (unhealthy, offline, newest first, within the removal budget) and drains busy ones;
 * drained lanes nobody needs and lanes on hosts no longer listed go once idle.
 */
export function groupPass(ctx: PlanContext, byGroup: Map<string, GroupLane[]>): void {
  const desired = new Map<string, GroupWant>();
  for (const l of ctx.policy.lanes) {
    const key = `${l.scope}\u0000${l.pool}`;
    const prev = desired.get(key);
    // The policy schema refuses duplicates; merging keeps a hand-built policy meaningful anyway.
    desired.set(key, {
      scope: l.scope,
      pool: l.pool,
      count: (prev?.count ?? 0) + (l.count ?? 0),
      scaling: l.scaling ?? prev?.scaling,
      hosts: [...new Set([...(prev?.hosts ?? []), ...l.hosts])],
    });
  }
  const demand = demandView(ctx, [...desired.values()]);
  const laneHosts: string[] = [];
  const laneGroups: string[] = [];
  for (const v of ctx.cls.lanes) {
    if (v.hostId === "") continue;
    const r = v.record;
    if (v.hostLane !== undefined || (r !== undefined && r.state !== "orphaned")) {
      laneHosts.push(v.hostId);
      laneGroups.push(groupKey(v.scope, v.pool, v.hostId));
    }
  }
  const placement = new Placement(ctx.hostStatus, laneHosts, laneGroups);
  const keys = [...new Set([...desired.keys(), ...byGroup.keys()])].sort(cmp);
  for (const key of keys) {
    const [scope = "", pool = ""] = key.split("\u0000");
    const want = desired.get(key) ?? { scope, pool, count: 0, hosts: [] };
    group(ctx, want, byGroup.get(key) ?? [], placement, demand);
  }
}

function demandView(ctx: PlanContext, wants: readonly GroupWant[]): DemandView {
  const jobs = ctx.observed.demand?.jobs ?? [];
  // Only scaling groups take demand: a fixed group's size does not follow it, so a job both could run must not
  // be credited to the fixed one and leave the scaling one short.
  const groups: MatchGroup[] = wants
    .filter((w) => w.scaling !== undefined)
    .map((w) => ({ scope: w.scope, pool: w.pool, labels: ctx.pool(w.pool)?.labels ?? [] }));
  const byRunner = new Map<string, Map<string, DemandJob[]>>();
  for (const j of jobs) {
    if (j.runnerName === undefined || j.runnerName === "") continue;
    let m = byRunner.get(j.scope);
    if (m === undefined) byRunner.set(j.scope, (m = new Map<string, DemandJob[]>()));
    const list = m.get(j.runnerName);
    if (list === undefined) m.set(j.runnerName, [j]);
    else list.push(j);
  }
  return { byGroup: groups.length === 0 ? new Map() : jobsByGroup(jobs, groups), byRunner };
}

function group(
  ctx: PlanContext,
  want: GroupWant,
  lanes: readonly GroupLane[],
  placement: Placement,
  demand: DemandView,
): void {
  const { scope, pool } = want;
  const declared = isDeclared(ctx, scope, pool);
  // An undeclared group wants zero lanes: its lanes are excess wherever they are, not misplaced.
  const allowed = new Set(declared ? want.hosts : lanes.map((gl) => gl.view.hostId));
  const frozen: GroupLane[] = [];
  const misplaced: GroupLane[] = [];
  const drained: GroupLane[] = [];
  const serving: GroupLane[] = [];
  for (const gl of lanes) {
    const { view, record } = gl;
    if (view.class === "orphaned") continue; // replaced; the orphan path deals with it
    const hostBlocked = ctx.blocked(scope, view.hostId) !== undefined;
    if (hostBlocked || view.hostLane?.held === true || record.state === "needs-attention" || view.class === "needs-attention") {
      frozen.push(gl);
    } else if (record.state === "draining" && record.drainReason !== "operator") {
      drained.push(gl);
    } else if (!allowed.has(view.hostId)) {
      misplaced.push(gl);
    } else {
      serving.push(gl);
    }
  }
  const unverified = ctx.unverified.get(`${scope}\u0000${pool}`) ?? 0;
  let current = serving.length + frozen.length + unverified;
  const before = current;
  const scopeBlocked = ctx.scopeBlocked(scope);
  const createIds: string[] = [];
  let decision: ScalingDecision | undefined;
  let scalingEvidence: Evidence[] = [];
  if (want.scaling !== undefined && declared) {
    const key = `${scope}\u0000${pool}`;
    const demandKnown = demandKnownFor(ctx.observed.demand, scope);
    decision = decideScaling({
      scope,
      pool,
      scaling: want.scaling,
      lanes: [...serving, ...frozen],
      extraPresent: unverified,
      jobs: demand.byGroup.get(key) ?? [],
      jobsByRunner: demand.byRunner.get(scope) ?? new Map<string, DemandJob[]>(),
      demandKnown,
      nowMs: ctx.now,
    });
    scalingEvidence = decisionEvidence(scope, pool, decision);
    if (!demandKnown) {
      ctx.warn(
        "DEMAND_UNKNOWN",
        `demand for ${scope} is unknown (${ctx.observed.demand === undefined ? "no demand snapshot" : "not reconciled yet and no webhook seen"}): ` +
          `${scope}/${pool} is kept at least at its current size and queued jobs are not counted until it is known`,
        { scope, pool },
      );
    }
  }
  const target = decision?.wanted ?? want.count;

  if (!scopeBlocked && current < target) {
    // Reuse drained lanes on allowed hosts first: cheaper than a new lane, and nothing moves.
    for (const gl of drained.filter((d) => allowed.has(d.view.hostId)).sort(byNewest)) {
      if (current >= target) break;
      if (gl.view.class !== "managed" || !ctx.permits(gl.view, ["undrain"])) continue;
      const poolPolicy = ctx.pool(pool);
      const labels = poolPolicy === undefined ? undefined : ctx.canonical(gl.view, poolPolicy);
      if (labels === undefined) break;
      ctx.push(gl.view, "undrain", { code: "REUSE_DRAINED", message: `scale-up: reuse the drained lane (${current} of ${target})` }, {
        runnerId: gl.view.registration?.id,
        labels,
      }, hostGuards(ctx.policy, gl.view, "undrain"), [], scalingEvidence);
      current++;
    }
    const poolPolicy = ctx.pool(pool);
    if (poolPolicy !== undefined && ctx.canCreate(pool)) {
      while (current < target) {
        if (ctx.createBudget <= 0) {
          ctx.warn("CREATE_BUDGET", `${target - current} more lane(s) of ${scope}/${pool} wait for a later plan (create limit per plan)`, {
            scope,
            pool,
          });
          break;
        }
        // An ephemeral lane's create mints a JIT config: within the shared create budget, the rest wait.
        if (poolPolicy.mode === "ephemeral" && !ctx.takeJit(scope, pool, target - current)) break;
        const id = create(ctx, scope, pool, poolPolicy, want.hosts, placement, decision === undefined ? undefined : { decision, evidence: scalingEvidence, present: current });
        if (id === undefined) {
          break;
        }
        createIds.push(id);
        ctx.createBudget--;
        current++;
      }
    }
  }

  let nextScaleDownInMs: number | null = null;
  if (decision !== undefined) {
    // Queue-driven scale-down: only lanes idle for scaleDownAfter, never a busy one, never while demand is unknown.
    const d = decision;
    let excess = current - target;
    if (!scopeBlocked && excess > 0 && d.demandKnown) {
      const idleLanes = serving
        .filter((gl) => gl.record.state === "active" && gl.view.class === "managed" && !gl.view.pending && d.activity.get(gl.view.laneId) === "idle")
        .sort(byRemovalPreference);
      for (const gl of idleLanes) {
        if (excess <= 0) break;
        const since = d.idleSinceMs.get(gl.view.laneId) ?? ctx.now;
        const idleFor = ctx.now - since;
        if (idleFor < d.scaleDownAfterMs) {
          const left = d.scaleDownAfterMs - idleFor;
          nextScaleDownInMs = nextScaleDownInMs === null ? left : Math.min(nextScaleDownInMs, left);
          continue;
        }
        if (!ctx.permits(gl.view, ["drain", "remove"])) continue;
        if (!ctx.spendRemoval()) break;
        ctx.push(
          gl.view,
          "remove",
          { code: "SCALE_DOWN", message: `queue-driven: ${current} lanes for ${target} wanted (${d.why}); idle for ${Math.round(idleFor / 1000)}s (scaleDownAfter ${want.scaling?.scaleDownAfter ?? ""}), ${removalWhy(gl)}` },
          { runnerId: gl.view.registration?.id },
          removalGuards(ctx.policy, gl.view),
          [],
          [...scalingEvidence, { source: "idle", laneId: gl.view.laneId, idleSinceMs: since, idleForMs: idleFor, scaleDownAfterMs: d.scaleDownAfterMs }],
        );
        excess--;
        current--;
      }
    }
  }

  // Scale down: only when more lanes serve than wanted. Frozen lanes count but are never chosen.
  let excess = decision === undefined ? current - target : 0;
  const reasonDown = (busy: boolean): ReasonCode =>
    target === 0 && !declared ? (busy ? "NOT_IN_POLICY_BUSY" : "NOT_IN_POLICY") : busy ? "SCALE_DOWN_BUSY" : "SCALE_DOWN";
  if (!scopeBlocked && excess > 0) {
    const candidates = serving.filter((gl) => gl.record.state === "active" && gl.view.class === "managed" && !gl.view.pending);
    const idle = candidates.filter((gl) => isIdle(gl.view)).sort(byRemovalPreference);
    for (const gl of idle) {
      if (excess <= 0) break;
      if (!ctx.permits(gl.view, ["drain", "remove"])) continue;
      if (!ctx.spendRemoval()) break;
      remove(ctx, gl.view, reasonDown(false), `${current} lanes for ${target} wanted; idle, ${removalWhy(gl)}`, []);
      excess--;
      current--;
    }
    if (excess > 0 && (ctx.opts.drainBusyOnScaleDown ?? true)) {
      const busy = candidates.filter((gl) => !isIdle(gl.view) && canDrain(gl.view)).sort(byRemovalPreference);
      for (const gl of busy) {
        if (excess <= 0) break;
        if (!ctx.permits(gl.view, ["drain"])) continue;
        if (!ctx.spendRemoval()) break;
        drain(ctx, gl.view, reasonDown(true), "scale-down", "busy: drained so it takes no new job; removed by a later plan once idle");
        excess--;
        current--;
      }
    }
    if (excess > 0) {
      ctx.warn(
        "SCALE_DOWN_WAITING",
        `${excess} lane(s) of ${scope}/${pool} above the wanted ${target} cannot be removed now (busy, job evidence unknown, ` +
          "or the removal limit per plan was reached)",
        { scope, pool },
      );
    }
  }

  // Drained lanes nobody needs: remove them once idle.
  if (!scopeBlocked) {
    for (const gl of drained) {
      if (ctx.targeted.has(gl.view.laneId)) continue;
      if (!isIdle(gl.view) || gl.view.class !== "managed") continue;
      if (!ctx.permits(gl.view, ["drain", "remove"])) continue;
      if (!ctx.spendRemoval()) break;
      remove(ctx, gl.view, "SCALE_DOWN", "drained and idle: removed", []);
    }
    // Lanes on hosts no longer listed for the group: their replacements are created above; they go when idle.
    for (const gl of misplaced) {
      if (gl.view.class !== "managed" || gl.record.state !== "active") continue;
      const idle = isIdle(gl.view);
      if (!idle && !canDrain(gl.view)) continue;
      if (!ctx.permits(gl.view, idle ? ["drain", "remove"] : ["drain"])) continue;
      if (!ctx.spendRemoval()) break;
      if (idle) remove(ctx, gl.view, "MISPLACED", `host ${gl.view.hostId} is no longer listed for ${scope}/${pool}`, createIds);
      else drain(ctx, gl.view, "MISPLACED_BUSY", "move", `host ${gl.view.hostId} is no longer listed; busy, drained first`);
    }
  }
  ctx.groups.push({
    scope,
    pool,
    desired: target,
    current: before,
    planned: current,
    ...(decision === undefined ? {} : { scaling: scalingSummary(decision, nextScaleDownInMs) }),
  });
}

function scalingSummary(d: ScalingDecision, nextScaleDownInMs: number | null): GroupScalingSummary {
  return {
    queued: d.queuedJobs.length,
    running: d.busy,
    idle: d.idle,
    starting: d.starting,
    wanted: d.wanted,
    min: d.min,
    max: d.max,
    idleTarget: d.idleTarget,
    demandKnown: d.demandKnown,
    why: d.why,
    schedules: d.schedules.map((s) => s.name),
    queuedJobIds: d.queuedJobs.slice(0, MAX_EVIDENCE_JOB_IDS).map((j) => j.id),
    runningJobIds: d.runningJobs.slice(0, MAX_EVIDENCE_JOB_IDS).map((j) => j.id),
    nextScaleDownInMs,
  };
}

function isDeclared(ctx: PlanContext, scope: string, pool: string): boolean {
  return ctx.policy.lanes.some((l) => l.scope === scope && l.pool === pool);
}

/** What a queue-driven create rests on. */
interface ScalingCause {
  readonly decision: ScalingDecision;
  readonly evidence: readonly Evidence[];
  /** Lanes present before this create. */
  readonly present: number;
}

function create(
  ctx: PlanContext,
  scope: string,
  pool: string,
  poolPolicy: PoolPolicy,
  hosts: readonly string[],
  placement: Placement,
  cause: ScalingCause | undefined,
): string | undefined {
  const backend = poolPolicy.backend;
  const req: PlacementRequest = { scope, pool, backend, image: backend === "container" ? poolPolicy.image : undefined };
  const choice = placement.choose(hosts, req);
  for (const [h, e] of choice.refused) {
    if (e.ok || e.why === "full") continue;
    if (e.why === "not-allowed") {
      ctx.warn("HOST_NOT_ALLOWED", `host ${h} does not take ${scope}/${pool}: ${e.detail}. Extend control in its agent config`, {
        hostId: h,
        scope,
        pool,
      });
    } else {
      ctx.blocked(scope, h);
    }
  }
  if (choice.hostId === undefined) {
    const why = [...choice.refused.entries()].map(([h, e]) => (e.ok ? h : `${h}: ${e.detail}`));
    ctx.warn("NO_CAPACITY", `no host can take another lane of ${scope}/${pool}${why.length > 0 ? ` (${why.join("; ")})` : ""}`, {
      scope,
      pool,
    });
    return undefined;
  }
  const laneId = newLaneId(scope, pool, ctx.takenIds);
  ctx.takenIds.add(laneId);
  const hostId = choice.hostId;
  let labels: string[];
  try {
    labels = canonicalLabels({ laneId, hostId, pool, capabilityLabels: poolPolicy.labels });
  } catch (err) {
    if (!(err instanceof LanekeeperError)) throw err;
    ctx.warn("INVALID_LANE", `lanes of ${scope}/${pool} cannot be created: ${err.message}`, { scope, pool });
    return undefined;
  }
  const spec = laneSpecFor(ctx.policy, scope, pool, poolPolicy, laneId, labels);
  const guards: Guard[] = [
    { kind: "record-revision", laneId, revision: null },
    { kind: "scope-opted-in", scope },
    { kind: "host-opted-in", hostId },
    { kind: "host-allows", hostId, action: "create", scope, pool, backend, ...(req.image === undefined ? {} : { image: req.image }) },
    { kind: "host-capacity", hostId, maxLanes: choice.capacity },
    { kind: "lane-id-unused", laneId },
  ];
  const evidence: Evidence[] =
    cause === undefined
      ? [
          choice.evidence,
          { source: "policy", path: `lanes[${scope}/${pool}].count`, value: ctx.policy.lanes.find((l) => l.scope === scope && l.pool === pool)?.count ?? 0 },
        ]
      : [choice.evidence, ...cause.evidence];
  const id = `create:${laneId}`;
  ctx.actionIds.add(id);
  ctx.actions.push({
    id,
    kind: "create",
    laneId,
    scope,
    pool,
    hostId,
    reason:
      cause === undefined
        ? { code: "SCALE_UP", message: `fewer lanes than the ${scope}/${pool} policy wants` }
        : { code: "SCALE_UP", message: `queue-driven: ${cause.present} lanes for ${cause.decision.wanted} wanted (${cause.decision.why})` },
    guards,
    evidence,
    steps: STEPS.create,
    dependsOn: [],
    spec,
  });
  ctx.targeted.add(laneId);
  return id;
}

function remove(ctx: PlanContext, v: LaneView, code: ReasonCode, message: string, dependsOn: readonly string[]): void {
  ctx.push(v, "remove", { code, message }, { runnerId: v.registration?.id }, removalGuards(ctx.policy, v), dependsOn);
}

function drain(ctx: PlanContext, v: LaneView, code: ReasonCode, drainReason: "scale-down" | "move", message: string): void {
  ctx.push(v, "drain", { code, message }, { runnerId: v.registration?.id, drainReason }, hostGuards(ctx.policy, v, "drain"));
}

function canDrain(v: LaneView): boolean {
  return v.registration !== undefined && v.hostLane !== undefined && !v.hostLane.draining;
}

function unhealthy(v: LaneView): boolean {
  const hl = v.hostLane;
  return (
    hl !== undefined &&
    (hl.state === LaneState.LANE_STATE_FAILED ||
      hl.state === LaneState.LANE_STATE_NEEDS_ATTENTION ||
      hl.state === LaneState.LANE_STATE_STOPPED ||
      hl.health === Health.HEALTH_CRASH_LOOP ||
      hl.health === Health.HEALTH_REGISTRATION_DELETED)
  );
}

function removalWhy(gl: GroupLane): string {
  if (unhealthy(gl.view)) return "unhealthy";
  if (gl.view.registration?.status !== "online") return "offline on GitHub";
  return "newest";
}

/** Unhealthy first, then offline on GitHub, then newest, then lane id. */
function byRemovalPreference(a: GroupLane, b: GroupLane): number {
  const ua = unhealthy(a.view) ? 0 : 1;
  const ub = unhealthy(b.view) ? 0 : 1;
  if (ua !== ub) return ua - ub;
  const oa = a.view.registration?.status === "online" ? 1 : 0;
  const ob = b.view.registration?.status === "online" ? 1 : 0;
  if (oa !== ob) return oa - ob;
  return byNewest(a, b);
}

function byNewest(a: GroupLane, b: GroupLane): number {
  return b.record.createdAtMs - a.record.createdAtMs || cmp(a.record.laneId, b.record.laneId);
}

