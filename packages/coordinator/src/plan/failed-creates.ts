import { LANE_LABEL_PREFIX } from "@lanekeeper/shared";
import type { ForgetRecordAction } from "./action.js";
import { recordEvidence } from "./evidence-of.js";
import { STEPS } from "./steps.js";
import { FAILED_CREATE_SETTLE_MS } from "../limits.js";
import type { WorldObservation } from "../observe/world-observation.js";

/**
 * Records of creates that failed and left nothing behind, to forget before planning, so the next `apply` retries
 * the create at once instead of waiting out the planner's registration grace (which exists for creates still in
 * flight). A record qualifies only when all of this holds:
 * - it is `creating` and carries the engine's failure note (`attention`): the create action ended, it is not in
 *   flight (a coordinator that crashed mid-create leaves no note, and the grace applies);
 * - the lane's host sent an inventory received at least {@link FAILED_CREATE_SETTLE_MS} after the failure, and it
 *   does not report the lane (an agent executing a create reports the lane from its first journaled step);
 * - GitHub's complete runner list of the scope has no registration carrying the lane's label.
 * Guards restate the last two facts, re-checked right before the record is deleted.
 */
export function failedCreateActions(world: WorldObservation): ForgetRecordAction[] {
  const out: ForgetRecordAction[] = [];
  for (const r of world.records) {
    if (r.state !== "creating" || r.attention === undefined) continue;
    const inv = world.observed.inventory.hosts.get(r.hostId);
    if (inv === undefined || inv.receivedAtMs < r.updatedAtMs + FAILED_CREATE_SETTLE_MS) continue;
    if (inv.lanes.some((l) => l.laneId === r.laneId)) continue;
    const scope = world.observed.scopes.get(r.scope);
    if (scope?.status !== "ok" || !scope.complete) continue;
    if (scope.runners.some((g) => g.labels.some((l) => l.name === `${LANE_LABEL_PREFIX}${r.laneId}`))) continue;
    out.push({
      id: `forget-record:${r.laneId}`,
      kind: "forget-record",
      laneId: r.laneId,
      scope: r.scope,
      pool: r.pool,
      hostId: r.hostId,
      // Not one of the planner's rules: the engine's own clean-up of a create it knows has failed.
      reason: { code: "CREATE_FAILED", message: `the create failed (${r.attention.code}) and left nothing on ${r.hostId} or GitHub: forget it, create again` },
      guards: [
        { kind: "record-revision", laneId: r.laneId, revision: r.revision },
        { kind: "lane-absent-on-host", hostId: r.hostId, laneId: r.laneId },
        { kind: "registration-absent", scope: r.scope, laneId: r.laneId },
      ],
      evidence: [recordEvidence(r), { source: "absent", what: "host-lane", where: r.hostId }, { source: "absent", what: "registration", where: r.scope }],
      steps: STEPS["forget-record"],
      dependsOn: [],
    });
  }
  return out;
}
