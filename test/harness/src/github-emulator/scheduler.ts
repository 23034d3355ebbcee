/**
 * GitHub's job-to-runner matching, as pure functions: a runner may take a job when it is idle and online,
 * its scope can serve the job's repository, and its label names contain every `runs-on` label of the job,
 * compared case-insensitively.
 */
import type { GroupRecord, JobRecord, RepoRecord, RunnerRecord, ScopeKey } from "./state.js";
import { scopeKey } from "./state.js";

/** True when `runnerLabels` contain every label of `jobLabels`, ignoring case. */
export function labelsSatisfy(runnerLabels: readonly string[], jobLabels: readonly string[]): boolean {
  const have = new Set(runnerLabels.map((l) => l.toLowerCase()));
  return jobLabels.every((l) => have.has(l.toLowerCase()));
}

/**
 * True when a runner registered at `runnerScope` (in `group`, for organization runners) may run jobs of
 * `repo`: a repository runner serves its own repository; an organization runner serves the organization's
 * repositories that its group admits (`visibility: selected` lists them).
 */
export function scopeServes(runnerScope: ScopeKey, group: GroupRecord, repo: RepoRecord): boolean {
  if (runnerScope === scopeKey.repo(repo.owner, repo.name)) return true;
  if (runnerScope !== scopeKey.org(repo.owner)) return false;
  return group.visibility !== "selected" || group.selectedRepositoryIds.includes(repo.id);
}

/** A runner waiting in a long poll, as the scheduler sees it. */
export interface WaitingRunner {
  runner: RunnerRecord;
  group: GroupRecord;
}

/**
 * The waiting runner a queued job goes to: the first (longest-waiting) one that is idle and matches, or
 * undefined. `waiting` must be in arrival order and contain only online runners.
 */
export function pickRunner(job: JobRecord, repo: RepoRecord, waiting: readonly WaitingRunner[]): WaitingRunner | undefined {
  return waiting.find(
    (w) =>
      w.runner.jobId === null &&
      scopeServes(w.runner.scope, w.group, repo) &&
      labelsSatisfy(
        w.runner.labels.map((l) => l.name),
        job.labels,
      ),
  );
}
