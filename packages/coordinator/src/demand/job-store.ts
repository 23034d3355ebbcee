import type { DemandJob } from "../observe/demand.js";

/** A change {@link JobStore.record} made: the job before (absent: first seen) and after. */
export interface JobTransition {
  readonly before: DemandJob | undefined;
  readonly after: DemandJob;
}

/**
 * Where the coordinator keeps the workflow jobs of its managed scopes: shared by every coordinator (JetStream KV
 * in production, {@link MemoryJobStore} in unit tests), so a new leader continues with the same view. Every write
 * goes through {@link mergeDemandJob}: a job's state only moves forward.
 */
export interface JobStore {
  /** Merge one observation of a job; answers the change, or `undefined` when it changed nothing. */
  record(job: DemandJob): Promise<JobTransition | undefined>;
  get(id: number): Promise<DemandJob | undefined>;
  /** Every stored job, by id. */
  list(): Promise<DemandJob[]>;
  /** Forget completed jobs that completed before `beforeMs`; answers how many. */
  prune(beforeMs: number): Promise<number>;
  /** Per scope, when the REST reconciliation last confirmed its job list (ms). */
  reconciledAt(): Promise<Record<string, number>>;
  markReconciled(scope: string, atMs: number): Promise<void>;
}

/** When a completed job counts as completed (for pruning): its completion time, else its creation time. */
export function completedAtOf(job: DemandJob): number {
  return job.completedAtMs ?? job.startedAtMs ?? job.createdAtMs;
}
