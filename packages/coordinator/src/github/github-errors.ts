import { LanekeeperError, type LanekeeperErrorOptions } from "@lanekeeper/shared";
import type { CoordinatorErrorCode } from "../error-codes.js";

/** Secret-free facts about a failed GitHub call, carried in `details`. */
export interface GitHubErrorFacts {
  /** The client operation, e.g. `listRunners`. */
  readonly operation: string;
  /** The scope the call was for (`owner/repo` or `org:<org>`), when there is one. */
  readonly scope?: string;
  /** HTTP status, when GitHub answered. */
  readonly status?: number;
  /** GitHub's `message` field, when it sent one. */
  readonly githubMessage?: string;
  /** `x-github-request-id`, for support tickets. */
  readonly requestId?: string;
}

function describe(facts: GitHubErrorFacts): string {
  const where = facts.scope === undefined ? facts.operation : `${facts.operation} (${facts.scope})`;
  const status = facts.status === undefined ? "no response" : `HTTP ${facts.status}`;
  const msg = facts.githubMessage === undefined ? "" : `: ${facts.githubMessage}`;
  return `${where} failed with ${status}${msg}`;
}

/**
 * A GitHub REST call failed. The message and details never contain a token: they are built from the status,
 * the operation and GitHub's own message, not from the request.
 */
export class GitHubApiError extends LanekeeperError<CoordinatorErrorCode> {
  /** HTTP status, when GitHub answered. */
  readonly status: number | undefined;
  /** The client operation that failed. */
  readonly operation: string;

  constructor(facts: GitHubErrorFacts, hint = "", code: Extract<CoordinatorErrorCode, `GITHUB_${string}`> = "GITHUB_API", options: LanekeeperErrorOptions = {}) {
    super(code, hint === "" ? describe(facts) : `${describe(facts)}. ${hint}`, {
      ...options,
      details: { ...facts },
    });
    this.status = facts.status;
    this.operation = facts.operation;
  }
}

/** GitHub answered 404: the runner, label, scope or group does not exist (or the credential cannot see it). */
export class GitHubNotFoundError extends GitHubApiError {
  constructor(facts: GitHubErrorFacts) {
    super(facts, "It does not exist, or the credential cannot see it", "GITHUB_NOT_FOUND");
  }
}

/** GitHub refused the credential (401, or a 403 that is not a rate limit). */
export class GitHubAuthError extends GitHubApiError {
  constructor(facts: GitHubErrorFacts) {
    super(
      facts,
      "Check the token or GitHub App installation and its permissions: repository Administration (write) for " +
        "repository scopes, organization Self-hosted runners (write) for org scopes",
      "GITHUB_AUTH",
    );
  }
}

/** A primary or secondary rate limit was hit and the bounded retries were used up. */
export class GitHubRateLimitedError extends GitHubApiError {
  constructor(facts: GitHubErrorFacts) {
    super(facts, "The GitHub rate limit is exhausted; the next reconcile retries after the reset", "GITHUB_RATE_LIMITED");
  }
}

/** GitHub refused to delete a runner because it is running a job (422). Never retried, never forced. */
export class GitHubRunnerBusyError extends GitHubApiError {
  constructor(facts: GitHubErrorFacts) {
    super(facts, "The runner is running a job; drain it and wait until it is idle", "GITHUB_RUNNER_BUSY");
  }
}

/** GitHub answered 409 (e.g. a JIT runner name that already exists). */
export class GitHubConflictError extends GitHubApiError {
  constructor(facts: GitHubErrorFacts) {
    super(facts, "", "GITHUB_CONFLICT");
  }
}

/**
 * The request was not sent: the remaining rate limit is at or below the reserve kept for removals, and this
 * call is not a removal. Observation resumes after the rate-limit window resets.
 */
export class GitHubRateLimitReserveError extends LanekeeperError<CoordinatorErrorCode> {
  /** When the window resets (ms since the epoch). */
  readonly resetAtMs: number;

  constructor(operation: string, remaining: number, reserve: number, resetAtMs: number) {
    super(
      "GITHUB_RATE_LIMIT_RESERVED",
      `${operation} deferred: ${remaining} GitHub API requests remain, at or below the reserve of ${reserve} kept ` +
        `for removals; it resumes after ${new Date(resetAtMs).toISOString()}`,
      { details: { operation, remaining, reserve, resetAtMs } },
    );
    this.resetAtMs = resetAtMs;
  }
}

/** The GitHub credential could not be resolved from the policy (env var unset, key file unreadable, ...). */
export class GitHubCredentialError extends LanekeeperError<CoordinatorErrorCode> {
  constructor(message: string, options: LanekeeperErrorOptions = {}) {
    super("GITHUB_CREDENTIAL", message, options);
  }
}
