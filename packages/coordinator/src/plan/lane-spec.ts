import { Backend, LaneMode, parseScope, type LaneSpec, type Policy, type PoolPolicy } from "@lanekeeper/shared";

/**
 * The `CreateLane` spec of a new lane of `pool` in `scope`, registering with `labels`: backend, mode, runner
 * group (organization scopes), the GitHub URL runners configure against, the runner version or image, limits.
 * The planner's creates and `lanekeeper smoke` build their specs here, so both create lanes the same way.
 */
export function laneSpecFor(policy: Policy, scope: string, pool: string, poolPolicy: PoolPolicy, laneId: string, labels: readonly string[]): LaneSpec {
  const backend = poolPolicy.backend;
  const parsed = parseScope(scope);
  const webUrl = policy.github.webUrl.replace(/\/+$/, "");
  const scopePolicy = Object.hasOwn(policy.scopes, scope) ? policy.scopes[scope] : undefined;
  return {
    laneId,
    scope,
    pool,
    backend: backend === "container" ? Backend.BACKEND_CONTAINER : Backend.BACKEND_SYSTEMD,
    mode: poolPolicy.mode === "ephemeral" ? LaneMode.LANE_MODE_EPHEMERAL : LaneMode.LANE_MODE_PERSISTENT,
    labels: [...labels],
    runnerGroup: parsed.kind === "org" ? (scopePolicy?.runnerGroup ?? "Default") : "",
    githubUrl: parsed.kind === "org" ? `${webUrl}/${parsed.org}` : `${webUrl}/${parsed.owner}/${parsed.repo}`,
    runnerVersion: backend === "systemd" ? (poolPolicy.runnerVersion ?? "") : "",
    image: backend === "container" ? (poolPolicy.image ?? "") : "",
    limits:
      poolPolicy.limits === undefined
        ? undefined
        : { cpuMillis: poolPolicy.limits.cpuMillis ?? 0, memoryBytes: poolPolicy.limits.memoryBytes ?? 0 },
    // Filled in at dispatch, from the scope's runner downloads (the plan stays pure).
    runnerDownload: undefined,
  };
}
