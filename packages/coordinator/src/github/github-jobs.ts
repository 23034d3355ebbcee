/** One page-set of a conditional listing: what it holds, and what it cost. */
export interface ConditionalList<T> {
  readonly items: readonly T[];
  /** Every page was answered 304 (from the ETag cache, no rate limit spent). */
  readonly notModified: boolean;
  /** HTTP requests sent (304s included). */
  readonly requests: number;
  /** False when there were more pages than asked for. */
  readonly complete: boolean;
}

/**
 * The workflow reads of the demand reconciliation (`../demand/`): runs by status, a run's jobs, one job, and an
 * organization's repositories. Every listing page and job read is a conditional request with the page's cached
 * ETag, so an unchanged answer is a 304 that spends no rate limit; all of them are deferred under the rate-limit
 * reserve like any observation. Jobs come back as GitHub's raw objects; the demand module parses them.
 */
export interface GitHubJobReads {
  /** Ids of the runs of `repo` (`owner/name`) with this status, newest first, at most `maxPages` pages. */
  listRunIdsByStatus(repo: string, status: "queued" | "in_progress", maxPages: number): Promise<ConditionalList<number>>;
  /** Every job of a run (raw `job` objects). */
  listJobsOfRun(repo: string, runId: number): Promise<ConditionalList<unknown>>;
  /** One job (raw), or `undefined` when GitHub answers 404 (the run was deleted). */
  getJob(repo: string, jobId: number): Promise<unknown>;
  /** Full names (`owner/name`) of an organization's repositories, at most `maxPages` pages. */
  listOrgRepos(org: string, maxPages: number): Promise<ConditionalList<string>>;
}

/** Whether a GitHub client also makes the demand reads. */
export function hasJobReads(x: object): x is GitHubJobReads {
  const o = x as Partial<GitHubJobReads>;
  return typeof o.listRunIdsByStatus === "function" && typeof o.listJobsOfRun === "function" && typeof o.getJob === "function" && typeof o.listOrgRepos === "function";
}
