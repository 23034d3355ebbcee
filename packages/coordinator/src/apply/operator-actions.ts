import { canonicalLabels, LanekeeperError, type Policy } from "@lanekeeper/shared";
import type { LaneView } from "../observe/classify.js";
import type { Action, PlanStep, RemoveAction } from "../plan/action.js";
import type { StoredLaneRecord } from "../observe/lane-record.js";
import type { Guard } from "../plan/guard.js";
import { laneEvidence } from "../plan/evidence-of.js";
import { STEPS } from "../plan/steps.js";
import { ApplyRefusedError } from "./apply-errors.js";

/** An operator command that runs through the apply engine. */
export type OperatorOp = "drain" | "restart" | "remove" | "undrain";

/** The steps of each operator command (planner steps, plus the wait an operator drain waits for). */
export const OPERATOR_STEPS: Readonly<Record<OperatorOp, readonly PlanStep[]>> = Object.freeze({
  // An operator drain waits until the lane is idle: "drained" then means nothing runs there any more.
  drain: [...STEPS.drain, "wait-idle"],
  restart: STEPS.restart,
  remove: STEPS.remove,
  undrain: STEPS.undrain,
});

/**
 * Build the action for `lanekeeper lanes <op> <lane>` from the lane's current classification. Only lanes with a
 * coordinator record are acted on (ownership marker 3); the guards restate the other two markers and the
 * opt-ins, as for planned actions. With `force`, the job-evidence guards are left out: the operator has decided
 * to stop a running job, and the engine sends the stop with `force` and `forced_by` after the deadline.
 */
export function operatorAction(op: OperatorOp, v: LaneView, policy: Policy, opts: { force: boolean }): Action {
  const r = v.record;
  if (r === undefined) {
    throw new ApplyRefusedError(
      "LANE_NOT_MANAGED",
      `lane ${v.laneId} has no coordinator record: lanekeeper did not create it and never acts on it (see \`lanekeeper status\`)`,
    );
  }
  if (op === "remove" && r.state === "creating" && v.hostLane === undefined && v.hostKnown) return creatingRemoval(v, r);
  const pool = Object.hasOwn(policy.pools, r.pool) ? policy.pools[r.pool] : undefined;
  const backend = pool?.backend ?? "systemd";
  const image = backend === "container" ? pool?.image : undefined;
  const g = v.registration;
  const guards: Guard[] = [
    { kind: "record-revision", laneId: r.laneId, revision: r.revision },
    { kind: "scope-opted-in", scope: r.scope },
    { kind: "host-opted-in", hostId: r.hostId },
    {
      kind: "host-allows",
      hostId: r.hostId,
      action: op === "undrain" ? "undrain" : op,
      scope: r.scope,
      pool: r.pool,
      backend,
      ...(image === undefined ? {} : { image }),
    },
    { kind: "lane-marker-valid", hostId: r.hostId, laneId: r.laneId, scope: r.scope, pool: r.pool },
    { kind: "lane-not-held", hostId: r.hostId, laneId: r.laneId },
  ];
  if (g !== undefined) {
    guards.push({ kind: "runner-id-matches", scope: r.scope, laneId: r.laneId, runnerId: g.id });
    guards.push({ kind: "runner-identity-labels", scope: r.scope, runnerId: g.id, laneId: r.laneId, hostId: r.hostId, pool: r.pool });
  }
  if (op === "remove" && !opts.force && g !== undefined) {
    guards.push({ kind: "runner-not-busy", scope: r.scope, runnerId: g.id, at: "delete-registration" });
  }
  const labels = (): string[] => {
    try {
      return canonicalLabels({ laneId: r.laneId, hostId: r.hostId, pool: r.pool, capabilityLabels: pool?.labels ?? [] });
    } catch (err) {
      if (err instanceof LanekeeperError) throw new ApplyRefusedError("LANE_NOT_MANAGED", `lane ${r.laneId}: ${err.message}`);
      throw err;
    }
  };
  const base = {
    id: `${op}:${r.laneId}`,
    laneId: r.laneId,
    scope: r.scope,
    pool: r.pool,
    hostId: r.hostId,
    reason: { code: "OPERATOR" as const, message: `operator: lanes ${op} ${r.laneId}` },
    guards,
    evidence: laneEvidence(v),
    steps: OPERATOR_STEPS[op],
    dependsOn: [],
  };
  switch (op) {
    case "drain":
      return { ...base, kind: "drain", runnerId: g?.id, drainReason: "scale-down" };
    case "restart":
      return { ...base, kind: "restart", runnerId: g?.id, labels: labels() };
    case "remove":
      return { ...base, kind: "remove", runnerId: g?.id };
    case "undrain":
      return { ...base, kind: "undrain", runnerId: g?.id, labels: labels() };
  }
}

/**
 * `lanes remove` of a lane whose create never reached its host (a coordinator died mid-create; the caller has made
 * sure no live action holds it): there is no lane on the host to drain or stop, so the removal deletes what the
 * create left (an unused registration, if one was minted) and the record. The record goes to `removing` first, so
 * an interrupted removal is resumed by the next `apply`. Nothing is sent to the host.
 */
function creatingRemoval(v: LaneView, r: StoredLaneRecord): RemoveAction {
  const g = v.registration;
  const guards: Guard[] = [
    { kind: "record-revision", laneId: r.laneId, revision: r.revision },
    { kind: "lane-absent-on-host", hostId: r.hostId, laneId: r.laneId },
  ];
  if (g !== undefined) {
    guards.push({ kind: "runner-id-matches", scope: r.scope, laneId: r.laneId, runnerId: g.id });
    guards.push({ kind: "runner-identity-labels", scope: r.scope, runnerId: g.id, laneId: r.laneId, hostId: r.hostId, pool: r.pool });
    guards.push({ kind: "runner-not-busy", scope: r.scope, runnerId: g.id, at: "delete-registration" });
  }
  return {
    id: `remove:${r.laneId}`,
    kind: "remove",
    laneId: r.laneId,
    scope: r.scope,
    pool: r.pool,
    hostId: r.hostId,
    runnerId: g?.id,
    reason: { code: "OPERATOR", message: `operator: lanes remove ${r.laneId} (its create never reached ${r.hostId})` },
    guards,
    evidence: laneEvidence(v),
    steps: ["write-record", "delete-registration", "verify-gone", "delete-record"],
    dependsOn: [],
  };
}
