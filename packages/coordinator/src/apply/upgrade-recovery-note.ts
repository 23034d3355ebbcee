import type { LaneRunner } from "../plan/action.js";

/** How a rollback after a failed upgrade went. */
export type RollbackResult =
  | { readonly ok: true; readonly restored: boolean }
  | { readonly ok: false; readonly step: "send-upgrade" | "verify-upgraded" | "restore-labels"; readonly code: string; readonly message: string };

/** `x.y.z` or the image, for messages. */
export function describeRunner(r: LaneRunner): string {
  return r.runnerVersion !== "" ? `runner ${r.runnerVersion}` : `image ${r.image}`;
}

/** What an upgrade's recovery note is about. */
export interface UpgradeFailureFacts {
  readonly laneId: string;
  readonly hostId: string;
  readonly scope: string;
  readonly pool: string;
  readonly from: LaneRunner;
  readonly to: LaneRunner;
  /** The step of the upgrade that failed. */
  readonly step: string;
  readonly code: string;
  readonly cause: string;
  readonly rollback: RollbackResult;
}

/**
 * The note a failed upgrade leaves on the lane record (needs-attention) and in the audit: what failed, where the
 * lane stands after the rollback (back in service on the old version, or drained because the rollback failed
 * too), that no job was killed, and the exact commands. `lanekeeper lanes release` puts the lane back in
 * service and lets the rollout resume (docs/runner-versions.md, docs/runbook.md "Roll back a runner version by hand").
 */
export function upgradeRecoveryNote(f: UpgradeFailureFacts): string {
  const lane = f.laneId;
  const head = `the upgrade of lane ${lane} on ${f.hostId} from ${describeRunner(f.from)} to ${describeRunner(f.to)} failed (${f.code} at ${f.step}: ${f.cause}); no job was killed`;
  const pin = f.from.runnerVersion !== "" ? `pools.${f.pool}.runnerVersion: ${f.from.runnerVersion}` : `pools.${f.pool}.image: ${f.from.image}`;
  const look = `\`lanekeeper lanes show ${lane}\` and \`lanekeeper-agent status\` on ${f.hostId} show its state`;
  if (f.rollback.ok) {
    return (
      `${head}. The lane was rolled back to ${describeRunner(f.from)}, verified, and put back in service. Its record is needs-attention, which halts ` +
      `the rollout of ${f.scope}/${f.pool}. ${look}. Fix the cause (or stay on the old version: set ${pin} in lanekeeper.yaml), then ` +
      `\`lanekeeper lanes release ${lane}\` and \`lanekeeper apply\` resume the rollout.`
    );
  }
  const rb = f.rollback;
  return (
    `${head}. The rollback to ${describeRunner(f.from)} failed too (${rb.code} at ${rb.step}: ${rb.message}): the lane is left drained ` +
    `(label lk-draining, no new job) and may run either version. Its record is needs-attention, which halts the rollout of ${f.scope}/${f.pool}. ` +
    `${look}. Once the host is fixed, set ${pin} in lanekeeper.yaml to roll back by hand, then \`lanekeeper lanes release ${lane}\` and ` +
    "`lanekeeper apply` (it upgrades the lane to the pinned version through the drain protocol)."
  );
}
