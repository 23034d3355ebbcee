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
  /** `x-accepted-github-permissions` of a 403: the fine-grained permission GitHub wanted (e.g. `administration=read`). */
  readonly acceptedPermissions?: string;
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

/** GitHub refused the credential (401: missing, expired or revoked). A valid credential without the rights is {@link GitHubForbiddenError}. */
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

/** What a credential needs for the runner endpoints of a scope (`owner/repo` or `org:<org>`). */
export function runnerPermissionsNeeded(scope: string | undefined): string {
  if (scope?.startsWith("org:")) {
    return (
      `organization ${scope.slice(4)}: a classic token needs the admin:org scope (its user an organization owner); ` +
      'a fine-grained token or GitHub App needs the organization permission "Self-hosted runners: read and write"'
    );
  }
  return (
    `repository ${scope ?? "(unknown)"}: a classic token needs the repo scope and its user admin rights on the repository; ` +
    'a fine-grained token or GitHub App needs the repository permission "Administration: read and write"'
  );
}

/**
 * GitHub answered 403 without a rate limit: the credential is valid but lacks the rights the call needs. The
 * message names the scope and the permission to grant (from GitHub's `X-Accepted-GitHub-Permissions` when sent).
 * Runner reads need admin rights too, so a read-only token fails already at `plan`.
 */
export class GitHubForbiddenError extends GitHubApiError {
  constructor(facts: GitHubErrorFacts) {
    const actions = facts.acceptedPermissions?.split(",").some((p) => p.trim().startsWith("actions=")) ?? false;
    const needs = actions
      ? `The credential may not read workflow runs of ${facts.scope ?? "this scope"}: a classic token needs the repo scope; ` +
        'a fine-grained token or GitHub App needs the repository permission "Actions: read"'
      : `The credential lacks admin rights on ${runnerPermissionsNeeded(facts.scope)}`;
    const asked = facts.acceptedPermissions === undefined ? "" : ` (GitHub asked for ${facts.acceptedPermissions})`;
    super(facts, `${needs}${asked}`, "GITHUB_FORBIDDEN");
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

/** How a request that got no HTTP answer failed. */
export type GitHubConnectionFailure =
  /** Nothing listens at the address (ECONNREFUSED). */
  | "refused"
  /** The host name does not resolve (ENOTFOUND, EAI_AGAIN). */
  | "dns"
  /** No answer in time: connecting, or the request timed out. */
  | "timeout"
  /** The TLS handshake or certificate was refused. */
  | "tls"
  /** The connection was reset or closed before an answer. */
  | "reset"
  /** Another network failure. */
  | "network";

/** Secret-free facts about a GitHub request that got no HTTP answer at all. */
export interface GitHubConnectionFacts {
  readonly operation: string;
  readonly scope?: string;
  readonly failure: GitHubConnectionFailure;
  /** Origin and path of the request (never the query, never a header, so never a token). */
  readonly url: string;
  /** The system's error code (`ECONNREFUSED`, `ENOTFOUND`, `CERT_HAS_EXPIRED`, ...), when there is one. */
  readonly systemCode?: string;
  /** Attempts made, retries included. */
  readonly attempts?: number;
}

const FAILURE_TEXT: Readonly<Record<GitHubConnectionFailure, string>> = {
  refused: "connection refused",
  dns: "host name not found",
  timeout: "no answer in time",
  tls: "TLS handshake failed",
  reset: "connection reset",
  network: "network failure",
};

/**
 * A GitHub request got no HTTP answer: the connection was refused, the name did not resolve, TLS failed, or
 * nothing answered in time. Octokit reports these as status 500; this says what happened and to which URL, so an
 * operator does not go looking for a GitHub outage when the proxy, DNS or `github.apiUrl` is wrong.
 */
export class GitHubUnreachableError extends LanekeeperError<CoordinatorErrorCode> {
  /** What failed. */
  readonly failure: GitHubConnectionFailure;
  /** The client operation. */
  readonly operation: string;
  /** Origin and path of the request. */
  readonly url: string;
  /** Whether the request may have reached GitHub (a timeout or reset after sending); never for refused, DNS or TLS. */
  readonly maybeDelivered: boolean;

  constructor(facts: GitHubConnectionFacts, options: LanekeeperErrorOptions = {}) {
    const where = facts.scope === undefined ? facts.operation : `${facts.operation} (${facts.scope})`;
    const sys = facts.systemCode === undefined ? "" : `, ${facts.systemCode}`;
    const tries = facts.attempts === undefined || facts.attempts <= 1 ? "" : ` after ${facts.attempts} attempts`;
    super("GITHUB_UNREACHABLE", `GitHub API unreachable: ${where}: ${FAILURE_TEXT[facts.failure]}${sys} at ${facts.url}${tries}`, {
      hint:
        facts.failure === "tls"
          ? "check the certificate of the GitHub API host (GHES: its CA must be trusted, e.g. NODE_EXTRA_CA_CERTS) and github.apiUrl in the policy"
          : "check github.apiUrl in the policy and that this machine reaches it (network, DNS, proxy, firewall)",
      ...options,
      details: { ...facts },
    });
    this.failure = facts.failure;
    this.operation = facts.operation;
    this.url = facts.url;
    this.maybeDelivered = facts.failure === "timeout" || facts.failure === "reset" || facts.failure === "network";
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
