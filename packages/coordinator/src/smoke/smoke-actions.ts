import { randomBytes } from "node:crypto";
import { canonicalLabels, identityLabels, validateLaneId, type Policy } from "@lanekeeper/shared";
import { operatorAction } from "../apply/operator-actions.js";
import type { LaneView } from "../observe/classify.js";
import type { SmokeMark } from "../observe/lane-record.js";
import type { Action, CleanupOrphanAction, CreateAction, ForgetRecordAction, RestartAction } from "../plan/action.js";
import { laneEvidence } from "../plan/evidence-of.js";
import type { Guard } from "../plan/guard.js";
import { laneSpecFor } from "../plan/lane-spec.js";
import { cleanupSteps, STEPS } from "../plan/steps.js";
import type { SmokeTarget } from "./smoke-preflight.js";

/** Prefix of smoke lane ids (`smoke-<8 hex>`) and of the smoke label (`lanekeeper-smoke-<8 hex>`). */
export const SMOKE_LANE_PREFIX = "smoke-";
export const SMOKE_LABEL_PREFIX = "lanekeeper-smoke-";

/**
 * A new smoke run's lane id and label, unused by any lane, record or retired id. The label is a capability label
 * (not `lk-`: agents refuse `lk-` labels that are not a lane's identity), unique to the run, so no workflow but
 * the one the smoke dispatches can target it.
 */
export function newSmokeIdentity(taken: ReadonlySet<string>): { laneId: string; label: string } {
  for (;;) {
    const hex = randomBytes(4).toString("hex");
    const laneId = validateLaneId(`${SMOKE_LANE_PREFIX}${hex}`);
    if (!taken.has(laneId)) return { laneId, label: `${SMOKE_LABEL_PREFIX}${hex}` };
  }
}

/** The smoke lane's labels: its identity labels and the smoke label, nothing a normal workflow targets. */
export function smokeLabels(laneId: string, target: Pick<SmokeTarget, "hostId" | "pool">, label: string): string[] {
  return canonicalLabels({ laneId, hostId: target.hostId, pool: target.pool, capabilityLabels: [label] });
}

/** The create action of the smoke lane: the planner's create (same spec, steps and guards), with the smoke mark. */
export function smokeCreateAction(policy: Policy, target: SmokeTarget, laneId: string, mark: SmokeMark): CreateAction {
  const { scope, pool, hostId, poolPolicy } = target;
  const backend = poolPolicy.backend;
  const image = backend === "container" ? poolPolicy.image : undefined;
  const guards: Guard[] = [
    { kind: "record-revision", laneId, revision: null },
    { kind: "scope-opted-in", scope },
    { kind: "host-opted-in", hostId },
    { kind: "host-allows", hostId, action: "create", scope, pool, backend, ...(image === undefined ? {} : { image }) },
    { kind: "host-capacity", hostId, maxLanes: target.maxLanes },
    { kind: "lane-id-unused", laneId },
  ];
  return {
    id: `create:${laneId}`,
    kind: "create",
    laneId,
    scope,
    pool,
    hostId,
    reason: { code: "SMOKE", message: `smoke run ${mark.runId}: a disposable lane labelled ${mark.label}` },
    guards,
    evidence: [{ source: "policy", path: `scopes.${scope}.optIn`, value: true }],
    steps: STEPS.create,
    dependsOn: [],
    spec: laneSpecFor(policy, scope, pool, poolPolicy, laneId, smokeLabels(laneId, target, mark.label)),
    smoke: mark,
  };
}

/** The operator restart of the lane (drain, restart, verify online), restoring the smoke labels, not the pool's. */
export function smokeRestartAction(policy: Policy, v: LaneView, label: string): RestartAction {
  const a = operatorAction("restart", v, policy, { force: false });
  if (a.kind !== "restart") throw new Error("operatorAction(restart) made another kind");
  return { ...a, labels: [...identityLabels({ laneId: v.laneId, hostId: v.hostId, pool: v.pool }), label] };
}

/**
 * What takes whatever is left of the smoke lane away, through the apply engine: the operator removal (drain
 * protocol: never kills a job) when the host has the lane or cannot be seen; when only a registration is left, its
 * deletion (guarded: same runner id, identity labels, not busy); when only the record is left, the record.
 */
export function smokeCleanupAction(policy: Policy, v: LaneView): Action {
  const r = v.record;
  if (r === undefined || v.hostLane !== undefined || !v.hostKnown) return operatorAction("remove", v, policy, { force: false });
  const base = {
    laneId: v.laneId,
    scope: v.scope,
    pool: v.pool,
    hostId: v.hostId,
    reason: { code: "SMOKE" as const, message: "smoke run clean-up" },
    evidence: laneEvidence(v),
    dependsOn: [],
  };
  const g = v.registration;
  if (g !== undefined) {
    const action: CleanupOrphanAction = {
      ...base,
      id: `cleanup-orphan:${v.laneId}`,
      kind: "cleanup-orphan",
      orphanKind: "registration-without-lane",
      runnerId: g.id,
      guards: [
        { kind: "record-revision", laneId: v.laneId, revision: r.revision },
        { kind: "scope-opted-in", scope: v.scope },
        { kind: "runner-id-matches", scope: v.scope, laneId: v.laneId, runnerId: g.id },
        { kind: "runner-not-busy", scope: v.scope, runnerId: g.id, at: "delete-registration" },
      ],
      steps: cleanupSteps("registration-without-lane"),
    };
    return action;
  }
  const forget: ForgetRecordAction = {
    ...base,
    id: `forget-record:${v.laneId}`,
    kind: "forget-record",
    guards: [{ kind: "record-revision", laneId: v.laneId, revision: r.revision }],
    steps: STEPS["forget-record"],
  };
  return forget;
}
