import type { GitHubClientMetrics } from "../github/github-metrics.js";
import type { RateLimitState } from "../github/rate-limit-tracker.js";
import { isOrphanVerified, type LaneView } from "../observe/classify.js";
import type { ViewGap } from "../observe/view-gaps.js";
import type { Action } from "../plan/action.js";
import type { Plan } from "../plan/plan-types.js";
import { renderScalingTable } from "./render-scaling.js";
import { renderTable } from "./render-table.js";
import { policyRevisionLines, type PolicyRevisionView } from "../serve/policy-revision.js";

/** Context printed with a plan. */
export interface PlanContext {
  /** Notes about how the plan was made (e.g. no agent inventories). */
  readonly notes: readonly string[];
  readonly rateLimit?: RateLimitState;
  readonly metrics?: GitHubClientMetrics;
  /** The plan is about to be carried out (`apply`), so the footer does not say that nothing was changed. */
  readonly applying?: boolean;
  /** What the view could not see (`observe/view-gaps.ts`); any gap makes the plan degraded. @default none */
  readonly gaps?: readonly ViewGap[];
  /** Which policy the leading coordinator runs, against this command's file (`serve/policy-revision.ts`). */
  readonly policy?: PolicyRevisionView;
}

/**
 * A lane's class as the plan shows it: an orphan whose evidence is incomplete is `unverified`, never `orphaned`
 * (missing evidence is not evidence of absence, and nothing acts on it).
 */
function shownClass(v: LaneView): string {
  return v.class === "orphaned" && !isOrphanVerified(v) ? "unverified" : v.class;
}

/** The loud lines of a degraded view, for stderr: one per gap, each with what to do. */
export function degradedLines(gaps: readonly ViewGap[]): string {
  return gaps.map((g) => `DEGRADED (${g.code}): ${g.message}\n  fix: ${g.fix}\n`).join("");
}

/** The plan as JSON for `--json`: everything but the full classification, which is summarised. */
export function planToJson(plan: Plan, ctx: PlanContext): Record<string, unknown> {
  const c = plan.classification;
  const byClass: Record<string, number> = { managed: 0, orphaned: 0, unverified: 0, "needs-attention": 0 };
  for (const v of c.lanes) byClass[shownClass(v)] = (byClass[shownClass(v)] ?? 0) + 1;
  const gaps = ctx.gaps ?? [];
  return {
    planId: plan.planId,
    createdAt: new Date(plan.createdAtMs).toISOString(),
    partial: plan.observation.scopesUnavailable.length > 0,
    degraded: gaps.length > 0,
    gaps,
    notes: ctx.notes,
    actions: plan.actions,
    warnings: plan.warnings,
    groups: plan.groups,
    versionDrift: plan.versionDrift,
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
    ...(ctx.policy === undefined ? {} : { policy: ctx.policy }),
    ...(plan.createBudget === undefined ? {} : { createBudget: plan.createBudget }),
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
  if (ctx.policy !== undefined) out.push(...policyRevisionLines(ctx.policy));
  const b = plan.createBudget;
  if (b !== undefined) {
    out.push(
      `GitHub create budget: ${b.thisMinute}/${b.perMinute} this minute, ${b.thisHour}/${b.perHour} this hour` +
        (b.deferred > 0 ? `, ${b.deferred} create(s) deferred to a later cycle` : ""),
    );
  }
  const gaps = ctx.gaps ?? [];
  if (gaps.length > 0) {
    out.push("");
    out.push(`!! DEGRADED VIEW: this plan rests on incomplete observations (${gaps.map((g) => g.code).join(", ")}):`);
    for (const g of gaps) {
      out.push(`!!   ${g.message}`);
      out.push(`!!   fix: ${g.fix}`);
    }
    out.push("");
  }
  const c = plan.classification;
  const count = (k: string): number => c.lanes.filter((v) => shownClass(v) === k).length;
  const unverified = count("unverified");
  out.push(
    `Lanes: ${count("managed")} managed, ${count("orphaned")} orphaned, ` +
      (unverified > 0 ? `${unverified} not judged (evidence incomplete), ` : "") +
      `${count("needs-attention")} need attention; ` +
      `runners never touched: ${c.unmanaged.length} unmanaged, ${c.foreign.length} foreign, ${c.hostUnmanaged.length} found on hosts`,
  );
  out.push("");
  if (plan.actions.length === 0 && gaps.length > 0) {
    out.push("No actions planned from what could be observed; the view is DEGRADED (see above), so this does NOT mean the fleet matches the policy.");
  } else if (plan.actions.length === 0 && plan.versionDrift.length > 0) {
    out.push(`No actions this time; ${plan.versionDrift.length} lane(s) run another version than their pool wants (below).`);
  } else if (plan.actions.length === 0) {
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
  const scalingTable = renderScalingTable(plan.groups);
  if (scalingTable !== "") {
    out.push("");
    out.push("Queue-driven pools (docs/scaling.md):");
    out.push(scalingTable.trimEnd());
  }
  if (plan.versionDrift.length > 0) {
    out.push("");
    out.push(`Runner versions: ${plan.versionDrift.length} lane(s) differ from their pool's`);
    out.push(
      renderTable(
        ["LANE", "HOST", "SCOPE/POOL", "RUNS", "WANTED", "NOW"],
        plan.versionDrift.map((d) => [d.laneId, d.hostId, `${d.scope} ${d.pool}`, d.have, d.want, d.note ?? d.status]),
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
  out.push(
    `${plan.actions.length} action(s) planned${gaps.length > 0 ? " from a DEGRADED view" : ""}.${ctx.applying === true ? "" : " Nothing was changed."}`,
  );
  return out.join("\n") + "\n";
}

/** A saved plan about to be applied (`apply <plan-file>`): where it came from, and its actions. */
export function savedPlanToText(
  saved: { readonly planId: string; readonly createdAt: string; readonly expiresAt: string; readonly policy: { readonly path: string } },
  actions: readonly Action[],
  applying: boolean,
): string {
  const out: string[] = [];
  out.push(`Saved plan ${saved.planId} (made ${saved.createdAt} from ${saved.policy.path}; expires ${saved.expiresAt})`);
  out.push("The policy is unchanged and every action's guards hold now: applying exactly these actions, no re-planning.");
  out.push("");
  if (actions.length === 0) out.push("No actions.");
  else {
    out.push(
      renderTable(
        ["ACTION", "LANE", "HOST", "SCOPE/POOL", "REASON"],
        actions.map((a) => [a.kind, a.laneId, a.hostId, `${a.scope} ${a.pool}`, `${a.reason.code}: ${a.reason.message}`]),
      ).trimEnd(),
    );
  }
  out.push("");
  out.push(`${actions.length} action(s) in the saved plan.${applying ? "" : " Nothing was changed."}`);
  return out.join("\n") + "\n";
}
