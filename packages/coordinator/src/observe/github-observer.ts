import { LanekeeperError, systemClock, type Clock } from "@lanekeeper/shared";
import type { GitHubClient } from "../github/github-client.js";
import type { ScopeObservation } from "./scope-observation.js";

/** Options of {@link observeScopes}. */
export interface ObserveScopesOptions {
  /** Scopes listed at the same time. GitHub prefers serial requests; a few in parallel are fine. @default 4 */
  readonly concurrency?: number;
  /** @default systemClock */
  readonly clock?: Clock;
}

/**
 * List the runners of every scope (conditional requests: unchanged pages cost no rate limit). A scope that
 * fails is reported `unavailable` with the error's stable code; one failing scope never hides the others.
 */
export async function observeScopes(
  client: GitHubClient,
  scopes: readonly string[],
  options: ObserveScopesOptions = {},
): Promise<Map<string, ScopeObservation>> {
  const clock = options.clock ?? systemClock;
  const queue = [...new Set(scopes)].sort();
  const out = new Map<string, ScopeObservation>();
  const worker = async (): Promise<void> => {
    for (let scope = queue.shift(); scope !== undefined; scope = queue.shift()) {
      try {
        const list = await client.listRunners(scope);
        out.set(scope, { scope, status: "ok", runners: list.runners, complete: list.complete, observedAtMs: clock.now() });
      } catch (err) {
        const code = err instanceof LanekeeperError ? err.code : "GITHUB_API";
        const message = err instanceof Error ? err.message : String(err);
        out.set(scope, { scope, status: "unavailable", code, message });
      }
    }
  };
  const n = Math.max(1, Math.min(options.concurrency ?? 4, queue.length));
  await Promise.all(Array.from({ length: n }, worker));
  return new Map([...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
