import type { PlanActionKind, PlanStep } from "../plan/action.js";

/** Where a failed action left the lane (DESIGN.md section 7: always one of these). */
export type SafeState =
  /** Nothing outside the lane store changed. */
  | "untouched"
  /** GitHub labels swapped for `lk-draining` (and the agent told): the lane takes no new job. */
  | "drained"
  /** The lane is stopped on its host (or being removed there). */
  | "stopped"
  /** A new lane may exist on the host without being verified online. */
  | "created-unverified";

/** What a recovery note is about. */
export interface RecoveryFacts {
  readonly laneId: string;
  readonly hostId: string;
  readonly kind: PlanActionKind;
  /** The operator command that was running, when the action came from `lanes <op>`. */
  readonly operatorOp?: "drain" | "restart" | "remove" | undefined;
  readonly step: PlanStep | "guards" | "dependency";
  readonly safeState: SafeState;
  /** Stable code of the failure. */
  readonly code: string;
  /** One line on the cause. */
  readonly cause: string;
}

/** The `lanes` verb that finishes an interrupted action of this kind, if any. */
function verbFor(f: RecoveryFacts): "drain" | "restart" | "remove" | undefined {
  if (f.operatorOp !== undefined) return f.operatorOp;
  if (f.kind === "remove" || f.kind === "restart" || f.kind === "drain") return f.kind;
  return undefined;
}

/**
 * A recovery note naming the exact commands: what state the lane is in, why, and what to run. Written to the
 * lane record (`attention`) and to the terminal audit record.
 */
export function recoveryNote(f: RecoveryFacts): string {
  const lane = f.laneId;
  const verb = verbFor(f);
  if (f.code === "DRAIN_DEADLINE") {
    const v = verb ?? "drain";
    return (
      `lane ${lane} on ${f.hostId} is drained (label lk-draining, no new job) but was not idle at the deadline (${f.cause}); nothing was killed. ` +
      `Wait longer: \`lanekeeper lanes ${v} ${lane} --deadline 2h\`; or stop the job (audited): \`lanekeeper lanes ${v} ${lane} --force\`; ` +
      `or put the lane back in service: \`lanekeeper lanes release ${lane}\`.`
    );
  }
  switch (f.safeState) {
    case "untouched":
      return (
        `nothing was changed on ${f.hostId} or GitHub for lane ${lane} (${f.code} at ${f.step}: ${f.cause}). ` +
        "Fix the cause, then re-run `lanekeeper apply` (`lanekeeper plan` shows what it will do)."
      );
    case "drained":
      return (
        `lane ${lane} on ${f.hostId} is drained (label lk-draining, no new job) and still there (${f.code} at ${f.step}: ${f.cause}). ` +
        (verb === undefined || verb === "drain"
          ? `Re-run \`lanekeeper apply\` to converge, or \`lanekeeper lanes remove ${lane}\`; `
          : `Finish with \`lanekeeper lanes ${verb} ${lane}\` or re-run \`lanekeeper apply\`; `) +
        `to put it back in service: \`lanekeeper lanes release ${lane}\`.`
      );
    case "stopped":
      return (
        `lane ${lane} on ${f.hostId} is stopped or half removed (${f.code} at ${f.step}: ${f.cause}). ` +
        `Finish with \`lanekeeper lanes ${verb === "restart" ? "restart" : "remove"} ${lane}\` (or re-run \`lanekeeper apply\`); ` +
        `\`lanekeeper status\` and \`lanekeeper-agent status\` on ${f.hostId} show its state.`
      );
    case "created-unverified":
      return (
        `lane ${lane} may exist on ${f.hostId} without being verified online (${f.code} at ${f.step}: ${f.cause}). ` +
        "Re-run `lanekeeper apply`: it completes the record once the runner is online, or cleans the lane up as an orphan " +
        `after the grace period; to remove it now: \`lanekeeper lanes remove ${lane}\`.`
      );
  }
}
