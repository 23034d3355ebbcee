import type { ApplyReport } from "../apply/apply-events.js";
import { formatDuration } from "./duration.js";
import { ExitCode, exitCodeForCode } from "./exit-codes.js";
import { renderTable } from "./render-table.js";

/** An apply or lanes report for humans: one row per action, then every recovery note in full. */
export function reportToText(report: ApplyReport): string {
  if (report.outcomes.length === 0) return report.dryRun ? "Dry run: nothing to do.\n" : "Nothing to do.\n";
  const rows = report.outcomes.map((o) => [
    o.kind,
    o.laneId,
    o.hostId,
    o.status,
    o.code === undefined ? "" : `${o.code}${o.failedStep === undefined ? "" : ` (${o.failedStep})`}`,
    formatDuration(o.elapsedMs),
  ]);
  const out = [
    report.dryRun ? `Dry run of plan ${report.planId}: nothing was changed; the plan is in the audit log (dry-run records).\n` : "",
    renderTable(["ACTION", "LANE", "HOST", "RESULT", "CODE", "TIME"], rows),
  ];
  const notes = report.outcomes.filter((o) => o.recovery !== undefined);
  if (notes.length > 0) {
    out.push("\nRecovery:\n");
    for (const o of notes) out.push(`  ${o.laneId}: ${o.recovery ?? ""}\n`);
  }
  return out.join("");
}

/**
 * The exit code of a report: OK when every action succeeded (or it was a dry run), NEEDS_ATTENTION when a drain
 * hit its deadline, ACTION_FAILED when any other action failed or was skipped.
 */
export function exitCodeForReport(report: ApplyReport): ExitCode {
  if (report.dryRun || report.ok) return ExitCode.OK;
  if (report.outcomes.some((o) => o.status === "needs-attention")) return exitCodeForCode("NEEDS_ATTENTION");
  return exitCodeForCode("APPLY_FAILED");
}
