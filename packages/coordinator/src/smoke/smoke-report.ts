import { formatDuration } from "../cli/duration.js";
import type { SmokeJob } from "./smoke-workflow.js";

/** The steps of a smoke run, in order. */
export type SmokeStepName = "preflight" | "create" | "online" | "workflow" | "restart" | "online-again" | "remove" | "gone" | "audit" | "cleanup";

/** How one step ended. */
export interface SmokeStep {
  readonly name: SmokeStepName;
  readonly status: "ok" | "failed" | "skipped";
  readonly elapsedMs: number;
  /** What was seen (ok) or what went wrong (failed). */
  readonly detail: string;
  readonly code?: string;
}

/** Something the smoke run could not take away, and the command that finishes it. */
export interface SmokeLeftover {
  readonly what: string;
  readonly command: string;
}

/** The report of `lanekeeper smoke` (`--json` prints it as is). */
export interface SmokeReport {
  readonly ok: boolean;
  readonly runId: string;
  readonly scope: string;
  readonly hostId: string;
  readonly pool: string;
  readonly backend: string;
  readonly laneId: string;
  readonly label: string;
  /** True when SIGINT stopped the run. */
  readonly interrupted: boolean;
  readonly steps: readonly SmokeStep[];
  readonly job?: SmokeJob;
  /** Whether anything of the smoke lane is left (empty: nothing). */
  readonly leftovers: readonly SmokeLeftover[];
  readonly elapsedMs: number;
}

/** The human report: one line per step with its timing, the job, then what is left and how to finish it. */
export function smokeReportToText(r: SmokeReport): string {
  const lines = [`smoke ${r.runId}: lane ${r.laneId} (label ${r.label}) of ${r.scope}/${r.pool} (${r.backend}) on ${r.hostId}`];
  for (const s of r.steps) {
    const mark = s.status === "ok" ? "✓" : s.status === "skipped" ? "-" : "✗";
    lines.push(`  ${mark} ${s.name.padEnd(12)} ${formatDuration(s.elapsedMs).padStart(7)}  ${s.code === undefined ? "" : `${s.code}: `}${s.detail}`);
  }
  if (r.job !== undefined) lines.push(`  job ${r.job.jobId} of run ${r.job.runId} (${r.job.workflow} on ${r.job.ref}) ran on ${r.job.runnerName ?? "?"}: ${r.job.conclusion ?? "?"}`);
  if (r.leftovers.length === 0) {
    lines.push(`  nothing of the smoke lane is left (registration, ${r.backend === "container" ? "container" : "unit"}, record)`);
  } else {
    lines.push("  NOT CLEANED UP:");
    for (const l of r.leftovers) lines.push(`    ${l.what}\n      finish with: ${l.command}`);
  }
  const verdict = r.ok ? "PASSED" : r.interrupted ? "INTERRUPTED" : "FAILED";
  lines.push(`smoke ${verdict} in ${formatDuration(r.elapsedMs)}`);
  return `${lines.join("\n")}\n`;
}
