import type { CoordinatorContext } from "../context/coordinator-context.js";
import { observeAndPlan } from "../context/observe-world.js";
import { oneShotDemand } from "../demand/one-shot-demand.js";
import { demandScopes } from "../demand/demand-scopes.js";
import { demandSummaryLines } from "../demand/demand-summary.js";
import { viewGaps } from "../observe/view-gaps.js";
import type { WorldObservation } from "../observe/world-observation.js";
import type { Plan } from "../plan/plan-types.js";
import type { PlanContext } from "./render-plan.js";

/** The planner limits `plan` and `apply` take from the command line. */
export interface LivePlanOptions {
  readonly maxRemovals?: number;
  readonly maxCreates?: number;
  /** How long to wait for fresh agent inventories before planning. */
  readonly inventoryWait?: number;
}

/**
 * What `plan` and `apply` both show and act on: wait for the agents' fresh inventories, observe GitHub, plan from
 * the lane store and those inventories, and say which hosts were not heard from.
 */
export async function livePlan(ctx: CoordinatorContext, opts: LivePlanOptions): Promise<{ plan: Plan; planCtx: PlanContext; world: WorldObservation }> {
  const unheard = await ctx.waitForInventories(opts.inventoryWait);
  const demand = await oneShotDemand({ policy: ctx.policy, js: ctx.js, github: ctx.github, clock: ctx.clock });
  const { plan, world } = await observeAndPlan(
    { policy: ctx.policy, github: ctx.github, store: ctx.store, inventory: ctx.inventory, clock: ctx.clock, leases: ctx.leases, ...(demand === undefined ? {} : { jobs: demand.jobs }) },
    {
      ...(opts.maxRemovals === undefined ? {} : { maxRemovals: opts.maxRemovals }),
      ...(opts.maxCreates === undefined ? {} : { maxCreates: opts.maxCreates }),
    },
  );
  const notes = [
    ...(unheard.length === 0
      ? []
      : [`no fresh inventory from ${unheard.join(", ")}: their lanes are not restarted, removed or cleaned up (is lanekeeper-agent running there?)`]),
    ...(demand?.passes ?? [])
      .filter((p) => p.result !== "ok")
      .map((p) => `demand of ${p.scope} not confirmed by the REST API (${p.error ?? p.result}): pools sized from demand may be planned too small`),
    ...(world.observed.demand === undefined ? [] : demandSummaryLines(world.observed.demand, demandScopes(ctx.policy), world.observedAtMs)),
  ];
  const gaps = viewGaps({ policy: ctx.policy, observed: world.observed, nowMs: world.observedAtMs });
  return { plan, world, planCtx: { notes, gaps, rateLimit: ctx.github.rateLimit(), metrics: ctx.github.metrics() } };
}
