/**
 * Which scaling group (scope, pool) a workflow job is demand for. GitHub routes a job to a runner whose labels
 * include every `runs-on` label of the job, ignoring case (the emulator's `labelsSatisfy` does the same). Lanes
 * register with `--no-default-labels`, so `self-hosted`, the OS and the architecture match only when the pool
 * lists them among its labels: exactly what GitHub does with such a runner.
 */
import { MANAGED_LABEL, POOL_LABEL_PREFIX } from "@lanekeeper/shared";
import type { DemandJob } from "../observe/demand.js";
import { cmp } from "./plan-context.js";

/** A group a job may be demand for. */
export interface MatchGroup {
  readonly scope: string;
  readonly pool: string;
  /** The pool's capability labels. */
  readonly labels: readonly string[];
}

/**
 * The labels every lane of the group registers with, whatever its host: the capability labels plus `lk-managed`
 * and `lk-pool-<pool>`. Lane- and host-specific labels (`lk-lane-…`, `lk-host-…`) are left out on purpose: a
 * job that names one could only run on that one lane or host, so a new lane would never serve it.
 */
export function groupLabels(group: Pick<MatchGroup, "pool" | "labels">): string[] {
  return [...group.labels, MANAGED_LABEL, `${POOL_LABEL_PREFIX}${group.pool}`];
}

/** True when every one of `jobLabels` is among `offered`, ignoring case (GitHub's rule). An empty `runs-on` matches nothing. */
export function jobLabelsMatch(jobLabels: readonly string[], offered: readonly string[]): boolean {
  if (jobLabels.length === 0) return false;
  const have = new Set(offered.map((l) => l.toLowerCase()));
  return jobLabels.every((l) => have.has(l.toLowerCase()));
}

/**
 * The one group a job counts for, or `undefined` when no group of its scope matches. A job several groups could
 * serve counts once, for the matching group whose pool name sorts first (code-unit order): deterministic, and
 * stable from plan to plan, so the same job never makes two groups grow.
 */
export function groupForJob(job: Pick<DemandJob, "scope" | "labels">, groups: readonly MatchGroup[]): MatchGroup | undefined {
  let best: MatchGroup | undefined;
  for (const g of groups) {
    if (g.scope !== job.scope || !jobLabelsMatch(job.labels, groupLabels(g))) continue;
    if (best === undefined || cmp(g.pool, best.pool) < 0) best = g;
  }
  return best;
}

/**
 * The jobs of each group, keyed `scope\0pool`: every job once, in the group {@link groupForJob} picks, jobs of the
 * same id counted once (the latest state wins: completed over in progress over queued), so duplicate `queued`
 * deliveries never add demand.
 */
export function jobsByGroup(jobs: readonly DemandJob[], groups: readonly MatchGroup[]): Map<string, DemandJob[]> {
  const rank = { queued: 0, in_progress: 1, completed: 2 } as const;
  const byId = new Map<number, DemandJob>();
  for (const j of jobs) {
    const prev = byId.get(j.id);
    if (prev === undefined || rank[j.status] > rank[prev.status]) byId.set(j.id, j);
  }
  const out = new Map<string, DemandJob[]>();
  for (const j of [...byId.values()].sort((a, b) => a.id - b.id)) {
    const g = groupForJob(j, groups);
    if (g === undefined) continue;
    const key = `${g.scope}\u0000${g.pool}`;
    const list = out.get(key);
    if (list === undefined) out.set(key, [j]);
    else list.push(j);
  }
  return out;
}
