import { DRAINING_LABEL, Health, LaneState } from "@lanekeeper/shared";
import { DEFAULT_CREATE_TIMEOUT_MS } from "../limits.js";
import type { LaneView } from "../observe/classify.js";
import type { StoredLaneRecord } from "../observe/lane-record.js";
import { allowsGuard, hostGuards } from "./lane-guards.js";
import { resumeRemoval } from "./interrupted-removals.js";
import { markedOrphan, newOrphan } from "./orphans.js";
import { cmp, type GroupLane, type PlanContext } from "./plan-context.js";
import { smokeLane } from "./smoke-lanes.js";

/** Record states whose lanes count toward a group (`removing` and `orphaned` do not). */
const COUNTED_STATES = new Set(["creating", "active", "draining", "needs-attention"]);

/**
 * The per-lane pass, before any group decision: sort the lane into its group, hand orphans and removals under way
 * to their paths, finish creates, follow a new runner id, and warn about lanes that need a person.
 */
export function laneMaintenance(ctx: PlanContext, v: LaneView, byGroup: Map<string, GroupLane[]>): void {
  const r = v.record;
  if (r?.smoke !== undefined && smokeLane(ctx, v, r)) return;
  if (v.class === "needs-attention") {
    ctx.warn(
      "LANE_NEEDS_ATTENTION",
      `lane ${v.laneId}: ${v.attention?.message ?? "markers disagree"} (${v.attention?.code ?? "UNKNOWN"}); nothing is done automatically`,
      { laneId: v.laneId, scope: v.scope, hostId: v.hostId },
    );
    if (r !== undefined && COUNTED_STATES.has(r.state)) addToGroup(byGroup, v, r);
    return;
  }
  if (r?.state === "orphaned") return markedOrphan(ctx, v, r);
  if (r?.state === "removing") return resumeRemoval(ctx, v, r);
  if (v.class === "orphaned") return newOrphan(ctx, v);
  if (r === undefined) return; // managed without a record cannot happen (classified needs-attention)

  addToGroup(byGroup, v, r);
  if (ctx.blocked(v.scope, v.hostId) !== undefined) return;
  const hl = v.hostLane;
  if (hl?.held === true) {
    ctx.warn("LANE_HELD", `lane ${v.laneId} is held on ${v.hostId}${hl.holdReason === "" ? "" : ` (${hl.holdReason})`}: left alone`, {
      laneId: v.laneId,
      hostId: v.hostId,
    });
    return;
  }
  if (r.state === "needs-attention") {
    ctx.warn(
      "LANE_NEEDS_ATTENTION",
      `lane ${v.laneId}: ${r.attention?.message ?? "an operation stopped"} (${r.attention?.code ?? "UNKNOWN"}); apply leaves it alone: ` +
        `follow the note, or \`lanekeeper lanes release ${v.laneId}\` puts it back in service`,
      { laneId: v.laneId, hostId: v.hostId },
    );
    return;
  }
  const g = v.registration;
  if (r.state === "creating") {
    if (g !== undefined && hl !== undefined && g.status === "online") {
      ctx.push(v, "update-record", { code: "CREATE_COMPLETED", message: "registration online and lane present: creation finished" }, {
        changes: { state: "active", runnerId: g.id },
      });
    } else if (!v.pending && ctx.now - r.createdAtMs > (ctx.opts.createTimeoutMs ?? DEFAULT_CREATE_TIMEOUT_MS)) {
      ctx.warn("CREATE_STALLED", `lane ${v.laneId} has been creating since ${new Date(r.createdAtMs).toISOString()}; check the agent on ${v.hostId}`, {
        laneId: v.laneId,
        hostId: v.hostId,
      });
    }
    return;
  }
  if (r.state !== "active") return; // draining lanes are the group pass's business
  if (g !== undefined && r.runnerId !== g.id) {
    ctx.push(v, "update-record", { code: "RUNNER_ID_CHANGED", message: `registration is now runner ${g.id}` }, {
      changes: { runnerId: g.id },
    });
  }
  if (hl !== undefined && (hl.state === LaneState.LANE_STATE_NEEDS_ATTENTION || hl.health === Health.HEALTH_CRASH_LOOP)) {
    ctx.warn(
      "LANE_UNHEALTHY",
      `lane ${v.laneId} on ${v.hostId} is unhealthy (${hl.attentionReason === "" ? "crash loop" : hl.attentionReason})` +
        (hl.recoveryNote === "" ? "" : `: ${hl.recoveryNote}`),
      { laneId: v.laneId, hostId: v.hostId },
    );
  }
}

/**
 * Repairs of an active lane (leftover drain, re-arm, restart, label drift). They must not collide with a
 * scale-down decision, so they run after the group pass chose, and skip a lane it already targets.
 */
export function laneRepairs(ctx: PlanContext, v: LaneView, r: StoredLaneRecord): void {
  if (r.state !== "active" || ctx.targeted.has(v.laneId)) return;
  if (ctx.blocked(v.scope, v.hostId) !== undefined) return;
  const hl = v.hostLane;
  const g = v.registration;
  if (hl?.held === true) return;
  const pool = ctx.pool(v.pool);
  const labelsDraining = g?.labels.some((l) => l.name === DRAINING_LABEL) === true;
  if (labelsDraining || hl?.draining === true) {
    if (pool === undefined || !ctx.permits(v, ["undrain"])) return;
    const labels = ctx.canonical(v, pool);
    if (labels === undefined) return;
    ctx.push(v, "undrain", { code: "LEFTOVER_DRAIN", message: "the lane is drained but its record says active (an interrupted operation)" }, {
      runnerId: g?.id,
      labels,
    }, hostGuards(ctx.policy, v, "undrain"));
    return;
  }
  if (
    hl !== undefined &&
    v.hostKnown &&
    hl.state === LaneState.LANE_STATE_IDLE_UNARMED &&
    pool?.mode === "ephemeral" &&
    ctx.permits(v, ["arm"])
  ) {
    const labels = ctx.canonical(v, pool);
    if (labels === undefined) return;
    if (!ctx.takeJit(v.scope, v.pool)) return;
    ctx.push(v, "arm", { code: "UNARMED", message: "the ephemeral lane finished its job and waits for a fresh JIT registration" }, {
      runnerName: armRunnerName(ctx, v),
      labels,
    }, [
      ...hostGuards(ctx.policy, v, "arm"),
      { kind: "no-job-evidence", hostId: v.hostId, laneId: v.laneId },
    ]);
    return;
  }
  if (
    hl !== undefined &&
    v.hostKnown &&
    (hl.state === LaneState.LANE_STATE_STOPPED || hl.state === LaneState.LANE_STATE_FAILED) &&
    pool !== undefined &&
    ctx.permits(v, ["drain", "restart"])
  ) {
    const labels = ctx.canonical(v, pool);
    if (labels !== undefined) {
      ctx.push(v, "restart", { code: "STOPPED", message: `the lane is ${hl.state === LaneState.LANE_STATE_FAILED ? "failed" : "stopped"} on its host` }, {
        runnerId: g?.id,
        labels,
      }, [
        ...hostGuards(ctx.policy, v, "restart"),
        allowsGuard(ctx.policy, v, "drain"),
        { kind: "no-job-evidence", hostId: v.hostId, laneId: v.laneId, at: "send-restart" },
      ]);
      return;
    }
  }
  if (g !== undefined && pool !== undefined) {
    const want = ctx.canonical(v, pool);
    if (want === undefined) return;
    const have = g.labels.filter((l) => l.type !== "read-only").map((l) => l.name);
    if (!sameSet(have, want)) {
      ctx.push(v, "relabel", { code: "LABEL_DRIFT", message: `labels differ from pool ${v.pool}'s canonical set` }, {
        runnerId: g.id,
        from: have.sort(cmp),
        to: want,
      }, [
        { kind: "runner-id-matches", scope: v.scope, laneId: v.laneId, runnerId: g.id },
        { kind: "runner-identity-labels", scope: v.scope, runnerId: g.id, laneId: v.laneId, hostId: v.hostId, pool: v.pool },
      ]);
    }
  }
}

/**
 * The runner name of a re-armed ephemeral lane: the lane id, unless a registration of that name still
 * lingers in the scope (GitHub answers 409 to a duplicate), then the lane id with a short suffix from the plan time.
 */
function armRunnerName(ctx: PlanContext, v: LaneView): string {
  const obs = ctx.observed.scopes.get(v.scope);
  const taken = obs?.status === "ok" && obs.runners.some((r) => r.name === v.laneId);
  return taken ? `${v.laneId.slice(0, 56)}-${(ctx.now % 36 ** 6).toString(36).padStart(6, "0")}` : v.laneId;
}

function addToGroup(byGroup: Map<string, GroupLane[]>, view: LaneView, record: StoredLaneRecord): void {
  const key = `${record.scope}\u0000${record.pool}`;
  const list = byGroup.get(key);
  if (list === undefined) byGroup.set(key, [{ view, record }]);
  else list.push({ view, record });
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
}
