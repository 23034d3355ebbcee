import type { LaneView } from "../observe/classify.js";
import type { StoredLaneRecord } from "../observe/lane-record.js";
import { isIdle } from "./group-scaling.js";
import { removalGuards } from "./lane-guards.js";
import type { PlanContext } from "./plan-context.js";

/**
 * The planner's rule for a lane `lanekeeper smoke` created (its record carries a `smoke` mark). Returns true when
 * this pass dealt with the lane, so it never joins a `lanes[]` group: a smoke lane is neither excess (to scale
 * down) nor label drift (its only capability label is the smoke label), and never an orphan while its run holds it.
 *
 * - While the lease runs: no action at all, a `SMOKE_LANE` warning.
 * - After the lease (the smoke process died without cleaning up): removed once idle (`SMOKE_EXPIRED`, through the
 *   same guards and drain protocol as any removal); while busy or blocked, a warning naming the command. A
 *   removal under way and orphans follow the ordinary paths (false).
 */
export function smokeLane(ctx: PlanContext, v: LaneView, r: StoredLaneRecord): boolean {
  const mark = r.smoke;
  if (mark === undefined) return false;
  if (ctx.now < mark.leaseUntilMs) {
    ctx.warn(
      "SMOKE_LANE",
      `lane ${v.laneId} belongs to smoke run ${mark.runId} until ${new Date(mark.leaseUntilMs).toISOString()}: left alone`,
      { laneId: v.laneId, hostId: v.hostId, scope: v.scope },
    );
    return true;
  }
  if (r.state === "removing" || r.state === "orphaned" || v.class === "orphaned") return false;
  const left = (why: string): true => {
    ctx.warn(
      "SMOKE_LANE_LEFT",
      `lane ${v.laneId} was left by smoke run ${mark.runId} (lease expired) and ${why}; remove it with \`lanekeeper lanes remove ${v.laneId}\``,
      { laneId: v.laneId, hostId: v.hostId, scope: v.scope },
    );
    return true;
  };
  if (v.class !== "managed" || ctx.blocked(v.scope, v.hostId) !== undefined) return left("cannot be removed automatically now");
  if (v.hostLane?.held === true) return left("is held on its host");
  if (!isIdle(v)) return left("is not idle (or its job evidence is unknown)");
  if (!ctx.permits(v, ["drain", "remove"])) return left("its host does not allow removing it");
  if (!ctx.spendRemoval()) return true;
  ctx.push(v, "remove", { code: "SMOKE_EXPIRED", message: `smoke run ${mark.runId} ended without removing its lane` }, { runnerId: v.registration?.id }, removalGuards(ctx.policy, v));
  return true;
}
