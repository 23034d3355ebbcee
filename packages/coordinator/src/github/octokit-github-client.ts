import { randomBytes } from "node:crypto";
import { createAppAuth } from "@octokit/auth-app";
import { retry } from "@octokit/plugin-retry";
import { throttling } from "@octokit/plugin-throttling";
import { Octokit } from "@octokit/rest";
import { systemClock, type Clock } from "@lanekeeper/shared";
import type { Logger } from "pino";
import {
  DEFAULT_GITHUB_REQUEST_TIMEOUT_MS,
  DEFAULT_GITHUB_RETRIES,
  DEFAULT_MAX_RETRY_WAIT_SECONDS,
  DEFAULT_RATE_LIMIT_RESERVE,
  DEFAULT_RATE_LIMIT_RETRIES,
  DEFAULT_RETRY_BASE_MS,
  DEFAULT_RUNNER_DOWNLOADS_TTL_MS,
  DEFAULT_SECONDARY_RETRY_AFTER_SECONDS,
  GITHUB_CONNECTION_ATTEMPTS,
  GITHUB_PER_PAGE,
  MAX_ETAG_CACHE_ENTRIES,
  MAX_GITHUB_MESSAGE_CHARS,
  MAX_RUNNER_PAGES,
} from "../limits.js";
import { connectionFailureOf, safeRequestUrl } from "./connection-failure.js";
import { EtagCache } from "./etag-cache.js";
import type { GitHubClient } from "./github-client.js";
import {
  GitHubApiError,
  GitHubAuthError,
  GitHubForbiddenError,
  GitHubConflictError,
  GitHubNotFoundError,
  GitHubRateLimitedError,
  GitHubRateLimitReserveError,
  GitHubRunnerBusyError,
  GitHubUnreachableError,
  type GitHubErrorFacts,
} from "./github-errors.js";
import { GitHubMetricsRecorder, type GitHubClientMetrics } from "./github-metrics.js";
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
import { parseWorkflowJobs, parseWorkflowRuns, type GitHubWorkflows, type WorkflowJobSummary, type WorkflowRunSummary } from "./github-workflows.js";
import type { ConditionalList, GitHubJobReads } from "./github-jobs.js";
import { RateLimitTracker, type CallPurpose, type RateLimitState } from "./rate-limit-tracker.js";
import { RedactedSecret } from "./redacted-secret.js";
import { RunnerDownloadsCache } from "./runner-downloads-cache.js";
import {
  hasNextPage,
  parseJitConfig,
  parseLabelList,
  parseRunner,
  parseRunnerApplications,
  parseRunnerGroupPage,
  parseRunnerPage,
  parseToken,
} from "./runner-parse.js";
import { scopeRoute } from "./scope-route.js";

/** How the client authenticates. Secrets stay wrapped until handed to octokit. */
export type GitHubCredential =
  | { readonly kind: "token"; readonly token: RedactedSecret }
  | {
      readonly kind: "app";
      readonly appId: number | string;
      readonly privateKey: RedactedSecret;
      readonly installationId: number;
    };

/** Options of {@link OctokitGitHubClient}. */
export interface OctokitGitHubClientOptions {
  /** REST base URL: `https://api.github.com`, or `https://<host>/api/v3` for GHES. */
  readonly apiUrl: string;
  readonly credential: GitHubCredential;
  /**
   * Requests kept for removals: at or below this many remaining, observation and creation are deferred.
   * @default 200
   */
  readonly rateLimitReserve?: number;
  /** Retries of 5xx and network failures for idempotent calls. @default 3 */
  readonly retries?: number;
  /** Retries after a primary or secondary rate limit, per request. @default 2 */
  readonly rateLimitRetries?: number;
  /** A rate-limit retry that would wait longer is given up. @default 120 */
  readonly maxRetryWaitSeconds?: number;
  /** ms per unit of `retry-after` and of the 5xx backoff (`(n+1)^2` units). Tests shrink it. @default 1000 */
  readonly retryBaseMs?: number;
  /** Secondary-limit wait when GitHub sends no `retry-after`. @default 60 */
  readonly secondaryRetryAfterSeconds?: number;
  /**
   * How long one attempt may wait for an answer before it is aborted (a request that got no answer is tried
   * {@link GITHUB_CONNECTION_ATTEMPTS} times at most). @default 15000
   */
  readonly requestTimeoutMs?: number;
  /** Runners per page. @default 100 */
  readonly perPage?: number;
  /**
   * How long an answer of the runner downloads listing serves every scope before it is read again
   * ({@link RunnerDownloadsCache}; 0: every call asks). @default DEFAULT_RUNNER_DOWNLOADS_TTL_MS (10 min)
   */
  readonly runnerDownloadsTtlMs?: number;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Logger for throttling and retry events. Tokens are never logged. */
  readonly log?: Logger;
  /** fetch implementation (tests may wrap it to observe requests). @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** @default "lanekeeper" */
  readonly userAgent?: string;
}

interface CachedPage {
  readonly runners: readonly GitHubRunner[];
  readonly totalCount: number;
  readonly hasNext: boolean;
}

interface CallContext {
  attempts: number;
  /** Per-attempt timeout (ms). */
  readonly attemptTimeoutMs: number;
}

interface SendOptions {
  readonly headers?: Record<string, string>;
  readonly body?: Record<string, unknown>;
  /** Override the 5xx retry count (0 for non-idempotent calls). */
  readonly retries?: number;
}

interface SendResult {
  readonly status: number;
  readonly data: unknown;
  readonly headers: Readonly<Record<string, string | number | undefined>>;
}

/**
 * A request that got no HTTP answer and is not to be tried again. Not an octokit `RequestError`, so the retry
 * plugin passes it through; the client unwraps it to report the original failure.
 */
class ConnectionGiveUp extends Error {
  constructor(readonly original: unknown) {
    super("no answer from GitHub");
  }
}

/**
 * Counts attempts per logical call, gives each attempt its own timeout, and stops retrying a request that got no
 * HTTP answer after {@link GITHUB_CONNECTION_ATTEMPTS} attempts. Registered first, so it sits inside the retry
 * and throttling wrappers and sees every attempt.
 */
function attemptCounter(octokit: Parameters<typeof retry>[0]): void {
  const ctxOf = (options: { request?: unknown }): CallContext | undefined => (options.request as { lanekeeperCall?: CallContext } | undefined)?.lanekeeperCall;
  octokit.hook.before("request", (options) => {
    const ctx = ctxOf(options);
    if (ctx === undefined) return;
    ctx.attempts++;
    (options.request as { signal?: AbortSignal }).signal = AbortSignal.timeout(ctx.attemptTimeoutMs);
  });
  octokit.hook.error("request", (error, options) => {
    const ctx = ctxOf(options);
    const answered = (error as { response?: unknown }).response !== undefined;
    if (ctx !== undefined && !answered && connectionFailureOf(error) !== undefined) {
      const retries = (options.request as { retries?: number } | undefined)?.retries;
      if (ctx.attempts >= GITHUB_CONNECTION_ATTEMPTS || retries === 0) throw new ConnectionGiveUp(error);
    }
    throw error;
  });
}

const LanekeeperOctokit = Octokit.plugin(attemptCounter, retry, throttling);
type LanekeeperOctokit = InstanceType<typeof LanekeeperOctokit>;

/** A line of Octokit's request log for a failed request: "GET /path - 304 with id … in 12ms". */
const REQUEST_LOG_FAILURE = /^[A-Z]+ \S+ - (\d{3}) with id (\S+)/;

/**
 * Octokit's request log reports every non-2xx answer at error level, a 304 (a cache hit) included. This client
 * classifies those answers itself, so the request log is kept out of error: 304 at debug, the rest at warn.
 */
function logOctokitError(log: Logger | undefined, m: string): void {
  const match = REQUEST_LOG_FAILURE.exec(m);
  const status = match?.[1];
  // "500 with id UNKNOWN" is octokit's name for a request that got no answer at all; the client reports it as the
  // connection failure it was (GITHUB_UNREACHABLE), so the misleading line stays at debug.
  const noAnswer = status === "500" && match?.[2] === "UNKNOWN";
  if (status === "304" || noAnswer) log?.debug({ source: "octokit" }, m);
  else if (status !== undefined) log?.warn({ source: "octokit" }, m);
  else log?.error({ source: "octokit" }, m);
}

function headerString(v: string | number | undefined): string | undefined {
  return v === undefined ? undefined : String(v);
}

/**
 * {@link GitHubClient} over `@octokit/rest` with the throttling and retry plugins, conditional listing with a
 * per-page ETag cache, rate-limit accounting from `x-ratelimit-*` headers and a reserve kept for removals.
 */
export class OctokitGitHubClient implements GitHubClient, GitHubWorkflows, GitHubJobReads {
  private readonly octokit: LanekeeperOctokit;
  private readonly tracker: RateLimitTracker;
  private readonly recorder = new GitHubMetricsRecorder();
  private readonly etags = new EtagCache<CachedPage>(MAX_ETAG_CACHE_ENTRIES);
  /** Conditional reads of the demand reconciliation (runs, jobs, repositories), by URL. */
  private readonly readEtags = new EtagCache<{ readonly data: unknown; readonly hasNext: boolean }>(MAX_ETAG_CACHE_ENTRIES);
  private readonly downloadEtags = new EtagCache<RunnerApplication[]>(MAX_ETAG_CACHE_ENTRIES);
  private readonly downloads: RunnerDownloadsCache;
  private readonly clock: Clock;
  private readonly perPage: number;
  private readonly log: Logger | undefined;
  private readonly baseUrl: string;
  private readonly requestTimeoutMs: number;

  constructor(options: OctokitGitHubClientOptions) {
    this.clock = options.clock ?? systemClock;
    this.downloads = new RunnerDownloadsCache(options.runnerDownloadsTtlMs ?? DEFAULT_RUNNER_DOWNLOADS_TTL_MS, this.clock);
    this.perPage = options.perPage ?? GITHUB_PER_PAGE;
    this.log = options.log;
    this.baseUrl = options.apiUrl.replace(/\/+$/, "");
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_GITHUB_REQUEST_TIMEOUT_MS;
    this.tracker = new RateLimitTracker(options.rateLimitReserve ?? DEFAULT_RATE_LIMIT_RESERVE);
    const rateLimitRetries = options.rateLimitRetries ?? DEFAULT_RATE_LIMIT_RETRIES;
    const maxWait = options.maxRetryWaitSeconds ?? DEFAULT_MAX_RETRY_WAIT_SECONDS;
    const baseFetch = options.fetch ?? globalThis.fetch;
    const countingFetch: typeof fetch = async (input, init) => {
      this.recorder.request();
      const res = await baseFetch(input, init);
      this.recorder.response(res.status);
      this.tracker.update(res.headers, this.clock.now());
      return res;
    };
    const log = this.log;
    const onLimit =
      (kind: "primary" | "secondary") =>
      (retryAfter: number, opts: { method: string; url: string }, _o: unknown, retryCount: number): boolean => {
        const willRetry = retryCount < rateLimitRetries && retryAfter <= maxWait;
        // opts.url is the route template (no query, no headers), so nothing secret is logged.
        log?.warn(
          { kind, method: opts.method, route: opts.url, retryAfterSeconds: retryAfter, retryCount, willRetry },
          `GitHub ${kind} rate limit hit`,
        );
        return willRetry;
      };
    const auth =
      options.credential.kind === "token"
        ? { auth: options.credential.token.reveal() }
        : {
            authStrategy: createAppAuth,
            auth: {
              appId: options.credential.appId,
              privateKey: options.credential.privateKey.reveal(),
              installationId: options.credential.installationId,
            },
          };
    this.octokit = new LanekeeperOctokit({
      ...auth,
      baseUrl: this.baseUrl,
      userAgent: options.userAgent ?? "lanekeeper",
      request: { fetch: countingFetch },
      log: {
        debug: (): void => undefined,
        info: (): void => undefined,
        warn: (m: string): void => log?.warn({ source: "octokit" }, m),
        error: (m: string): void => logOctokitError(log, m),
      },
      retry: {
        retries: options.retries ?? DEFAULT_GITHUB_RETRIES,
        retryAfterBaseValue: options.retryBaseMs ?? DEFAULT_RETRY_BASE_MS,
        // 403/429 belong to the throttling plugin; 409/422 are answers, not glitches.
        doNotRetry: [400, 401, 403, 404, 409, 410, 422, 429, 451],
      },
      throttle: {
        // A unique id keeps the plugin's module-wide limiter groups from coupling separate clients.
        id: `lanekeeper-${randomBytes(6).toString("hex")}`,
        retryAfterBaseValue: options.retryBaseMs ?? DEFAULT_RETRY_BASE_MS,
        fallbackSecondaryRateRetryAfter: options.secondaryRetryAfterSeconds ?? DEFAULT_SECONDARY_RETRY_AFTER_SECONDS,
        onRateLimit: onLimit("primary"),
        onSecondaryRateLimit: onLimit("secondary"),
      },
    });
  }

  rateLimit(): RateLimitState {
    return this.tracker.state(this.clock.now());
  }

  metrics(): GitHubClientMetrics {
    return this.recorder.snapshot();
  }

  async listRunners(scope: string): Promise<RunnerList> {
    const op = "listRunners";
    const route = scopeRoute(scope);
    const byId = new Map<number, GitHubRunner>();
    const totals = new Set<number>();
    let notModified = true;
    let requests = 0;
    for (let page = 1; ; page++) {
      if (page > MAX_RUNNER_PAGES) {
        throw new GitHubApiError({ operation: op, scope }, `more than ${MAX_RUNNER_PAGES} pages of runners`);
      }
      this.admit(op, "observe");
      const key = `${scope}\u0000runners\u0000${this.perPage}\u0000${page}`;
      const cached = this.etags.get(key);
      let data: CachedPage;
      try {
        requests++;
        const res = await this.send(op, scope, `GET ${route.prefix}/actions/runners`, route.params, {
          headers: cached === undefined ? {} : { "if-none-match": cached.etag },
        }, { per_page: this.perPage, page });
        const parsed = parseRunnerPage(res.data, op);
        data = { ...parsed, hasNext: hasNextPage(headerString(res.headers.link)) };
        notModified = false;
        const etag = headerString(res.headers.etag);
        if (etag !== undefined) this.etags.set(key, etag, data);
        else this.etags.delete(key);
      } catch (err) {
        if (cached !== undefined && err instanceof NotModified) data = cached.value;
        else throw err;
      }
      totals.add(data.totalCount);
      for (const r of data.runners) byId.set(r.id, r);
      if (!data.hasNext) break;
    }
    const runners = [...byId.values()].sort((a, b) => a.id - b.id);
    // Every page must report the same total, and the unique runners must add up to it; otherwise registrations
    // moved while we paged and one may have been skipped.
    const [total] = totals;
    const complete = totals.size === 1 && runners.length === total;
    return { scope, runners, notModified, complete, requests };
  }

  async getRunner(scope: string, runnerId: number): Promise<GitHubRunner | undefined> {
    const op = "getRunner";
    // One targeted read, which a drain's wait and a removal's not-busy guard need to finish: allowed under the
    // reserve, so a removal that started never stalls there (a full listing stays deferred).
    this.admit(op, "remove");
    const route = scopeRoute(scope);
    try {
      const res = await this.send(op, scope, `GET ${route.prefix}/actions/runners/{runner_id}`, {
        ...route.params,
        runner_id: String(runnerId),
      });
      return parseRunner(res.data, op);
    } catch (err) {
      if (err instanceof GitHubNotFoundError) return undefined;
      throw err;
    }
  }

  async deleteRunner(scope: string, runnerId: number): Promise<DeleteRunnerOutcome> {
    const op = "deleteRunner";
    this.admit(op, "remove");
    const route = scopeRoute(scope);
    try {
      await this.send(op, scope, `DELETE ${route.prefix}/actions/runners/{runner_id}`, {
        ...route.params,
        runner_id: String(runnerId),
      });
      return "deleted";
    } catch (err) {
      if (err instanceof GitHubNotFoundError) return "not-found";
      throw err;
    }
  }

  async createRegistrationToken(scope: string): Promise<RunnerToken> {
    return this.token("createRegistrationToken", scope, "registration-token", "create");
  }

  async createRemoveToken(scope: string): Promise<RunnerToken> {
    return this.token("createRemoveToken", scope, "remove-token", "remove");
  }

  async generateJitConfig(scope: string, request: JitConfigRequest): Promise<JitConfig> {
    const op = "generateJitConfig";
    this.admit(op, "create");
    const route = scopeRoute(scope);
    const res = await this.send(op, scope, `POST ${route.prefix}/actions/runners/generate-jitconfig`, route.params, {
      body: {
        name: request.name,
        runner_group_id: request.runnerGroupId,
        labels: [...request.labels],
        work_folder: request.workFolder ?? "_work",
      },
      retries: 0,
    });
    const parsed = parseJitConfig(res.data, op);
    return { runner: parsed.runner, encodedJitConfig: new RedactedSecret(parsed.encoded) };
  }

  async setCustomLabels(scope: string, runnerId: number, labels: readonly string[]): Promise<readonly GitHubRunnerLabel[]> {
    return this.labels("setCustomLabels", scope, runnerId, "PUT", { labels: [...labels] });
  }

  async addLabels(scope: string, runnerId: number, labels: readonly string[]): Promise<readonly GitHubRunnerLabel[]> {
    return this.labels("addLabels", scope, runnerId, "POST", { labels: [...labels] });
  }

  async removeLabel(scope: string, runnerId: number, label: string): Promise<readonly GitHubRunnerLabel[]> {
    const op = "removeLabel";
    this.admit(op, "remove");
    const route = scopeRoute(scope);
    const res = await this.send(op, scope, `DELETE ${route.prefix}/actions/runners/{runner_id}/labels/{name}`, {
      ...route.params,
      runner_id: String(runnerId),
      name: label,
    });
    return parseLabelList(res.data, op);
  }

  async listRunnerGroups(org: string): Promise<readonly RunnerGroup[]> {
    const op = "listRunnerGroups";
    const scope = `org:${org}`;
    const route = scopeRoute(scope);
    const groups: RunnerGroup[] = [];
    for (let page = 1; page <= MAX_RUNNER_PAGES; page++) {
      this.admit(op, "observe");
      const res = await this.send(op, scope, `GET ${route.prefix}/actions/runner-groups`, route.params, {}, {
        per_page: this.perPage,
        page,
      });
      groups.push(...parseRunnerGroupPage(res.data, op).groups);
      if (!hasNextPage(headerString(res.headers.link))) return groups;
    }
    throw new GitHubApiError({ operation: op, scope }, `more than ${MAX_RUNNER_PAGES} pages of runner groups`);
  }

  listRunnerDownloads(scope: string): Promise<readonly RunnerApplication[]> {
    return this.downloads.get(() => this.readRunnerDownloads(scope));
  }

  /** One conditional read of the downloads listing (with the scope's ETag). */
  private async readRunnerDownloads(scope: string): Promise<readonly RunnerApplication[]> {
    const op = "listRunnerDownloads";
    const route = scopeRoute(scope);
    this.admit(op, "observe");
    const cached = this.downloadEtags.get(scope);
    try {
      const res = await this.send(op, scope, `GET ${route.prefix}/actions/runners/downloads`, route.params, {
        headers: cached === undefined ? {} : { "if-none-match": cached.etag },
      });
      const apps = parseRunnerApplications(res.data, op);
      const etag = headerString(res.headers.etag);
      if (etag !== undefined) this.downloadEtags.set(scope, etag, apps);
      return apps;
    } catch (err) {
      if (cached !== undefined && err instanceof NotModified) return cached.value;
      throw err;
    }
  }

  async dispatchWorkflow(repo: string, workflow: string, ref: string, inputs: Readonly<Record<string, string>>): Promise<void> {
    const op = "dispatchWorkflow";
    this.admit(op, "create");
    const [owner = "", name = ""] = repo.split("/");
    await this.send(op, repo, "POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", { owner, repo: name, workflow_id: workflow }, {
      body: { ref, inputs: { ...inputs } },
      retries: 0,
    });
  }

  async listDispatchedRuns(repo: string): Promise<readonly WorkflowRunSummary[]> {
    const op = "listDispatchedRuns";
    this.admit(op, "observe");
    const [owner = "", name = ""] = repo.split("/");
    const res = await this.send(op, repo, "GET /repos/{owner}/{repo}/actions/runs", { owner, repo: name }, {}, { event: "workflow_dispatch", per_page: 30 });
    return parseWorkflowRuns(res.data, op);
  }

  async listRunJobs(repo: string, runId: number): Promise<readonly WorkflowJobSummary[]> {
    const op = "listRunJobs";
    this.admit(op, "observe");
    const [owner = "", name = ""] = repo.split("/");
    const res = await this.send(op, repo, "GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs", { owner, repo: name, run_id: String(runId) }, {}, { per_page: 100 });
    return parseWorkflowJobs(res.data, op);
  }

  async listRunIdsByStatus(repo: string, status: "queued" | "in_progress", maxPages: number): Promise<ConditionalList<number>> {
    return this.conditionalPages("listRunIdsByStatus", repo, "GET /repos/{owner}/{repo}/actions/runs", repoParams(repo), { status }, maxPages, (data, op) => {
      if (typeof data !== "object" || data === null || !Array.isArray((data as { workflow_runs?: unknown }).workflow_runs)) {
        throw new GitHubApiError({ operation: op, scope: repo }, "GitHub sent a malformed response (expected {total_count, workflow_runs})", "GITHUB_MALFORMED");
      }
      return (data as { workflow_runs: unknown[] }).workflow_runs.flatMap((r) => (typeof r === "object" && r !== null && typeof (r as { id?: unknown }).id === "number" ? [(r as { id: number }).id] : []));
    });
  }

  async listJobsOfRun(repo: string, runId: number): Promise<ConditionalList<unknown>> {
    return this.conditionalPages("listJobsOfRun", repo, "GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs", { ...repoParams(repo), run_id: String(runId) }, {}, MAX_RUNNER_PAGES, (data, op) => {
      if (typeof data !== "object" || data === null || !Array.isArray((data as { jobs?: unknown }).jobs)) {
        throw new GitHubApiError({ operation: op, scope: repo }, "GitHub sent a malformed response (expected {total_count, jobs})", "GITHUB_MALFORMED");
      }
      return (data as { jobs: unknown[] }).jobs;
    });
  }

  async getJob(repo: string, jobId: number): Promise<unknown> {
    try {
      const r = await this.conditionalPages("getJob", repo, "GET /repos/{owner}/{repo}/actions/jobs/{job_id}", { ...repoParams(repo), job_id: String(jobId) }, {}, 1, (data) => [data], false);
      return r.items[0];
    } catch (err) {
      if (err instanceof GitHubNotFoundError) return undefined;
      throw err;
    }
  }

  async listOrgRepos(org: string, maxPages: number): Promise<ConditionalList<string>> {
    return this.conditionalPages("listOrgRepos", `org:${org}`, "GET /orgs/{org}/repos", { org }, { type: "all" }, maxPages, (data, op) => {
      if (!Array.isArray(data)) throw new GitHubApiError({ operation: op, scope: `org:${org}` }, "GitHub sent a malformed response (expected a list of repositories)", "GITHUB_MALFORMED");
      return data.flatMap((r) => (typeof r === "object" && r !== null && typeof (r as { full_name?: unknown }).full_name === "string" ? [(r as { full_name: string }).full_name] : []));
    });
  }

  /**
   * Read up to `maxPages` pages of a listing, each a conditional request with its cached ETag (a 304 answers from
   * the cache and costs nothing); `paged: false` sends no page parameters (a single object).
   */
  private async conditionalPages<T>(
    op: string,
    scope: string,
    route: string,
    params: Readonly<Record<string, string>>,
    query: Readonly<Record<string, string | number>>,
    maxPages: number,
    parse: (data: unknown, op: string) => readonly T[],
    paged = true,
  ): Promise<ConditionalList<T>> {
    const items: T[] = [];
    let notModified = true;
    let requests = 0;
    for (let page = 1; page <= maxPages; page++) {
      this.admit(op, "observe");
      const q = paged ? { ...query, per_page: this.perPage, page } : query;
      const key = `${op}\u0000${route}\u0000${JSON.stringify(params)}\u0000${JSON.stringify(q)}`;
      const cached = this.readEtags.get(key);
      let entry: { readonly data: unknown; readonly hasNext: boolean };
      try {
        requests++;
        const res = await this.send(op, scope, route, params, { headers: cached === undefined ? {} : { "if-none-match": cached.etag } }, q);
        entry = { data: res.data, hasNext: paged && hasNextPage(headerString(res.headers.link)) };
        notModified = false;
        const etag = headerString(res.headers.etag);
        if (etag !== undefined) this.readEtags.set(key, etag, entry);
        else this.readEtags.delete(key);
      } catch (err) {
        if (cached !== undefined && err instanceof NotModified) entry = cached.value;
        else throw err;
      }
      items.push(...parse(entry.data, op));
      if (!entry.hasNext) return { items, notModified, requests, complete: true };
    }
    return { items, notModified, requests, complete: false };
  }

  private async token(op: string, scope: string, path: string, purpose: CallPurpose): Promise<RunnerToken> {
    this.admit(op, purpose);
    const route = scopeRoute(scope);
    const res = await this.send(op, scope, `POST ${route.prefix}/actions/runners/${path}`, route.params);
    const t = parseToken(res.data, op);
    return { token: new RedactedSecret(t.token), expiresAt: t.expiresAt };
  }

  private async labels(
    op: string,
    scope: string,
    runnerId: number,
    method: "PUT" | "POST",
    body: Record<string, unknown>,
  ): Promise<readonly GitHubRunnerLabel[]> {
    // Label changes are how a drain starts and how an interrupted one is undone: allowed under the reserve.
    this.admit(op, "remove");
    const route = scopeRoute(scope);
    const res = await this.send(op, scope, `${method} ${route.prefix}/actions/runners/{runner_id}/labels`, {
      ...route.params,
      runner_id: String(runnerId),
    }, { body });
    return parseLabelList(res.data, op);
  }

  /** Refuse a non-removal call while the reserve is active, without sending anything. */
  private admit(op: string, purpose: CallPurpose): void {
    const now = this.clock.now();
    if (this.tracker.allows(purpose, now)) return;
    this.recorder.deferral();
    const s = this.tracker.state(now);
    throw new GitHubRateLimitReserveError(op, s.remaining ?? 0, s.reserve, s.resetAtMs ?? now);
  }

  private async send(
    op: string,
    scope: string,
    route: string,
    params: Readonly<Record<string, string>>,
    options: SendOptions = {},
    query: Readonly<Record<string, number | string>> = {},
  ): Promise<SendResult> {
    this.recorder.call(op);
    const ctx: CallContext = { attempts: 0, attemptTimeoutMs: this.requestTimeoutMs };
    try {
      const res = await this.octokit.request(route, {
        ...params,
        ...query,
        ...(options.body ?? {}),
        headers: options.headers ?? {},
        request: {
          lanekeeperCall: ctx,
          ...(options.retries === undefined ? {} : { retries: options.retries }),
        },
      });
      return { status: res.status, data: res.data as unknown, headers: res.headers };
    } catch (err) {
      throw this.mapError(op, scope, err, route, ctx.attempts);
    } finally {
      // Every attempt after the first is a retry, whichever plugin made it.
      const extra = ctx.attempts - 1;
      for (let i = 0; i < extra; i++) this.recorder.retry();
    }
  }

  private mapError(operation: string, scope: string, thrown: unknown, route: string, attempts: number): Error {
    const err = thrown instanceof ConnectionGiveUp ? thrown.original : thrown;
    // No HTTP answer at all: octokit calls it status 500, but GitHub never said anything.
    const noAnswer = (err as { response?: unknown } | undefined)?.response === undefined ? connectionFailureOf(err) : undefined;
    if (noAnswer !== undefined) {
      const template = `${this.baseUrl}${route.replace(/^[A-Z]+ /, "")}`;
      return new GitHubUnreachableError(
        {
          operation,
          scope,
          failure: noAnswer.failure,
          url: safeRequestUrl((err as { request?: { url?: unknown } }).request?.url, template),
          ...(noAnswer.systemCode === undefined ? {} : { systemCode: noAnswer.systemCode }),
          attempts,
        },
        // No `cause`: octokit's error carries the request, headers included; the facts above are all that is needed.
      );
    }
    if (!isRequestError(err)) {
      return new GitHubApiError({ operation, scope }, err instanceof Error ? err.name : "unknown failure");
    }
    if (err.status === 304) return new NotModified();
    const headers = err.response?.headers ?? {};
    const data: unknown = err.response?.data;
    const rawMsg =
      typeof data === "object" && data !== null && typeof (data as { message?: unknown }).message === "string"
        ? (data as { message: string }).message
        : undefined;
    const facts: GitHubErrorFacts = {
      operation,
      scope,
      status: err.status,
      ...(rawMsg === undefined ? {} : { githubMessage: rawMsg.slice(0, MAX_GITHUB_MESSAGE_CHARS) }),
      ...(headers["x-github-request-id"] === undefined ? {} : { requestId: String(headers["x-github-request-id"]) }),
      ...(headers["x-accepted-github-permissions"] === undefined ? {} : { acceptedPermissions: String(headers["x-accepted-github-permissions"]).slice(0, 200) }),
    };
    const rateLimited =
      err.status === 429 ||
      (err.status === 403 && (headers["x-ratelimit-remaining"] === "0" || /rate limit/i.test(rawMsg ?? "")));
    if (rateLimited) return new GitHubRateLimitedError(facts);
    switch (err.status) {
      case 401:
        return new GitHubAuthError(facts);
      case 403:
        return new GitHubForbiddenError(facts);
      case 404:
        return new GitHubNotFoundError(facts);
      case 409:
        return new GitHubConflictError(facts);
      case 422:
        if (operation === "deleteRunner" && /running a job/i.test(rawMsg ?? "")) return new GitHubRunnerBusyError(facts);
        return new GitHubApiError(facts);
      default:
        return new GitHubApiError(facts);
    }
  }
}

/** Route parameters of `owner/name`. */
function repoParams(repo: string): Record<string, string> {
  const [owner = "", name = ""] = repo.split("/");
  return { owner, repo: name };
}

/** Internal signal: a conditional request was answered 304. Never escapes the client. */
class NotModified extends Error {}

/** The parts of octokit's `RequestError` the mapping reads (duck-typed: the class is a transitive dependency). */
interface RequestErrorLike {
  readonly name: "HttpError";
  readonly status: number;
  readonly response?: { readonly headers: Readonly<Record<string, string | number | undefined>>; readonly data?: unknown };
}

function isRequestError(err: unknown): err is RequestErrorLike {
  return err instanceof Error && err.name === "HttpError" && typeof (err as { status?: unknown }).status === "number";
}
