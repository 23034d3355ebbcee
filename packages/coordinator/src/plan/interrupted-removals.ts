import { parseDrainingLabels } from "@lanekeeper/shared";
import type { LaneView } from "../observe/classify.js";
import type { StoredLaneRecord } from "../observe/lane-record.js";
import type { PlanStep, RemoveAction } from "./action.js";
import { laneEvidence } from "./evidence-of.js";
import type { Guard } from "./guard.js";
import { removalGuards } from "./lane-guards.js";
import type { PlanContext } from "./plan-context.js";
import { STEPS } from "./steps.js";

/** The steps left of a removal whose host already removed the lane: claim the record, then the GitHub side. */
export const RESUME_REMOVE_AFTER_HOST_STEPS: readonly PlanStep[] = Object.freeze(["write-record", "delete-registration", "verify-gone", "delete-record"]);

/**
 * A lane whose record says `removing` (a removal started and did not finish: its coordinator died, was frozen past
 * its lease, or the removal failed): forget the record once both halves are gone, else resume the removal from the
 * first step that did not take effect, so nothing that took effect is done again:
 * - the host's fresh inventory no longer has the lane: the remove intent took effect; only the registration, the
 *   verification and the record are left (guarded by the lane's absence on the host);
 * - the lane is still on its host: the drain is redone only where it is not in place (the registration still carries
 *   other labels than the reduced draining set: `set-draining-labels`; the host reports the lane not draining:
 *   `send-drain`), then the wait for idle, the remove and the rest, with every guard of a removal.
 * A removal still running in another coordinator (live lease) is left out of the plan by `planFromWorld`.
 */
export function resumeRemoval(ctx: PlanContext, v: LaneView, r: StoredLaneRecord): void {
  if (v.registration === undefined && v.hostLane === undefined && v.certainty === "verified") {
    ctx.push(v, "forget-record", { code: "REMOVED", message: "the lane and its registration are gone: the removal finished" }, {});
    return;
  }
  if (ctx.blocked(v.scope, v.hostId) !== undefined) return;
  if (!ctx.permits(v, ["drain", "remove"])) return;
  if (v.hostLane?.held === true) {
    ctx.warn("LANE_HELD", `lane ${v.laneId} is held on ${v.hostId}: its removal waits`, { laneId: v.laneId, hostId: v.hostId });
    return;
  }
  const g = v.registration;
  const started = `resume the removal started at ${new Date(r.updatedAtMs).toISOString()}`;
  if (g !== undefined && v.hostLane === undefined && v.hostKnown) {
    push(ctx, v, r, g.id, RESUME_REMOVE_AFTER_HOST_STEPS, `${started}: ${v.hostId} has removed the lane, its registration ${g.id} is left`, [
      { kind: "lane-absent-on-host", hostId: v.hostId, laneId: v.laneId },
      { kind: "runner-id-matches", scope: v.scope, laneId: v.laneId, runnerId: g.id },
      { kind: "runner-identity-labels", scope: v.scope, runnerId: g.id, laneId: v.laneId, hostId: v.hostId, pool: v.pool },
      { kind: "runner-not-busy", scope: v.scope, runnerId: g.id, at: "delete-registration" },
    ]);
    return;
  }
  const labelsDrained = g === undefined || parseDrainingLabels(g.labels.filter((l) => l.type !== "read-only").map((l) => l.name)) === v.laneId;
  const agentDrained = v.hostKnown && v.hostLane?.draining === true;
  const steps = STEPS.remove.filter((s) => !(s === "set-draining-labels" && labelsDrained) && !(s === "send-drain" && agentDrained));
  const done = [...(labelsDrained && g !== undefined ? ["labels swapped"] : []), ...(agentDrained ? [`${v.hostId} draining`] : [])];
  push(ctx, v, r, g?.id, steps, done.length === 0 ? started : `${started} (${done.join(", ")}: not done again)`, removalGuards(ctx.policy, v).filter((x) => x.kind !== "record-revision"));
}

function push(ctx: PlanContext, v: LaneView, r: StoredLaneRecord, runnerId: number | undefined, steps: readonly PlanStep[], message: string, guards: readonly Guard[]): void {
  const id = `remove:${v.laneId}`;
  if (ctx.actionIds.has(id)) return;
  ctx.actionIds.add(id);
  ctx.targeted.add(v.laneId);
  const action: RemoveAction = {
    id,
    kind: "remove",
    laneId: v.laneId,
    scope: v.scope,
    pool: v.pool,
    hostId: v.hostId,
    runnerId,
    reason: { code: "RESUME_REMOVE", message },
    // The record as read: the first step claims it (compare-and-set), so two coordinators never both resume it.
    guards: [{ kind: "record-revision", laneId: v.laneId, revision: r.revision }, ...guards],
    evidence: laneEvidence(v),
    steps,
    dependsOn: [],
  };
  ctx.actions.push(action);
}
