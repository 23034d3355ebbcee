import type { DemandSnapshot } from "../observe/demand.js";
import type { JobStore } from "./job-store.js";

/**
 * What the planner reads about demand: every stored job (queued, running, and completed within the retention
 * window) and when each scope was last confirmed by the REST reconciliation. Jobs of scopes outside `scopes` (a
 * scope the policy no longer sizes from demand) are left out.
 */
export async function readDemandSnapshot(jobs: Pick<JobStore, "list" | "reconciledAt">, scopes?: readonly string[]): Promise<DemandSnapshot> {
  const [all, reconciledAtMs] = await Promise.all([jobs.list(), jobs.reconciledAt()]);
  const keep = scopes === undefined ? undefined : new Set(scopes);
  return {
    jobs: keep === undefined ? all : all.filter((j) => keep.has(j.scope)),
    reconciledAtMs: keep === undefined ? reconciledAtMs : Object.fromEntries(Object.entries(reconciledAtMs).filter(([s]) => keep.has(s))),
  };
}
