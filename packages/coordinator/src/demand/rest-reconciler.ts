import { parseScope, systemClock, type Clock, type Logger } from "@lanekeeper/shared";
import { GitHubRateLimitReserveError } from "../github/github-errors.js";
import type { GitHubJobReads } from "../github/github-jobs.js";
import type { DemandJob } from "../observe/demand.js";
import type { JobStore, JobTransition } from "./job-store.js";
import { MAX_JOB_LOOKUPS_PER_PASS, MAX_ORG_REPO_PAGES, MAX_RUN_PAGES } from "./limits.js";
import { demandJobOf, isNotDemand } from "./workflow-job-parse.js";

/** What one scope's pass did. */
export interface ScopePass {
  readonly scope: string;
  readonly result: "ok" | "failed" | "deferred";
  /** Repositories whose runs were listed. */
  readonly repos: number;
  /** Jobs whose stored state changed. */
  readonly changed: number;
  /** Stored open jobs GitHub no longer listed, read one by one. */
  readonly lookedUp: number;
  /** GitHub requests sent (304s included: they cost no rate limit). */
  readonly requests: number;
  readonly error?: string;
}

/** Where the pass reports (the coordinator's metrics). */
export interface RestPassObserver {
  demandRest(operation: string, calls: number): void;
  demandPass(result: ScopePass["result"]): void;
}

/** Options of {@link RestDemandReconciler}. */
export interface RestDemandReconcilerOptions {
  readonly github: GitHubJobReads & { rateLimit(): { readonly reserveActive: boolean } };
  readonly jobs: JobStore;
  /** How often an organization's full repository list is read (between, only repositories with stored jobs). */
  readonly orgReposIntervalMs: number;
  readonly onTransition?: (t: JobTransition) => void;
  readonly observer?: RestPassObserver;
  readonly clock?: Clock;
  readonly log?: Logger;
}

/**
 * The REST half of demand: per scope, list the runs GitHub reports `queued` and `in_progress` and their jobs, merge
 * them into the job store, then read one by one the jobs the store still thinks open that GitHub no longer listed
 * (a missed `completed` webhook, ARC #2466, garm #590; a deleted run answers 404 and closes the job). Listings and
 * job reads are conditional, so an unchanged queue costs no rate limit. A scope is marked reconciled only when the
 * whole pass succeeded.
 *
 * Organization scopes: GitHub has no organization-wide runs list. Each pass covers the repositories that have jobs
 * in the store (seen in webhooks or an earlier pass); every `orgReposIntervalMs` it also reads the organization's
 * repository list (bounded pages) and covers all of them, so a job whose every webhook was lost is still found
 * within that interval. If the repository list cannot be read (a token without that right), the pass keeps to
 * the repositories it knows and says so in the log.
 */
export class RestDemandReconciler {
  private readonly clock: Clock;
  /** Per organization: its repositories and when they were read. */
  private readonly orgRepos = new Map<string, { repos: readonly string[]; atMs: number }>();

  constructor(private readonly o: RestDemandReconcilerOptions) {
    this.clock = o.clock ?? systemClock;
  }

  /** One pass over `scope`. Never throws: a failure is reported in the result. */
  async reconcileScope(scope: string): Promise<ScopePass> {
    const startedAtMs = this.clock.now();
    let requests = 0;
    let changed = 0;
    let lookedUp = 0;
    let repos: readonly string[] = [];
    const count = (op: string, n: number): void => {
      requests += n;
      this.o.observer?.demandRest(op, n);
    };
    const record = async (job: DemandJob): Promise<void> => {
      const t = await this.o.jobs.record(job);
      if (t === undefined) return;
      changed++;
      this.o.onTransition?.(t);
    };
    const done = (result: ScopePass["result"], error?: string): ScopePass => {
      this.o.observer?.demandPass(result);
      const pass = { scope, result, repos: repos.length, changed, lookedUp, requests, ...(error === undefined ? {} : { error }) };
      if (result === "ok") this.o.log?.debug(pass, "demand reconciled");
      else this.o.log?.warn(pass, "demand reconciliation incomplete");
      return pass;
    };
    if (this.o.github.rateLimit().reserveActive) return done("deferred", "rate-limit reserve active");
    try {
      const stored = (await this.o.jobs.list()).filter((j) => j.scope === scope);
      repos = await this.reposOf(scope, stored, count);
      const open = new Set<number>();
      let complete = true;
      for (const repo of repos) {
        for (const status of ["queued", "in_progress"] as const) {
          const runs = await this.o.github.listRunIdsByStatus(repo, status, MAX_RUN_PAGES);
          count("listRunIdsByStatus", runs.requests);
          complete &&= runs.complete;
          for (const runId of runs.items) {
            const jobs = await this.o.github.listJobsOfRun(repo, runId);
            count("listJobsOfRun", jobs.requests);
            for (const raw of jobs.items) {
              const job = this.parse(raw, scope, repo);
              if (job === undefined) continue;
              if (job.status !== "completed") open.add(job.id);
              await record(job);
            }
          }
        }
      }
      // Jobs still open in the store that no listing showed: ask for each (its run may be past the pages read, so
      // only when the listing was complete is absence evidence; the read answers either way).
      const missing = stored.filter((j) => j.status !== "completed" && !open.has(j.id)).slice(0, MAX_JOB_LOOKUPS_PER_PASS);
      for (const j of missing) {
        const raw = await this.o.github.getJob(j.repository, j.id);
        count("getJob", 1);
        lookedUp++;
        if (raw === undefined) {
          // 404: the run was deleted; the job will never run.
          await record({ ...j, status: "completed", completedAtMs: this.clock.now(), source: "rest" });
          continue;
        }
        const job = this.parse(raw, scope, j.repository);
        if (job !== undefined) await record(job);
      }
      if (!complete) return done("failed", `more than ${MAX_RUN_PAGES} pages of runs; the rest waits for the next pass`);
      await this.o.jobs.markReconciled(scope, startedAtMs);
      return done("ok");
    } catch (err) {
      if (err instanceof GitHubRateLimitReserveError) return done("deferred", "rate-limit reserve active");
      return done("failed", err instanceof Error ? err.message : String(err));
    }
  }

  private parse(raw: unknown, scope: string, repository: string): DemandJob | undefined {
    try {
      const j = demandJobOf(raw, { scope, repository, source: "rest" });
      return isNotDemand(j) ? undefined : j;
    } catch (err) {
      this.o.log?.warn({ scope, repository, err: (err as Error).message }, "workflow job from GitHub not understood; skipped");
      return undefined;
    }
  }

  /** The repositories a pass covers: the scope's own, or for an organization the bounded set described above. */
  private async reposOf(scope: string, stored: readonly DemandJob[], count: (op: string, n: number) => void): Promise<readonly string[]> {
    const s = parseScope(scope);
    if (s.kind === "repo") return [`${s.owner}/${s.repo}`];
    const known = new Map<string, string>();
    for (const j of stored) known.set(j.repository.toLowerCase(), j.repository);
    const now = this.clock.now();
    const cached = this.orgRepos.get(s.org);
    if (cached === undefined || now - cached.atMs >= this.o.orgReposIntervalMs) {
      try {
        const list = await this.o.github.listOrgRepos(s.org, MAX_ORG_REPO_PAGES);
        count("listOrgRepos", list.requests);
        this.orgRepos.set(s.org, { repos: list.items, atMs: now });
        for (const r of list.items) known.set(r.toLowerCase(), r);
      } catch (err) {
        if (err instanceof GitHubRateLimitReserveError) throw err;
        // Remember the failure for the interval too, so a token without the right does not pay for it every pass.
        this.orgRepos.set(s.org, { repos: [], atMs: now });
        this.o.log?.warn({ scope, err: (err as Error).message }, "cannot list the organization's repositories; reconciling the repositories seen in webhooks only");
      }
    }
    return [...known.values()].sort();
  }
}
