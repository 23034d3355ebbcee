import type { DemandJob } from "../observe/demand.js";

/** Order of a job's life: a state never goes back to an earlier one. */
const RANK: Readonly<Record<DemandJob["status"], number>> = { queued: 0, in_progress: 1, completed: 2 };

/** Whether `status` comes later in a job's life than `than`. */
export function laterStatus(status: DemandJob["status"], than: DemandJob["status"]): boolean {
  return RANK[status] > RANK[than];
}

/**
 * Merge an observation of a job into what is stored, monotonically: webhooks arrive late, out of order or twice,
 * and a REST listing can be older than a delivery, so a `queued` seen after `in_progress` (or `completed`) never
 * moves the job back. An observation of the same state only fills in what was missing (runner, times). Returns
 * the job to store, or `undefined` when the observation changes nothing.
 */
export function mergeDemandJob(current: DemandJob | undefined, seen: DemandJob): DemandJob | undefined {
  if (current === undefined) return seen;
  if (RANK[seen.status] < RANK[current.status]) return undefined;
  if (RANK[seen.status] > RANK[current.status]) {
    return {
      ...seen,
      // GitHub's created_at does not change; keep the first reading, and what the newer one lacks.
      createdAtMs: Math.min(current.createdAtMs, seen.createdAtMs),
      labels: seen.labels.length > 0 ? seen.labels : current.labels,
      runnerName: seen.runnerName ?? current.runnerName,
      startedAtMs: seen.startedAtMs ?? current.startedAtMs,
    };
  }
  const filled: DemandJob = {
    ...current,
    labels: current.labels.length > 0 ? current.labels : seen.labels,
    runnerName: current.runnerName ?? seen.runnerName,
    startedAtMs: current.startedAtMs ?? seen.startedAtMs,
    completedAtMs: current.completedAtMs ?? seen.completedAtMs,
  };
  const changed =
    filled.labels !== current.labels ||
    filled.runnerName !== current.runnerName ||
    filled.startedAtMs !== current.startedAtMs ||
    filled.completedAtMs !== current.completedAtMs;
  return changed ? { ...filled, source: seen.source } : undefined;
}
