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

/** What was seen of the lane right after the failure (a fresh read, not what the plan assumed). */
export interface ObservedAfterFailure {
  /** GitHub's registration: `online`/`offline` (with the runner id), `absent`, or `unknown` (GitHub could not be read). */
  readonly registration: "online" | "offline" | "absent" | "unknown";
  /** The lane on its host, from an inventory taken after the failure: `present`, `absent`, or `unknown`. */
  readonly host: "present" | "absent" | "unknown";
}

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
  /**
   * The lane record's state as the failure left it (`none` when there is no record): the note must not claim
   * more or less than that. Omitted when it could not be read.
   */
  readonly recordState?: string | undefined;
  /** The drained state is not certain: a label change got no answer, so it may or may not have happened. */
  readonly uncertain?: boolean | undefined;
  /** A fresh look at the lane after the failure, when one was taken (creates). */
  readonly observed?: ObservedAfterFailure | undefined;
}

/** The `lanes` verb that finishes an interrupted action of this kind, if any. */
function verbFor(f: RecoveryFacts): "drain" | "restart" | "remove" | undefined {
  if (f.operatorOp !== undefined) return f.operatorOp;
  if (f.kind === "remove" || f.kind === "restart" || f.kind === "drain") return f.kind;
  return undefined;
}

function recordText(f: RecoveryFacts): string {
  if (f.recordState === undefined) return "";
  return f.recordState === "none" ? "; it has no coordinator record" : `; its record says ${f.recordState}`;
}

function createdText(f: RecoveryFacts): string {
  const o = f.observed;
  if (o === undefined) return "";
  const host = o.host === "present" ? "the host reports the lane" : o.host === "absent" ? "the host's newest inventory does not report the lane (yet)" : "the host's view is unknown";
  const gh =
    o.registration === "unknown" ? "GitHub could not be read" : o.registration === "absent" ? "GitHub has no registration for it" : `its registration is ${o.registration}`;
  const verdict =
    o.registration === "online" && o.host === "present"
      ? " It looks healthy: do not remove it."
      : "";
  return ` Seen right after the failure: ${host}, ${gh}.${verdict}`;
}

/**
 * A recovery note naming the exact commands: what state the lane is in, why, and what to run. Written to the
 * lane record (`attention`) and to the terminal audit record, so `lanekeeper status` shows the same text.
 *
 * The commands named are the ones that actually act on the state left: an operator's `lanes <op>` is finished
 * by running it again (the planner leaves operator drains alone, so `apply` would not), a planned action by
 * `lanekeeper apply`. A lane that may be healthy is never given a destructive command; `lanekeeper status` and
 * `lanekeeper plan` come first when the outcome is uncertain.
 */
export function recoveryNote(f: RecoveryFacts): string {
  const lane = f.laneId;
  const verb = verbFor(f);
  const why = `${f.code} at ${f.step}: ${f.cause}`;
  if (f.code === "DRAIN_DEADLINE") {
    const v = verb ?? "drain";
    return (
      `lane ${lane} on ${f.hostId} is drained (label lk-draining, no new job) but was not idle at the deadline (${f.cause}); nothing was killed${recordText(f)}. ` +
      `Wait longer: \`lanekeeper lanes ${v} ${lane} --deadline 2h\`; or stop the job (audited, asks for confirmation): ` +
      `\`lanekeeper lanes ${v} ${lane} --force --deadline 10m\`; or put the lane back in service: \`lanekeeper lanes release ${lane}\`.`
    );
  }
  switch (f.safeState) {
    case "untouched":
      if (f.operatorOp !== undefined) {
        const back = f.recordState === "draining" || f.recordState === "needs-attention";
        const tail =
          f.recordState === "removing"
            ? "; until then `lanekeeper apply` would resume the removal its record asks for."
            : back
              ? `; \`lanekeeper lanes release ${lane}\` puts it back in service instead.`
              : ".";
        return (
          `nothing was changed on ${f.hostId} or GitHub for lane ${lane} (${why}): the lane is as it was before this command${recordText(f)}. ` +
          `Once the cause is fixed, run \`lanekeeper lanes ${f.operatorOp} ${lane}\` again${tail}`
        );
      }
      return (
        `nothing was changed on ${f.hostId} or GitHub for lane ${lane} (${why})${recordText(f)}. ` +
        "Fix the cause, then re-run `lanekeeper apply` (`lanekeeper plan` shows what it will do)."
      );
    case "drained": {
      const state = f.uncertain === true ? "may be drained (a label change got no answer)" : "is drained (label lk-draining, no new job)";
      const head = `lane ${lane} on ${f.hostId} ${state} and still there (${why})${recordText(f)}. `;
      if (f.operatorOp !== undefined) {
        // `apply` does not finish an operator's command: it leaves operator drains alone and undoes other drains.
        return head + `Finish with \`lanekeeper lanes ${f.operatorOp} ${lane}\`, or put it back in service: \`lanekeeper lanes release ${lane}\`.`;
      }
      return (
        head +
        (verb === undefined || verb === "drain"
          ? "Re-run `lanekeeper apply` to converge (`lanekeeper plan` shows what it will do); "
          : `Finish with \`lanekeeper lanes ${verb} ${lane}\` or re-run \`lanekeeper apply\`; `) +
        `to put it back in service: \`lanekeeper lanes release ${lane}\`.`
      );
    }
    case "stopped":
      return (
        `lane ${lane} on ${f.hostId} is stopped or half removed (${why})${recordText(f)}. ` +
        `Finish with \`lanekeeper lanes ${verb === "restart" ? "restart" : "remove"} ${lane}\` (or re-run \`lanekeeper apply\`); ` +
        `\`lanekeeper status\` and \`lanekeeper-agent status\` on ${f.hostId} show its state.`
      );
    case "created-unverified":
      return (
        `lane ${lane} may exist on ${f.hostId} without being verified online yet (${why})${recordText(f)}. ` +
        `See \`lanekeeper status\` (or \`lanekeeper plan\`) for its state now.${createdText(f)} ` +
        "Re-run `lanekeeper apply`: it completes the record once the runner is online with its lane on the host (CREATE_COMPLETED), " +
        "or cleans the lane up as an orphan after the grace period if it never comes up."
      );
  }
}
