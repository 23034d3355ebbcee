import type { GitHubClientMetrics } from "./github-metrics.js";
import type {
  DeleteRunnerOutcome,
  GitHubRunner,
  GitHubRunnerLabel,
  JitConfig,
  JitConfigRequest,
  RunnerApplication,
  RunnerGroup,
  RunnerList,
  RunnerToken,
} from "./github-types.js";
import type { RateLimitState } from "./rate-limit-tracker.js";
import type { CreateBudgetUsage } from "./create-budget.js";

/**
 * Everything the coordinator asks of GitHub. `scope` is a policy scope: `owner/repo` or `org:<org>`.
 *
 * Rate-limit reserve: when `remaining <= reserve`, observation (`listRunners`, `listRunnerGroups`) and creation
 * (`createRegistrationToken`, `generateJitConfig`) throw `GitHubRateLimitReserveError` without sending; removals
 * (`deleteRunner`, `createRemoveToken`), label changes and `getRunner` (which drains and removal guards depend
 * on) still go out.
 *
 * Errors are `GitHubApiError` subclasses with stable codes (`GITHUB_NOT_FOUND`, `GITHUB_AUTH`, `GITHUB_FORBIDDEN`,
 * `GITHUB_RATE_LIMITED`, `GITHUB_RUNNER_BUSY`, `GITHUB_CONFLICT`, `GITHUB_API`).
 */
export interface GitHubClient {
  /**
   * Every runner of the scope, all pages, each page a conditional request (`If-None-Match` with the page's
   * cached ETag). Pages answered 304 come from the cache and cost no rate limit.
   */
  listRunners(scope: string): Promise<RunnerList>;
  /** One runner, or `undefined` on 404. */
  getRunner(scope: string, runnerId: number): Promise<GitHubRunner | undefined>;
  /**
   * Delete a registration. Only the apply engine calls it, after its guards (runner id matches the record,
   * identity labels present, not busy). A 404 is `not-found`; a busy runner throws `GitHubRunnerBusyError`.
   */
  deleteRunner(scope: string, runnerId: number): Promise<DeleteRunnerOutcome>;
  /** A registration token for `config.sh` (persistent lanes). */
  createRegistrationToken(scope: string): Promise<RunnerToken>;
  /** A remove token for `config.sh remove`. */
  createRemoveToken(scope: string): Promise<RunnerToken>;
  /** A JIT registration (ephemeral lanes). Never retried: a retry after a lost response would conflict. */
  generateJitConfig(scope: string, request: JitConfigRequest): Promise<JitConfig>;
  /** Replace every custom label; returns the runner's labels after the change. */
  setCustomLabels(scope: string, runnerId: number, labels: readonly string[]): Promise<readonly GitHubRunnerLabel[]>;
  /** Add custom labels; returns the runner's labels after the change. */
  addLabels(scope: string, runnerId: number, labels: readonly string[]): Promise<readonly GitHubRunnerLabel[]>;
  /** Remove one custom label; 404 (`GitHubNotFoundError`) when the runner or the label is not there. */
  removeLabel(scope: string, runnerId: number, label: string): Promise<readonly GitHubRunnerLabel[]>;
  /** The runner groups of an organization (`org` without the `org:` prefix), all pages. */
  listRunnerGroups(org: string): Promise<readonly RunnerGroup[]>;
  /**
   * The scope's runner downloads (`runner-application`: file name, URL, SHA-256), a conditional request with
   * the cached ETag.
   */
  listRunnerDownloads(scope: string): Promise<readonly RunnerApplication[]>;
  /** The rate limit as last reported by GitHub, with the reserve state. */
  rateLimit(): RateLimitState;
  /** Call, 304, points-spent and retry counters. */
  metrics(): GitHubClientMetrics;
  /**
   * The shared create budget now, when this client enforces one (`github/budgeted-github-client.ts`): the planner
   * defers JIT creates beyond it, and `plan` shows it.
   */
  createBudgetUsage?(): Promise<CreateBudgetUsage>;
}
