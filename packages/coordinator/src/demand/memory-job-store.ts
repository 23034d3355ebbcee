import type { DemandJob } from "../observe/demand.js";
import { mergeDemandJob } from "./demand-job-merge.js";
import { completedAtOf, type JobStore, type JobTransition } from "./job-store.js";

/** {@link JobStore} in memory, for unit tests and one-shot tools. */
export class MemoryJobStore implements JobStore {
  private readonly jobs = new Map<number, DemandJob>();
  private readonly reconciled: Record<string, number> = {};

  record(job: DemandJob): Promise<JobTransition | undefined> {
    const before = this.jobs.get(job.id);
    const after = mergeDemandJob(before, job);
    if (after === undefined) return Promise.resolve(undefined);
    this.jobs.set(job.id, after);
    return Promise.resolve({ before, after });
  }

  get(id: number): Promise<DemandJob | undefined> {
    return Promise.resolve(this.jobs.get(id));
  }

  list(): Promise<DemandJob[]> {
    return Promise.resolve([...this.jobs.values()].sort((a, b) => a.id - b.id));
  }

  prune(beforeMs: number): Promise<number> {
    let n = 0;
    for (const [id, j] of this.jobs) {
      if (j.status === "completed" && completedAtOf(j) < beforeMs) {
        this.jobs.delete(id);
        n++;
      }
    }
    return Promise.resolve(n);
  }

  reconciledAt(): Promise<Record<string, number>> {
    return Promise.resolve({ ...this.reconciled });
  }

  markReconciled(scope: string, atMs: number): Promise<void> {
    this.reconciled[scope] = Math.max(this.reconciled[scope] ?? 0, atMs);
    return Promise.resolve();
  }
}
