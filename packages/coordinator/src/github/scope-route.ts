import { parseScope } from "@lanekeeper/shared";

/** The REST path prefix and its parameters for a runner scope. */
export interface ScopeRoute {
  /** `/repos/{owner}/{repo}` or `/orgs/{org}` (octokit route template). */
  readonly prefix: string;
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Map a policy scope (`owner/repo` or `org:<org>`) to its REST prefix. Validation is shared's `parseScope`,
 * so a scope that could inject path segments never reaches a URL.
 */
export function scopeRoute(scope: string): ScopeRoute {
  const s = parseScope(scope);
  return s.kind === "repo"
    ? { prefix: "/repos/{owner}/{repo}", params: { owner: s.owner, repo: s.repo } }
    : { prefix: "/orgs/{org}", params: { org: s.org } };
}
