import pLimit from "p-limit";
import { systemClock, type Clock, type Policy } from "@lanekeeper/shared";
import type { GitHubClient } from "../github/github-client.js";
import { observeScopes } from "../observe/github-observer.js";
import { inventoryView, type HostInventory } from "../observe/inventory-view.js";
import type { StoredLaneRecord } from "../observe/lane-record.js";
import type { LaneStore } from "../observe/lane-store.js";
import type { WorldObservation } from "../observe/world-observation.js";
import { plan } from "../plan/planner.js";
import type { Plan, PlanOptions } from "../plan/plan-types.js";
import { failedCreateActions } from "../plan/failed-creates.js";
import { toHostInventory, type InventorySource } from "../observe/inventory-source.js";
import type { OperationLeases } from "../apply/operation-leases.js";
import { inFlightOperationIds, interruptedActions, type InterruptedActions } from "../plan/interrupted-actions.js";
import type { Action } from "../plan/action.js";
import { demandScopes, policyUsesScaling } from "../demand/demand-scopes.js";
import { readDemandSnapshot } from "../demand/demand-snapshot.js";
import type { JobStore } from "../demand/job-store.js";
import { observeRunnerReleases } from "../observe/runner-releases.js";
import { INVENTORY_READ_CONCURRENCY } from "../limits.js";


/** Every scope the coordinator must look at: the policy's scopes and lanes, and those of its lane records. */
export type { WorldObservation };

export function scopesToObserve(policy: Policy, records: readonly StoredLaneRecord[]): string[] {
  return [...new Set([...Object.keys(policy.scopes), ...policy.lanes.map((l) => l.scope), ...records.map((r) => r.scope)])].sort();
}

/** Every host whose inventory matters: enrolled hosts, hosts named by lanes, hosts of records. */
export function hostsToObserve(policy: Policy, records: readonly StoredLaneRecord[]): string[] {
  return [...new Set([...Object.keys(policy.hosts), ...policy.lanes.flatMap((l) => l.hosts), ...records.map((r) => r.hostId)])].sort();
}

/**
 * Observe everything one plan needs: lane records first (so a registration created after this read is never
 * mistaken for an orphan of a record we did not see), then GitHub per scope (conditional requests), the last
 * verified inventory of every host, and, when a lane entry uses `scaling` and a job store is given, the demand
 * (workflow jobs) of the scopes it sizes from.
 */
export async function observeWorld(deps: {
  readonly policy: Policy;
  readonly github: GitHubClient;
  readonly store: LaneStore;
  readonly inventory: InventorySource;
  readonly clock?: Clock;
  /** The operation leases: which in-flight records have a live action (see `plan/interrupted-actions.ts`). */
  readonly leases?: OperationLeases;
  /** Where demand is read from (`lanekeeper serve` and `plan`); without it `demand` stays absent. */
  readonly jobs?: Pick<JobStore, "list" | "reconciledAt">;
}): Promise<WorldObservation> {
  const clock = deps.clock ?? systemClock;
  const records = await deps.store.list();
  const retiredLaneIds = await deps.store.retiredLaneIds();
  // Read after the records: a lease that is gone now was gone when the record was read, or its action ended.
  const liveOperations = deps.leases === undefined ? undefined : await deps.leases.live(inFlightOperationIds(records));
  const scopes = await observeScopes(deps.github, scopesToObserve(deps.policy, records), { clock });
  const runnerReleases = await observeRunnerReleases(deps.github, deps.policy);
  // Several hosts at a time (one read each, in host order in the result): one after another, a 1,000-host fleet's
  // reads were most of a reconcile.
  const slot = pLimit(INVENTORY_READ_CONCURRENCY);
  const snapshots = await Promise.all(hostsToObserve(deps.policy, records).map((hostId) => slot(() => deps.inventory.latest(hostId))));
  const hosts: HostInventory[] = snapshots.flatMap((s) => (s === undefined ? [] : [toHostInventory(s)]));
  const demand = deps.jobs !== undefined && policyUsesScaling(deps.policy) ? await readDemandSnapshot(deps.jobs, demandScopes(deps.policy)) : undefined;
  const createBudget = await deps.github.createBudgetUsage?.();
  return {
    observed: {
      scopes,
      inventory: inventoryView(hosts),
      ...(demand === undefined ? {} : { demand }),
      ...(runnerReleases === undefined ? {} : { runnerReleases }),
      ...(createBudget === undefined ? {} : { createBudget }),
    },
    records,
    retiredLaneIds,
    observedAtMs: clock.now(),
    ...(liveOperations === undefined ? {} : { liveOperations }),
  };
}

/**
 * The plan for an observation: first `forget-record` actions for creates that failed and left nothing behind
 * ({@link failedCreateActions}), then the planner's actions, planned as if those records were already gone (so
 * the lanes are created again in the same plan instead of after the planner's registration grace).
 */
export function planFromWorld(policy: Policy, world: WorldObservation, options: Omit<PlanOptions, "nowMs"> = {}): Plan {
  const interrupted = interruptedActions(policy, world, options.registrationGraceMs === undefined ? {} : { registrationGraceMs: options.registrationGraceMs });
  const forget = [...failedCreateActions(world), ...interrupted.rollBacks];
  const gone = new Set(forget.map((a) => a.laneId));
  const p = plan(policy, world.observed, gone.size === 0 ? world.records : world.records.filter((r) => !gone.has(r.laneId)), {
    ...options,
    nowMs: world.observedAtMs,
    // Forgotten records are retired by their forget-record action, so the re-created lanes get fresh ids.
    retiredLaneIds: [...(options.retiredLaneIds ?? []), ...(world.retiredLaneIds ?? []), ...gone],
  });
  return withInterrupted(p, forget, interrupted);
}

/**
 * The planner's plan with the recovery of interrupted actions in front: roll-backs (their records were left out of
 * the planning, so replacements are planned at once) and resumed creates, unless the planner already acts on that
 * lane (a scale-down of a lane being created wins: it is removed, not resumed). Their warnings say what was seen.
 */
function withInterrupted(p: Plan, forget: readonly Action[], interrupted: InterruptedActions): Plan {
  // A lane whose action runs in another coordinator right now is that coordinator's: no second action on it.
  const own = interrupted.inFlight.size === 0 ? p.actions : p.actions.filter((a) => !interrupted.inFlight.has(a.laneId));
  const targeted = new Set(own.map((a) => a.laneId));
  const resumes = interrupted.resumes.filter((a) => !targeted.has(a.laneId));
  if (forget.length === 0 && resumes.length === 0 && interrupted.warnings.length === 0 && own.length === p.actions.length) return p;
  const counts = { ...p.counts };
  for (const a of p.actions) if (!own.includes(a)) counts[a.kind]--;
  for (const a of [...forget, ...resumes]) counts[a.kind]++;
  return { ...p, actions: [...forget, ...resumes, ...own], counts, warnings: [...interrupted.warnings, ...p.warnings] };
}

/** Observe, then plan ({@link planFromWorld}) at the observation's time. */
export async function observeAndPlan(
  deps: Parameters<typeof observeWorld>[0],
  options: Omit<PlanOptions, "nowMs"> = {},
): Promise<{ plan: Plan; world: WorldObservation }> {
  const world = await observeWorld(deps);
  return { plan: planFromWorld(deps.policy, world, options), world };
}
