import type { OrphanKind } from "../observe/lane-record.js";
import type { PlanActionKind, PlanStep } from "./action.js";

/**
 * The steps of each action kind, in execution order (see {@link PlanStep}). `cleanup-orphan` depends on what
 * is orphaned, see {@link cleanupSteps}.
 */
export const STEPS: Readonly<Record<Exclude<PlanActionKind, "cleanup-orphan">, readonly PlanStep[]>> = Object.freeze({
  "update-record": ["write-record"],
  undrain: ["send-undrain", "restore-labels", "write-record"],
  arm: ["mint-registration", "send-arm", "verify-online", "write-record"],
  create: ["write-record", "mint-registration", "send-create", "verify-online", "write-record"],
  restart: ["set-draining-labels", "send-drain", "wait-idle", "send-restart", "verify-online", "restore-labels"],
  // A persistent lane's steps; an ephemeral lane's are UPGRADE_EPHEMERAL_STEPS.
  upgrade: ["set-draining-labels", "send-drain", "wait-idle", "send-upgrade", "verify-upgraded", "restore-labels"],
  relabel: ["set-labels", "verify-labels"],
  drain: ["write-record", "set-draining-labels", "send-drain"],
  remove: [
    "write-record",
    "set-draining-labels",
    "send-drain",
    "wait-idle",
    "mint-remove-token",
    "send-remove",
    "delete-registration",
    "verify-gone",
    "delete-record",
  ],
  "mark-orphan": ["write-record"],
  "forget-record": ["delete-record"],
});

/**
 * The steps of an ephemeral lane's upgrade: it is planned only while the lane waits unarmed between jobs (no
 * registration, so no label to swap and no job to wait for); the agent's drain mark keeps it from being re-armed
 * meanwhile, and the next plan arms it on the new version.
 */
export const UPGRADE_EPHEMERAL_STEPS: readonly PlanStep[] = Object.freeze(["send-drain", "wait-idle", "send-upgrade", "verify-upgraded", "send-undrain"]);

/** The steps of a `cleanup-orphan` action for each orphan kind. */
export function cleanupSteps(kind: OrphanKind): readonly PlanStep[] {
  switch (kind) {
    case "registration-without-lane":
      return ["delete-registration", "verify-gone", "delete-record"];
    case "lane-without-registration":
      return ["send-remove", "verify-gone", "delete-record"];
    case "record-without-lane":
      return ["delete-record"];
  }
}
