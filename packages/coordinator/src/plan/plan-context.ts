import { canonicalLabels, LanekeeperError, type ActionKind as IntentActionKind, type Policy, type PoolPolicy } from "@lanekeeper/shared";
import { DEFAULT_MAX_CREATES_PER_PLAN, DEFAULT_MAX_ORPHAN_CLEANUPS_PER_PLAN, DEFAULT_MAX_REMOVALS_PER_PLAN } from "../limits.js";
import { classify, type Classification, type LaneView } from "../observe/classify.js";
import type { StoredLaneRecord } from "../observe/lane-record.js";
import type { ObservedState } from "../observe/observed-state.js";
import type { Action, ActionReason, PlanActionKind, PlanStep } from "./action.js";
import type { Evidence } from "./evidence.js";
import { laneEvidence } from "./evidence-of.js";
import type { Guard } from "./guard.js";
import type { GroupSummary, PlanOptions, PlanWarning, PlanWarningCode } from "./plan-types.js";
import { agentPermits, type HostStatus } from "./placement.js";
import { wantedRunner, type WantedRunner } from "./runner-version.js";
import { cleanupSteps, STEPS } from "./steps.js";

/** Code-unit order of strings, so plans do not depend on the locale. */
export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A lane that counts toward its group (scope, pool), with its record. */
export interface GroupLane {
  readonly view: LaneView;
  readonly record: StoredLaneRecord;
}

/**
 * What one `plan()` call builds up while its passes (lane repairs, orphans, group scaling) run: the classified
 * inputs, the actions and warnings so far, which lanes are already targeted, and the per-plan budgets. The
 * passes share it, so a lane is acted on once and every warning is reported once.
 */
export class PlanContext {
  readonly now: number;
  readonly planId: string;
  readonly cls: Classification;
  readonly hostStatus = new Map<string, HostStatus>();
  readonly actions: Action[] = [];
  /** Lanes an action (other than a record update or orphan mark) already targets. */
  readonly targeted = new Set<string>();
  readonly actionIds = new Set<string>();
  /** Unverified orphans per `scope\0pool`: counted toward the group, never acted on. */
  readonly unverified = new Map<string, number>();
  readonly takenIds: Set<string>;
  readonly groups: GroupSummary[] = [];
  /** Creates this plan may still add. */
  createBudget: number;
  /** Orphan cleanups this plan may still add. */
  orphanBudget: number;
  /** JIT mints (ephemeral creates, re-arms) the shared GitHub create budget still allows this plan. */
  jitAllowance: number;
  /** JIT mints deferred for the create budget (planned again when it has room: demand is read afresh each plan). */
  jitDeferred = 0;
  private removalBudget: number;
  private readonly warnings = new Map<string, PlanWarning>();
  private readonly wantedByPool = new Map<string, WantedRunner>();

  constructor(
    readonly policy: Policy,
    readonly observed: ObservedState,
    records: readonly StoredLaneRecord[],
    readonly opts: PlanOptions,
  ) {
    this.now = opts.nowMs;
    this.planId = opts.planId ?? `plan-${opts.nowMs}`;
    this.removalBudget = opts.maxRemovals ?? DEFAULT_MAX_REMOVALS_PER_PLAN;
    this.orphanBudget = opts.maxOrphanCleanups ?? DEFAULT_MAX_ORPHAN_CLEANUPS_PER_PLAN;
    this.createBudget = opts.maxCreates ?? DEFAULT_MAX_CREATES_PER_PLAN;
    this.jitAllowance = observed.createBudget?.allowance ?? Number.POSITIVE_INFINITY;
    this.cls = classify(policy, observed, records, {
      nowMs: opts.nowMs,
      ...(opts.inventoryMaxAgeMs === undefined ? {} : { inventoryMaxAgeMs: opts.inventoryMaxAgeMs }),
      ...(opts.registrationGraceMs === undefined ? {} : { registrationGraceMs: opts.registrationGraceMs }),
    });
    // Retired ids are taken too: a replacement lane never inherits the id (and audit trail) of the lane it replaces.
    this.takenIds = new Set([...this.cls.lanes.map((v) => v.laneId), ...(opts.retiredLaneIds ?? [])]);
    const stale = new Set(this.cls.staleHosts);
    const hostIds = new Set<string>([
      ...Object.keys(policy.hosts),
      ...policy.lanes.flatMap((l) => l.hosts),
      ...this.cls.lanes.map((v) => v.hostId).filter((h) => h !== ""),
    ]);
    for (const hostId of hostIds) {
      const h = Object.hasOwn(policy.hosts, hostId) ? policy.hosts[hostId] : undefined;
      const inv = stale.has(hostId) ? undefined : observed.inventory.hosts.get(hostId);
      this.hostStatus.set(hostId, {
        hostId,
        enrolled: h !== undefined,
        optIn: h?.optIn === true,
        capacity: h?.capacity ?? 0,
        inventory: inv,
      });
    }
  }

  /**
   * Whether one more JIT mint fits the create budget: takes it when it does; otherwise counts `n` deferred mints
   * and warns with the budget's figures (the evidence), once per scope and pool.
   */
  takeJit(scope: string, pool: string, n = 1): boolean {
    if (this.jitAllowance > 0) {
      this.jitAllowance--;
      return true;
    }
    this.jitDeferred += n;
    const b = this.observed.createBudget;
    this.warn(
      "GITHUB_CREATE_BUDGET",
      `${n} JIT registration(s) of ${scope}/${pool} deferred: the GitHub create budget is used up` +
        (b === undefined
          ? ""
          : ` (${b.thisMinute}/${b.perMinute} this minute, ${b.thisHour}/${b.perHour} this hour${b.nextFreeAtMs > this.now ? `; room again at ${new Date(b.nextFreeAtMs).toISOString()}` : ""})`) +
        "; they are planned again when it has room",
      { scope, pool },
    );
    return false;
  }

  /** The warnings so far, in the order first raised. */
  warningList(): PlanWarning[] {
    return [...this.warnings.values()];
  }

  /**
   * The pool's policy, when the pool is declared, with `runnerVersion: latest` resolved to GitHub's current
   * release (so creates name a concrete version). Unresolved, it keeps `latest`: see {@link canCreate}.
   */
  pool(name: string): PoolPolicy | undefined {
    const p = Object.hasOwn(this.policy.pools, name) ? this.policy.pools[name] : undefined;
    if (p === undefined) return undefined;
    const w = this.wanted(name);
    return w?.kind === "runner" && w.version !== p.runnerVersion ? { ...p, runnerVersion: w.version } : p;
  }

  /** What the pool's lanes should run (memoized per plan); undefined for an undeclared pool. */
  wanted(name: string): WantedRunner | undefined {
    const p = Object.hasOwn(this.policy.pools, name) ? this.policy.pools[name] : undefined;
    if (p === undefined) return undefined;
    let w = this.wantedByPool.get(name);
    if (w === undefined) {
      w = wantedRunner(p, this.observed.runnerReleases);
      this.wantedByPool.set(name, w);
    }
    return w;
  }

  /** Whether lanes of the pool can be created now: false (after a warning) while `latest` is unresolved. */
  canCreate(pool: string): boolean {
    const w = this.wanted(pool);
    if (w?.kind !== "unresolved") return true;
    this.warn("RUNNER_VERSION_UNRESOLVED", `pool ${pool} wants the latest runner, but ${w.why}: no lane of it is created or upgraded this time`, { pool });
    return false;
  }

  /** Raise a warning once per (code, subject). */
  warn(code: PlanWarningCode, message: string, subject: Omit<PlanWarning, "code" | "message"> = {}): void {
    const key = `${code}\u0000${subject.scope ?? ""}\u0000${subject.hostId ?? ""}\u0000${subject.laneId ?? ""}\u0000${subject.pool ?? ""}`;
    if (!this.warnings.has(key)) this.warnings.set(key, { code, message, ...subject });
  }

  /**
   * Why no action is possible for this scope and host (opt-ins, observation, `control.enabled`), after warning
   * about it; `undefined` when allowed. The agent's allowlist is checked per action by {@link permits}.
   */
  blocked(scope: string, hostId: string): string | undefined {
    if (this.scopeBlocked(scope)) {
      const s = Object.hasOwn(this.policy.scopes, scope) ? this.policy.scopes[scope] : undefined;
      return s?.optIn !== true ? "scope-not-opted-in" : "scope-unobserved";
    }
    const h = this.hostStatus.get(hostId);
    if (h?.enrolled !== true) {
      this.warn(
        "HOST_NOT_ENROLLED",
        `host ${hostId} is not enrolled: add its bundle with \`lanekeeper hosts add <bundle-file> --opt-in\``,
        { hostId },
      );
      return "host-not-enrolled";
    }
    if (!h.optIn) {
      this.warn(
        "HOST_NOT_OPTED_IN",
        `host ${hostId} has not opted in: lanekeeper does nothing there. To opt in, set hosts.${hostId}.optIn: true in lanekeeper.yaml`,
        { hostId },
      );
      return "host-not-opted-in";
    }
    if (h.inventory !== undefined && !h.inventory.controlEnabled) {
      this.warn(
        "HOST_CONTROL_DISABLED",
        `the agent on ${hostId} has control disabled: its lanes are left alone. To allow changes, set control.enabled: true ` +
          "(and the allowlist) in the agent config on that host",
        { hostId },
      );
      return "control-disabled";
    }
    return undefined;
  }

  /** Whether the scope has not opted in or could not be observed (warning about it). */
  scopeBlocked(scope: string): boolean {
    const s = Object.hasOwn(this.policy.scopes, scope) ? this.policy.scopes[scope] : undefined;
    if (s?.optIn !== true) {
      this.warn(
        "SCOPE_NOT_OPTED_IN",
        `scope ${scope} has not opted in: lanekeeper does nothing there. To opt in, set scopes."${scope}".optIn: true in lanekeeper.yaml`,
        { scope },
      );
      return true;
    }
    const obs = this.observed.scopes.get(scope);
    if (obs?.status !== "ok") {
      if (obs === undefined) this.warn("SCOPE_UNOBSERVED", `runners of ${scope} were not listed: no actions there this time`, { scope });
      return true;
    }
    return false;
  }

  /**
   * Whether the lane's agent, as far as its reported allowlist shows, accepts every intent action an action
   * needs (a removal sends drain and remove). Warns once when it does not.
   */
  permits(v: LaneView, actions: readonly IntentActionKind[]): boolean {
    const inv = this.hostStatus.get(v.hostId)?.inventory;
    if (inv === undefined) return true;
    const poolPolicy = this.pool(v.pool);
    const backend = poolPolicy?.backend ?? "systemd";
    const image = backend === "container" ? poolPolicy?.image : undefined;
    for (const action of actions) {
      const permit = agentPermits(inv, action, { scope: v.scope, pool: v.pool, backend, image });
      if (!permit.ok) {
        this.warn(
          "HOST_NOT_ALLOWED",
          `host ${v.hostId} refuses ${action} for ${v.scope}/${v.pool}: ${permit.detail}. Extend control in its agent config`,
          { hostId: v.hostId, scope: v.scope, pool: v.pool },
        );
        return false;
      }
    }
    return true;
  }

  /** The lane's canonical labels, or undefined (after a warning) when its names cannot make a valid set. */
  canonical(v: LaneView, pool: PoolPolicy): string[] | undefined {
    try {
      return canonicalLabels({ laneId: v.laneId, hostId: v.hostId, pool: v.pool, capabilityLabels: pool.labels });
    } catch (err) {
      if (!(err instanceof LanekeeperError)) throw err;
      this.warn("INVALID_LANE", `lane ${v.laneId}: ${err.message}`, { laneId: v.laneId });
      return undefined;
    }
  }

  /** Take one removal (or scale-down drain) from the plan's budget; false, after a warning, when none is left. */
  spendRemoval(): boolean {
    if (this.removalBudget <= 0) {
      this.warn("REMOVAL_BUDGET", "more lanes are due for removal than one plan may remove; the rest follow in later plans");
      return false;
    }
    this.removalBudget--;
    return true;
  }

  /** Add an action for an existing lane. The record's revision is always the first guard. */
  push(
    v: LaneView,
    kind: Exclude<PlanActionKind, "create">,
    reason: ActionReason,
    extra: Record<string, unknown>,
    guards: readonly Guard[] = [],
    dependsOn: readonly string[] = [],
    extraEvidence: readonly Evidence[] = [],
  ): void {
    const id = `${kind}:${v.laneId}`;
    if (this.actionIds.has(id)) return;
    this.actionIds.add(id);
    const steps: readonly PlanStep[] =
      kind === "cleanup-orphan" ? cleanupSteps((extra as { orphanKind: Parameters<typeof cleanupSteps>[0] }).orphanKind) : STEPS[kind];
    const base = {
      id,
      laneId: v.laneId,
      scope: v.scope,
      pool: v.pool,
      hostId: v.hostId,
      reason,
      guards: [{ kind: "record-revision", laneId: v.laneId, revision: v.record?.revision ?? null } satisfies Guard, ...guards],
      evidence: [...laneEvidence(v), ...extraEvidence],
      steps,
      dependsOn,
    };
    // The kind-specific fields come from the typed helpers of each pass; the cast joins base and extra.
    this.actions.push({ ...base, kind, ...extra } as Action);
    if (kind !== "update-record" && kind !== "mark-orphan") this.targeted.add(v.laneId);
  }
}
