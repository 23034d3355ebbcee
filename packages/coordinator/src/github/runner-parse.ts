import { GitHubApiError } from "./github-errors.js";
import type { GitHubRunner, GitHubRunnerLabel, RunnerApplication, RunnerGroup } from "./github-types.js";

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function malformed(operation: string, what: string): GitHubApiError {
  return new GitHubApiError({ operation }, `GitHub sent a malformed response (${what})`, "GITHUB_MALFORMED");
}

/** Parse a runner's labels (`[{id?, name, type?}]`). */
export function parseLabels(raw: unknown, operation: string): GitHubRunnerLabel[] {
  if (!Array.isArray(raw)) throw malformed(operation, "labels is not an array");
  return raw.map((l): GitHubRunnerLabel => {
    if (!isObj(l) || typeof l.name !== "string") throw malformed(operation, "label without a name");
    const type = l.type === "read-only" || l.type === "custom" ? l.type : undefined;
    return { name: l.name, type };
  });
}

/**
 * Parse one runner object. Only the fields the coordinator relies on are checked; everything else is
 * ignored, so an additional field on GitHub's side never breaks observation.
 */
export function parseRunner(raw: unknown, operation: string): GitHubRunner {
  if (!isObj(raw)) throw malformed(operation, "runner is not an object");
  const { id, name, os, status, busy } = raw;
  if (typeof id !== "number" || !Number.isSafeInteger(id) || id <= 0) throw malformed(operation, "runner id");
  if (typeof name !== "string") throw malformed(operation, "runner name");
  if (typeof status !== "string") throw malformed(operation, "runner status");
  if (typeof busy !== "boolean") throw malformed(operation, "runner busy");
  return {
    id,
    name,
    os: typeof os === "string" ? os : "unknown",
    status,
    busy,
    labels: parseLabels(raw.labels, operation),
    ephemeral: typeof raw.ephemeral === "boolean" ? raw.ephemeral : undefined,
    runnerGroupId: typeof raw.runner_group_id === "number" ? raw.runner_group_id : undefined,
    ...(typeof raw.version === "string" && raw.version !== "" ? { version: raw.version } : {}),
  };
}

/** Parse a `{total_count, runners}` page. */
export function parseRunnerPage(raw: unknown, operation: string): { totalCount: number; runners: GitHubRunner[] } {
  if (!isObj(raw) || !Array.isArray(raw.runners) || typeof raw.total_count !== "number") {
    throw malformed(operation, "expected {total_count, runners}");
  }
  return { totalCount: raw.total_count, runners: raw.runners.map((r) => parseRunner(r, operation)) };
}

/** Parse a `{total_count, labels}` answer of the label endpoints. */
export function parseLabelList(raw: unknown, operation: string): GitHubRunnerLabel[] {
  if (!isObj(raw)) throw malformed(operation, "expected {total_count, labels}");
  return parseLabels(raw.labels, operation);
}

/** Parse a `{total_count, runner_groups}` page. */
export function parseRunnerGroupPage(raw: unknown, operation: string): { totalCount: number; groups: RunnerGroup[] } {
  if (!isObj(raw) || !Array.isArray(raw.runner_groups) || typeof raw.total_count !== "number") {
    throw malformed(operation, "expected {total_count, runner_groups}");
  }
  const groups = raw.runner_groups.map((g): RunnerGroup => {
    if (!isObj(g) || typeof g.id !== "number" || typeof g.name !== "string") throw malformed(operation, "runner group");
    return {
      id: g.id,
      name: g.name,
      visibility: typeof g.visibility === "string" ? g.visibility : "unknown",
      default: g.default === true,
    };
  });
  return { totalCount: raw.total_count, groups };
}

/** Parse `{token, expires_at}`. */
export function parseToken(raw: unknown, operation: string): { token: string; expiresAt: string } {
  if (!isObj(raw) || typeof raw.token !== "string" || raw.token === "" || typeof raw.expires_at !== "string") {
    throw malformed(operation, "expected {token, expires_at}");
  }
  return { token: raw.token, expiresAt: raw.expires_at };
}

/** Parse `{runner, encoded_jit_config}`. */
export function parseJitConfig(raw: unknown, operation: string): { runner: GitHubRunner; encoded: string } {
  if (!isObj(raw) || typeof raw.encoded_jit_config !== "string" || raw.encoded_jit_config === "") {
    throw malformed(operation, "expected {runner, encoded_jit_config}");
  }
  return { runner: parseRunner(raw.runner, operation), encoded: raw.encoded_jit_config };
}

/** Whether a `Link` header has a `rel="next"` entry. */
export function hasNextPage(link: string | undefined): boolean {
  return link !== undefined && /<[^>]*>;\s*rel="next"/.test(link);
}

/** Parse the bare `runner-application` array of the downloads endpoint. */
export function parseRunnerApplications(raw: unknown, operation: string): RunnerApplication[] {
  if (!Array.isArray(raw)) throw malformed(operation, "expected an array of runner applications");
  return raw.map((a): RunnerApplication => {
    if (!isObj(a) || typeof a.os !== "string" || typeof a.architecture !== "string" || typeof a.filename !== "string" || typeof a.download_url !== "string") {
      throw malformed(operation, "runner application");
    }
    const sha = typeof a.sha256_checksum === "string" ? a.sha256_checksum.toLowerCase() : undefined;
    return { os: a.os, architecture: a.architecture, filename: a.filename, downloadUrl: a.download_url, sha256: sha };
  });
}
