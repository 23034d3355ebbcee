import type { LaneSpec } from "@lanekeeper/shared";
import type { LaneRecordState, OrphanKind, OrphanMark, SmokeMark } from "../observe/lane-record.js";
import type { Evidence } from "./evidence.js";
import type { Guard } from "./guard.js";
import type { PlanStep } from "./plan-step.js";

/** Every kind of action a plan can hold. */
export type PlanActionKind =
  | "update-record"
  | "undrain"
  | "arm"
  | "create"
  | "restart"
  | "upgrade"
  | "relabel"
  | "drain"
  | "remove"
  | "mark-orphan"
  | "cleanup-orphan"
  | "forget-record";

export type { PlanStep } from "./plan-step.js";

/**
 * Stable reason codes: one per planner rule, plus the two actions made outside the planner (`OPERATOR` for
 * `lanekeeper lanes …`, `CREATE_FAILED` for forgetting a create that left nothing behind, `CREATE_INTERRUPTED`
 * for resuming or rolling back a create whose coordinator died).
 */
export type ReasonCode =
  | "SCALE_UP"
  | "SCALE_DOWN"
  | "SCALE_DOWN_BUSY"
  | "REUSE_DRAINED"
  | "MISPLACED"
  | "MISPLACED_BUSY"
  | "NOT_IN_POLICY"
  | "NOT_IN_POLICY_BUSY"
  | "RESUME_REMOVE"
  | "REMOVED"
  | "LEFTOVER_DRAIN"
  | "UNARMED"
  | "STOPPED"
  | "LABEL_DRIFT"
  | "RUNNER_ID_CHANGED"
  | "CREATE_COMPLETED"
  | "ORPHAN_SEEN"
  | "ORPHAN_CONFIRMED"
  | "ORPHAN_CLEARED"
  | "OPERATOR"
  | "CREATE_FAILED"
  | "CREATE_INTERRUPTED"
  | "DRAIN_INTERRUPTED"
  | "SMOKE"
  | "SMOKE_EXPIRED"
  | "VERSION_DRIFT"
  | "IMAGE_DRIFT";

/** Why an action is in the plan. */
export interface ActionReason {
  readonly code: ReasonCode;
  /** One line for humans. */
  readonly message: string;
}

/** Fields every action has. */
export interface ActionBase {
  /** Unique within the plan: `<kind>:<laneId>`. */
  readonly id: string;
  readonly kind: PlanActionKind;
  readonly laneId: string;
  readonly scope: string;
  readonly pool: string;
  readonly hostId: string;
  readonly reason: ActionReason;
  /** Conditions apply re-checks right before the step they name (or before the first step). */
  readonly guards: readonly Guard[];
  /** The observations the action rests on. */
  readonly evidence: readonly Evidence[];
  /** What apply does, in order. */
  readonly steps: readonly PlanStep[];
  /** Actions that must succeed first (e.g. a move's create before its remove). */
  readonly dependsOn: readonly string[];
}

/** Create a new lane on a host. */
export interface CreateAction extends ActionBase {
  readonly kind: "create";
  /** The lane spec for the `CreateLane` intent; apply adds the sealed registration. */
  readonly spec: LaneSpec;
  /** Set by `lanekeeper smoke` only: the lane's record carries this mark from its first write. */
  readonly smoke?: SmokeMark;
}

/** Drain a lane: capability labels swapped for `lk-draining`, not re-armed; it keeps its running job. */
export interface DrainAction extends ActionBase {
  readonly kind: "drain";
  readonly runnerId: number | undefined;
  /** Why, as written to the record (`operator` only on a resumed operator drain). */
  readonly drainReason: "scale-down" | "move" | "operator";
}

/** Undo a drain: restore the canonical labels and let the host re-arm it. */
export interface UndrainAction extends ActionBase {
  readonly kind: "undrain";
  readonly runnerId: number | undefined;
  /** The canonical label set to restore. */
  readonly labels: readonly string[];
}

/**
 * Re-arm an ephemeral lane that finished its job (host state `IDLE_UNARMED`): a fresh JIT registration named
 * `runnerName` with `labels`, sealed to the host in an `ArmLane` intent.
 */
export interface ArmAction extends ActionBase {
  readonly kind: "arm";
  readonly runnerName: string;
  readonly labels: readonly string[];
}

/** Restart a stopped or failed lane (drain, restart, verify online, restore labels). */
export interface RestartAction extends ActionBase {
  readonly kind: "restart";
  readonly runnerId: number | undefined;
  readonly labels: readonly string[];
}

/** Remove a lane (drain, wait idle, stop, deregister, delete unit/container and directory, verify gone). */
export interface RemoveAction extends ActionBase {
  readonly kind: "remove";
  readonly runnerId: number | undefined;
}

/** What a lane runs: a runner version (systemd) or an image pinned by digest (container); the other is `""`. */
export interface LaneRunner {
  readonly runnerVersion: string;
  readonly image: string;
}

/**
 * Move a lane to the pool's wanted runner version or image (plan/version-upgrades.ts): drain it (persistent
 * lanes: labels swapped for `lk-draining`, wait for the running job), send `UpgradeLane`, verify it comes back
 * with the new version (agent inventory, and GitHub online), restore its labels. A failure rolls it back to
 * `from` and leaves it `needs-attention` (apply/upgrade-steps.ts).
 */
export interface UpgradeAction extends ActionBase {
  readonly kind: "upgrade";
  readonly runnerId: number | undefined;
  /** The canonical label set to restore. */
  readonly labels: readonly string[];
  /** What the host reported the lane runs (the rollback target). */
  readonly from: LaneRunner;
  readonly to: LaneRunner;
}

/** Set a managed runner's custom labels back to its canonical set. */
export interface RelabelAction extends ActionBase {
  readonly kind: "relabel";
  readonly runnerId: number;
  readonly from: readonly string[];
  readonly to: readonly string[];
}

/** Phase one of orphan cleanup: record what is orphaned. Changes nothing outside the lane store. */
export interface MarkOrphanAction extends ActionBase {
  readonly kind: "mark-orphan";
  readonly orphanKind: OrphanKind;
  readonly runnerId: number | undefined;
  /**
   * The mark to write (the record becomes `orphaned`; a record is created when there was none, from the
   * action's scope, pool and host). Apply may set `markedAtMs` to its own clock.
   */
  readonly mark: OrphanMark;
}

/** Phase two: remove what is still orphaned (a registration, a host lane, or just the record). */
export interface CleanupOrphanAction extends ActionBase {
  readonly kind: "cleanup-orphan";
  readonly orphanKind: OrphanKind;
  readonly runnerId: number | undefined;
}

/** Drop a record that no longer stands for anything (removal finished, orphan mark cleared). */
export interface ForgetRecordAction extends ActionBase {
  readonly kind: "forget-record";
}

/** Bring a record in line with what the markers agree on (never changes anything outside the store). */
export interface UpdateRecordAction extends ActionBase {
  readonly kind: "update-record";
  readonly changes: {
    readonly state?: LaneRecordState;
    readonly runnerId?: number;
  };
}

/** One planned action. Switch on `kind`. */
export type Action =
  | CreateAction
  | DrainAction
  | UndrainAction
  | ArmAction
  | RestartAction
  | UpgradeAction
  | RemoveAction
  | RelabelAction
  | MarkOrphanAction
  | CleanupOrphanAction
  | ForgetRecordAction
  | UpdateRecordAction;
