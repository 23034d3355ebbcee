import type { Clock, Logger, Policy } from "@lanekeeper/shared";
import type { JetStreamClient } from "nats";
import type { GitHubClient } from "../github/github-client.js";
import { hasJobReads } from "../github/github-jobs.js";
import { resolveDemandOptions } from "./demand-options.js";
import { demandScopes } from "./demand-scopes.js";
import type { JobStore } from "./job-store.js";
import { KvJobStore } from "./kv-job-store.js";
import { RestDemandReconciler, type ScopePass } from "./rest-reconciler.js";

/**
 * Demand for a one-shot command (`plan`, `apply`): the shared job store, and for each scope sized from demand that
 * the REST reconciliation never confirmed (no `serve` running, or it never got to it) one bounded REST pass first,
 * so the plan does not size a pool from an empty store. `undefined` when no lane entry uses `scaling`.
 */
export async function oneShotDemand(d: {
  readonly policy: Policy;
  readonly js: JetStreamClient;
  readonly github: GitHubClient;
  readonly clock?: Clock;
  readonly log?: Logger;
}): Promise<{ readonly jobs: JobStore; readonly passes: readonly ScopePass[] } | undefined> {
  const scopes = demandScopes(d.policy);
  if (scopes.length === 0) return undefined;
  const jobs = await KvJobStore.open(d.js, { replicas: d.policy.coordinator.jetstreamReplicas });
  const passes: ScopePass[] = [];
  if (hasJobReads(d.github)) {
    const at = await jobs.reconciledAt();
    const rest = new RestDemandReconciler({
      github: d.github,
      jobs,
      orgReposIntervalMs: resolveDemandOptions(d.policy.coordinator).orgReposIntervalMs,
      ...(d.clock === undefined ? {} : { clock: d.clock }),
      ...(d.log === undefined ? {} : { log: d.log }),
    });
    for (const scope of scopes) if (at[scope] === undefined) passes.push(await rest.reconcileScope(scope));
  }
  return { jobs, passes };
}
