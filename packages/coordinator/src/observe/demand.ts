/**
 * Demand: the workflow jobs GitHub reported for the scopes the policy manages, as the planner sees them. The
 * coordinator builds it from `workflow_job` webhooks and a budgeted REST reconciliation (`../demand/`); the
 * planner only reads it (`plan/`), so the scaling rule stays a pure function.
 */

/** Where a job's latest state came from. */
export type DemandSource = "webhook" | "rest";

/** One workflow job in a managed scope. */
export interface DemandJob {
  /** GitHub's workflow job id. */
  readonly id: number;
  readonly runId: number;
  /** The policy scope it belongs to (`owner/repo` or `org`). */
  readonly scope: string;
  /** `owner/repo` the job runs in. */
  readonly repository: string;
  /** The job's `runs-on` labels, as GitHub reports them. */
  readonly labels: readonly string[];
  readonly status: "queued" | "in_progress" | "completed";
  /** The runner that took it (`in_progress` and `completed` only). */
  readonly runnerName?: string | undefined;
  /** When it was queued (ms since the epoch). */
  readonly createdAtMs: number;
  readonly startedAtMs?: number | undefined;
  readonly completedAtMs?: number | undefined;
  readonly source: DemandSource;
}

/** Everything known about demand when a plan is made. */
export interface DemandSnapshot {
  /** Queued and running jobs, and jobs completed recently (kept for scale-down hysteresis). */
  readonly jobs: readonly DemandJob[];
  /** Per scope, when the REST reconciliation last confirmed the job list (ms); absent: never. */
  readonly reconciledAtMs: Readonly<Record<string, number>>;
}
