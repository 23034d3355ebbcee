import type { Policy } from "@lanekeeper/shared";
import type { StoredLaneRecord } from "../observe/lane-record.js";
import type { ObservedState } from "../observe/observed-state.js";
import type { PlanActionKind } from "./action.js";
import { groupPass } from "./group-scaling.js";
import { laneMaintenance, laneRepairs } from "./lane-repairs.js";
import { cmp, PlanContext, type GroupLane } from "./plan-context.js";
import type { Plan, PlanOptions, VersionDrift } from "./plan-types.js";
import { upgradePass } from "./version-upgrades.js";

export { isIdle } from "./group-scaling.js";

/** Execution order of action kinds: fix records, restore capacity, then take it away, then orphans. */
const KIND_ORDER: readonly PlanActionKind[] = [
  "update-record",
  "undrain",
  "arm",
  "create",
  "restart",
  "relabel",
  "upgrade",
  "drain",
  "remove",
  "mark-orphan",
  "cleanup-orphan",
  "forget-record",
];

/**
 * Plan: a pure function from (policy, observations, lane records) to ordered, typed actions and warnings.
 * Reads no clock, no file, no network; the same inputs give the same plan.
 *
 * The passes, in order: the per-lane pass (`lane-repairs.ts`: record fixes, orphans via `orphans.ts`, removals
 * under way), the group pass (`group-scaling.ts`), the upgrade pass (`version-upgrades.ts`: lanes whose runner
 * version or image differs from their pool's, within `upgrade.maxUnavailable`), then the repairs of active lanes
 * the earlier passes left alone.
 *
 * Rules (docs/coordinator.md has the long form):
 * - No action ever targets an unmanaged or foreign runner; only lanes classified from our own markers.
 * - No action in a scope or on a host that has not opted in, in a scope that could not be observed, or on a
 *   host whose agent reports `control.enabled: false`: a warning says how to opt in instead.
 * - Groups (scope, pool) converge on `count`: reuse drained lanes, then create on eligible hosts (spread,
 *   existing lanes never move); scale down by removing idle lanes only (not busy on GitHub and no job on the
 *   host), unhealthy and newest first, at most `maxRemovals` per plan; busy excess lanes are drained instead.
 * - Orphans are marked on one plan and cleaned up on a later one, only if still orphaned and still ours.
 */
export function plan(policy: Policy, observed: ObservedState, records: readonly StoredLaneRecord[], options: PlanOptions): Plan {
  const ctx = new PlanContext(policy, observed, records, options);
  observationWarnings(ctx);
  const byGroup = new Map<string, GroupLane[]>();
  for (const v of ctx.cls.lanes) laneMaintenance(ctx, v, byGroup);
  groupPass(ctx, byGroup);
  // Upgrades after scaling (never a lane it removes or drains), before repairs (which skip what they target).
  const versionDrift = upgradePass(ctx, byGroup);
  // Repairs last, so they never collide with a lane the group pass chose to drain or remove.
  for (const list of [...byGroup.values()]) for (const { view, record } of list) laneRepairs(ctx, view, record);
  foreignWarning(ctx);
  return assemble(ctx, versionDrift);
}

/** The plan from what the passes built: actions in execution order, counts, and what was observed. */
function assemble(ctx: PlanContext, versionDrift: readonly VersionDrift[]): Plan {
  const order = new Map(KIND_ORDER.map((k, i) => [k, i]));
  const actions = [...ctx.actions].sort(
    (a, b) =>
      (order.get(a.kind) ?? 0) - (order.get(b.kind) ?? 0) ||
      cmp(a.scope, b.scope) ||
      cmp(a.pool, b.pool) ||
      cmp(a.laneId, b.laneId),
  );
  const counts = Object.fromEntries(KIND_ORDER.map((k) => [k, 0])) as Record<PlanActionKind, number>;
  for (const a of actions) counts[a.kind]++;
  const scopesObserved: string[] = [];
  const scopesUnavailable: { scope: string; code: string }[] = [];
  for (const [scope, o] of ctx.observed.scopes) {
    if (o.status === "ok") scopesObserved.push(scope);
    else scopesUnavailable.push({ scope, code: o.code });
  }
  const hostsKnown = [...ctx.hostStatus.values()].filter((h) => h.inventory !== undefined).map((h) => h.hostId);
  const hostsUnknown = [...ctx.hostStatus.values()].filter((h) => h.inventory === undefined).map((h) => h.hostId);
  return {
    planId: ctx.planId,
    createdAtMs: ctx.now,
    actions,
    warnings: ctx.warningList(),
    groups: ctx.groups,
    counts,
    observation: {
      scopesObserved: scopesObserved.sort(cmp),
      scopesUnavailable: scopesUnavailable.sort((a, b) => cmp(a.scope, b.scope)),
      hostsKnown: hostsKnown.sort(cmp),
      hostsUnknown: hostsUnknown.sort(cmp),
      hostsStale: [...ctx.cls.staleHosts],
    },
    classification: ctx.cls,
    versionDrift,
    ...(ctx.observed.createBudget === undefined ? {} : { createBudget: { ...ctx.observed.createBudget, deferred: ctx.jitDeferred } }),
  };
}

function observationWarnings(ctx: PlanContext): void {
  const inPolicy = [...ctx.hostStatus.values()].filter((h) => h.enrolled);
  const known = inPolicy.filter((h) => h.inventory !== undefined);
  if (inPolicy.length > 0 && known.length === 0) {
    ctx.warn(
      "NO_INVENTORY",
      "no agent inventory is available: planned from GitHub and the lane records only. Creates are guarded by the " +
        "agents' checks at apply time; restarts, scale-down and orphan cleanup of host lanes wait for inventories",
    );
  } else {
    for (const h of inPolicy) {
      if (h.inventory === undefined && h.optIn) {
        ctx.warn("HOST_INVENTORY_UNKNOWN", `no fresh inventory from ${h.hostId}: its lanes are not restarted, removed or cleaned up`, {
          hostId: h.hostId,
        });
      }
    }
  }
  for (const hostId of ctx.cls.staleHosts) {
    ctx.warn("HOST_INVENTORY_STALE", `the last inventory from ${hostId} is too old to trust; check that its agent is running`, {
      hostId,
    });
  }
  for (const [scope, o] of ctx.observed.scopes) {
    if (o.status !== "ok") {
      ctx.warn("SCOPE_UNOBSERVED", `runners of ${scope} could not be listed (${o.code}): no actions there this time. ${o.message}`, {
        scope,
      });
    } else if (!o.complete) {
      ctx.warn("SCOPE_INCOMPLETE", `the runner list of ${scope} did not add up (it changed while listing): no orphan is concluded there`, {
        scope,
      });
    }
  }
  for (const lane of ctx.policy.lanes) {
    if (!Object.hasOwn(ctx.policy.pools, lane.pool)) {
      ctx.warn("POOL_NOT_DECLARED", `pool ${lane.pool} is not declared under pools: no lanes of it are created`, {
        pool: lane.pool,
        scope: lane.scope,
      });
    }
  }
  for (const [pool, p] of Object.entries(ctx.policy.pools).sort(([a], [b]) => cmp(a, b))) {
    // Valid, but almost always a mistake: only lk- identity labels, so a workflow's runs-on cannot ask for
    // what the pool offers, only for this exact pool by its lk-pool- label.
    if (p.labels.length === 0) {
      ctx.warn("POOL_NO_LABELS", `pool ${pool} has no capability labels, so no workflow can target its lanes: runs-on should name capability labels only (lk- labels are lanekeeper's, and a draining lane keeps only lk-lane-<id> and lk-draining); add labels (e.g. [linux, x64]) under pools.${pool}.labels`, { pool });
    }
  }
}

function foreignWarning(ctx: PlanContext): void {
  const n = ctx.cls.foreign.length;
  if (n > 0) {
    ctx.warn(
      "FOREIGN_RUNNERS",
      `${n} runner(s) carry lanekeeper labels but are not ours (another coordinator's, or hand-labelled): never touched`,
    );
  }
}
