import type { GitHubClientMetrics } from "../github/github-metrics.js";
import type { RateLimitState } from "../github/rate-limit-tracker.js";
import type { Plan } from "../plan/plan-types.js";
import { renderTable } from "./render-table.js";

/** Context printed with a plan. */
export interface PlanContext {
  /** Notes about how the plan was made (e.g. no agent inventories). */
  readonly notes: readonly string[];
  readonly rateLimit?: RateLimitState;
  readonly metrics?: GitHubClientMetrics;
  /** The plan is about to be carried out (`apply`), so the footer does not say that nothing was changed. */
  readonly applying?: boolean;
}

/** The plan as JSON for `--json`: everything but the full classification, which is summarised. */
export function planToJson(plan: Plan, ctx: PlanContext): Record<string, unknown> {
  const c = plan.classification;
  const byClass: Record<string, number> = { managed: 0, orphaned: 0, "needs-attention": 0 };
  for (const v of c.lanes) byClass[v.class] = (byClass[v.class] ?? 0) + 1;
  return {
    planId: plan.planId,
    createdAt: new Date(plan.createdAtMs).toISOString(),
    partial: plan.observation.scopesUnavailable.length > 0,
    notes: ctx.notes,
    actions: plan.actions,
    warnings: plan.warnings,
    groups: plan.groups,
    counts: plan.counts,
    observation: plan.observation,
    classification: {
      lanes: byClass,
      needsAttention: c.lanes
        .filter((v) => v.class === "needs-attention")
        .map((v) => ({ laneId: v.laneId, scope: v.scope, hostId: v.hostId, code: v.attention?.code, message: v.attention?.message })),
      unmanaged: c.unmanaged.map((r) => ({ scope: r.scope, runnerId: r.runner.id, name: r.runner.name })),
      foreign: c.foreign.map((r) => ({ scope: r.scope, runnerId: r.runner.id, name: r.runner.name, reason: r.reason })),
      hostUnmanaged: c.hostUnmanaged.map((u) => ({ hostId: u.hostId, kind: u.runner.kind, name: u.runner.name, reason: u.runner.reason })),
    },
    ...(ctx.rateLimit === undefined ? {} : { rateLimit: ctx.rateLimit }),
    ...(ctx.metrics === undefined ? {} : { githubCalls: ctx.metrics }),
  };
}

/** The plan for humans: a header, the action table, groups, warnings. */
export function planToText(plan: Plan, ctx: PlanContext): string {
  const out: string[] = [];
  const obs = plan.observation;
  out.push(`Plan ${plan.planId} (${new Date(plan.createdAtMs).toISOString()})`);
  const unavailable = obs.scopesUnavailable.map((s) => `${s.scope} (${s.code})`);
  out.push(
    `GitHub: ${obs.scopesObserved.length} scope(s) observed` +
      (unavailable.length > 0 ? `; NOT observed: ${unavailable.join(", ")}` : ""),
  );
  out.push(
    `Hosts: ${obs.hostsKnown.length} with a fresh inventory` +
      (obs.hostsUnknown.length > 0 ? `, ${obs.hostsUnknown.length} unknown (${obs.hostsUnknown.join(", ")})` : "") +
      (obs.hostsStale.length > 0 ? `, stale: ${obs.hostsStale.join(", ")}` : ""),
  );
  for (const n of ctx.notes) out.push(`Note: ${n}`);
  const c = plan.classification;
  const count = (k: string): number => c.lanes.filter((v) => v.class === k).length;
  out.push(
    `Lanes: ${count("managed")} managed, ${count("orphaned")} orphaned, ${count("needs-attention")} need attention; ` +
      `runners never touched: ${c.unmanaged.length} unmanaged, ${c.foreign.length} foreign, ${c.hostUnmanaged.length} found on hosts`,
  );
  out.push("");
  if (plan.actions.length === 0) {
    out.push("No actions: the fleet matches the policy as far as it could be observed.");
  } else {
    out.push(
      renderTable(
        ["ACTION", "LANE", "HOST", "SCOPE/POOL", "REASON"],
        plan.actions.map((a) => [a.kind, a.laneId, a.hostId, `${a.scope} ${a.pool}`, `${a.reason.code}: ${a.reason.message}`]),
      ).trimEnd(),
    );
  }
  if (plan.groups.length > 0) {
    out.push("");
    out.push(
      renderTable(
        ["SCOPE", "POOL", "WANT", "NOW", "AFTER"],
        plan.groups.map((g) => [g.scope, g.pool, String(g.desired), String(g.current), String(g.planned)]),
      ).trimEnd(),
    );
  }
  if (plan.warnings.length > 0) {
    out.push("");
    out.push(`Warnings (${plan.warnings.length}):`);
    for (const w of plan.warnings) out.push(`  ! ${w.code}: ${w.message}`);
  }
  if (ctx.rateLimit?.remaining !== undefined) {
    out.push("");
    out.push(
      `GitHub rate limit: ${ctx.rateLimit.remaining} of ${ctx.rateLimit.limit ?? "?"} left` +
        (ctx.metrics === undefined ? "" : `; this run: ${ctx.metrics.requests} request(s), ${ctx.metrics.notModified} answered 304, ${ctx.metrics.pointsSpent} point(s)`),
    );
  }
  out.push("");
  out.push(`${plan.actions.length} action(s) planned.${ctx.applying === true ? "" : " Nothing was changed."}`);
  return out.join("\n") + "\n";
}
