import {
  Backend,
  canonicalLabels,
  DRAINING_LABEL,
  Health,
  LaneMode,
  LaneState,
  LanekeeperError,
  parseScope,
  type ActionKind as IntentActionKind,
  type LaneSpec,
  type Policy,
  type PoolPolicy,
} from "@lanekeeper/shared";
import {
  DEFAULT_CREATE_TIMEOUT_MS,
  DEFAULT_MAX_CREATES_PER_PLAN,
  DEFAULT_MAX_ORPHAN_CLEANUPS_PER_PLAN,
  DEFAULT_MAX_REMOVALS_PER_PLAN,
  DEFAULT_ORPHAN_GRACE_MS,
} from "../limits.js";
import { classify, isOrphanVerified, type Classification, type LaneView } from "../observe/classify.js";
import type { OrphanKind, OrphanMark, StoredLaneRecord } from "../observe/lane-record.js";
import type { ObservedState } from "../observe/observed-state.js";
import type { Action, ActionReason, PlanActionKind, PlanStep, ReasonCode } from "./action.js";
import type { Evidence } from "./evidence.js";
import { laneEvidence } from "./evidence-of.js";
import type { Guard } from "./guard.js";
import { newLaneId } from "./lane-id.js";
import type { GroupSummary, Plan, PlanOptions, PlanWarning, PlanWarningCode } from "./plan-types.js";
import { agentPermits, groupKey, Placement, type HostStatus, type PlacementRequest } from "./placement.js";
import { cleanupSteps, STEPS } from "./steps.js";

/** Execution order of action kinds: fix records, restore capacity, then take it away, then orphans. */
const KIND_ORDER: readonly PlanActionKind[] = [
  "update-record",
  "undrain",
  "arm",
  "create",
  "restart",
  "relabel",
  "drain",
  "remove",
  "mark-orphan",
  "cleanup-orphan",
  "forget-record",
];

/** Record states whose lanes count toward a group (`removing` and `orphaned` do not). */
const COUNTED_STATES = new Set(["creating", "active", "draining", "needs-attention"]);

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Plan: a pure function from (policy, observations, lane records) to ordered, typed actions and warnings.
 * Reads no clock, no file, no network; the same inputs give the same plan.
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
  return new Planner(policy, observed, records, options).run();
}

interface GroupLane {
  readonly view: LaneView;
  readonly record: StoredLaneRecord;
}

class Planner {
  private readonly now: number;
  private readonly planId: string;
  private readonly cls: Classification;
  private readonly hostStatus = new Map<string, HostStatus>();
  private readonly actions: Action[] = [];
  private readonly warnings = new Map<string, PlanWarning>();
  private readonly targeted = new Set<string>();
  private readonly actionIds = new Set<string>();
  /** Unverified orphans per `scope\0pool`: counted toward the group, never acted on. */
  private readonly unverified = new Map<string, number>();
  private readonly takenIds: Set<string>;
  private readonly groups: GroupSummary[] = [];
  private removalBudget: number;
  private orphanBudget: number;
  private createBudget: number;

  constructor(
    private readonly policy: Policy,
    private readonly observed: ObservedState,
    records: readonly StoredLaneRecord[],
    private readonly opts: PlanOptions,
  ) {
    this.now = opts.nowMs;
    this.planId = opts.planId ?? `plan-${opts.nowMs}`;
    this.removalBudget = opts.maxRemovals ?? DEFAULT_MAX_REMOVALS_PER_PLAN;
    this.orphanBudget = opts.maxOrphanCleanups ?? DEFAULT_MAX_ORPHAN_CLEANUPS_PER_PLAN;
    this.createBudget = opts.maxCreates ?? DEFAULT_MAX_CREATES_PER_PLAN;
    this.cls = classify(policy, observed, records, {
      nowMs: opts.nowMs,
      ...(opts.inventoryMaxAgeMs === undefined ? {} : { inventoryMaxAgeMs: opts.inventoryMaxAgeMs }),
      ...(opts.registrationGraceMs === undefined ? {} : { registrationGraceMs: opts.registrationGraceMs }),
    });
    this.takenIds = new Set(this.cls.lanes.map((v) => v.laneId));
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

  run(): Plan {
    this.observationWarnings();
    const byGroup = new Map<string, GroupLane[]>();
    for (const v of this.cls.lanes) this.laneMaintenance(v, byGroup);
    this.groupPass(byGroup);
    this.foreignWarning();

    const order = new Map(KIND_ORDER.map((k, i) => [k, i]));
    const actions = [...this.actions].sort(
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
    for (const [scope, o] of this.observed.scopes) {
      if (o.status === "ok") scopesObserved.push(scope);
      else scopesUnavailable.push({ scope, code: o.code });
    }
    const hostsKnown = [...this.hostStatus.values()].filter((h) => h.inventory !== undefined).map((h) => h.hostId);
    const hostsUnknown = [...this.hostStatus.values()].filter((h) => h.inventory === undefined).map((h) => h.hostId);
    return {
      planId: this.planId,
      createdAtMs: this.now,
      actions,
      warnings: [...this.warnings.values()],
      groups: this.groups,
      counts,
      observation: {
        scopesObserved: scopesObserved.sort(cmp),
        scopesUnavailable: scopesUnavailable.sort((a, b) => cmp(a.scope, b.scope)),
        hostsKnown: hostsKnown.sort(cmp),
        hostsUnknown: hostsUnknown.sort(cmp),
        hostsStale: [...this.cls.staleHosts],
      },
      classification: this.cls,
    };
  }

  // ---- warnings -------------------------------------------------------------------------------------------

  private warn(code: PlanWarningCode, message: string, subject: Omit<PlanWarning, "code" | "message"> = {}): void {
    const key = `${code}\u0000${subject.scope ?? ""}\u0000${subject.hostId ?? ""}\u0000${subject.laneId ?? ""}\u0000${subject.pool ?? ""}`;
    if (!this.warnings.has(key)) this.warnings.set(key, { code, message, ...subject });
  }

  private observationWarnings(): void {
    const inPolicy = [...this.hostStatus.values()].filter((h) => h.enrolled);
    const known = inPolicy.filter((h) => h.inventory !== undefined);
    if (inPolicy.length > 0 && known.length === 0) {
      this.warn(
        "NO_INVENTORY",
        "no agent inventory is available: planned from GitHub and the lane records only. Creates are guarded by the " +
          "agents' checks at apply time; restarts, scale-down and orphan cleanup of host lanes wait for inventories",
      );
    } else {
      for (const h of inPolicy) {
        if (h.inventory === undefined && h.optIn) {
          this.warn("HOST_INVENTORY_UNKNOWN", `no fresh inventory from ${h.hostId}: its lanes are not restarted, removed or cleaned up`, {
            hostId: h.hostId,
          });
        }
      }
    }
    for (const hostId of this.cls.staleHosts) {
      this.warn("HOST_INVENTORY_STALE", `the last inventory from ${hostId} is too old to trust; check that its agent is running`, {
        hostId,
      });
    }
    for (const [scope, o] of this.observed.scopes) {
      if (o.status !== "ok") {
        this.warn("SCOPE_UNOBSERVED", `runners of ${scope} could not be listed (${o.code}): no actions there this time. ${o.message}`, {
          scope,
        });
      } else if (!o.complete) {
        this.warn("SCOPE_INCOMPLETE", `the runner list of ${scope} did not add up (it changed while listing): no orphan is concluded there`, {
          scope,
        });
      }
    }
    for (const lane of this.policy.lanes) {
      if (!Object.hasOwn(this.policy.pools, lane.pool)) {
        this.warn("POOL_NOT_DECLARED", `pool ${lane.pool} is not declared under pools: no lanes of it are created`, {
          pool: lane.pool,
          scope: lane.scope,
        });
      }
    }
  }

  private foreignWarning(): void {
    const n = this.cls.foreign.length;
    if (n > 0) {
      this.warn(
        "FOREIGN_RUNNERS",
        `${n} runner(s) carry lanekeeper labels but are not ours (another coordinator's, or hand-labelled): never touched`,
      );
    }
  }

  /**
   * Why no action is possible for this scope and host (opt-ins, observation, `control.enabled`), after warning
   * about it; `undefined` when allowed. The agent's allowlist is checked per action by {@link permits}.
   */
  private blocked(scope: string, hostId: string): string | undefined {
    const s = Object.hasOwn(this.policy.scopes, scope) ? this.policy.scopes[scope] : undefined;
    if (s?.optIn !== true) {
      this.warn(
        "SCOPE_NOT_OPTED_IN",
        `scope ${scope} has not opted in: lanekeeper does nothing there. To opt in, set scopes."${scope}".optIn: true in lanekeeper.yaml`,
        { scope },
      );
      return "scope-not-opted-in";
    }
    const obs = this.observed.scopes.get(scope);
    if (obs?.status !== "ok") {
      if (obs === undefined) {
        this.warn("SCOPE_UNOBSERVED", `runners of ${scope} were not listed: no actions there this time`, { scope });
      }
      return "scope-unobserved";
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

  /**
   * Whether the lane's agent, as far as its reported allowlist shows, accepts every intent action an action
   * needs (a removal sends drain and remove). Warns once when it does not.
   */
  private permits(v: LaneView, actions: readonly IntentActionKind[]): boolean {
    const inv = this.hostStatus.get(v.hostId)?.inventory;
    if (inv === undefined) return true;
    const poolPolicy = Object.hasOwn(this.policy.pools, v.pool) ? this.policy.pools[v.pool] : undefined;
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

  // ---- per-lane pass ----------------------------------------------------------------------------------------

  private laneMaintenance(v: LaneView, byGroup: Map<string, GroupLane[]>): void {
    const r = v.record;
    if (v.class === "needs-attention") {
      this.warn(
        "LANE_NEEDS_ATTENTION",
        `lane ${v.laneId}: ${v.attention?.message ?? "markers disagree"} (${v.attention?.code ?? "UNKNOWN"}); nothing is done automatically`,
        { laneId: v.laneId, scope: v.scope, hostId: v.hostId },
      );
      if (r !== undefined && COUNTED_STATES.has(r.state)) this.addToGroup(byGroup, v, r);
      return;
    }
    if (r?.state === "orphaned") return this.markedOrphan(v, r);
    if (r?.state === "removing") return this.resumeRemoval(v, r);
    if (v.class === "orphaned") return this.newOrphan(v);
    if (r === undefined) return; // managed without a record cannot happen (classified needs-attention)

    this.addToGroup(byGroup, v, r);
    if (this.blocked(v.scope, v.hostId) !== undefined) return;
    const hl = v.hostLane;
    if (hl?.held === true) {
      this.warn("LANE_HELD", `lane ${v.laneId} is held on ${v.hostId}${hl.holdReason === "" ? "" : ` (${hl.holdReason})`}: left alone`, {
        laneId: v.laneId,
        hostId: v.hostId,
      });
      return;
    }
    if (r.state === "needs-attention") {
      this.warn(
        "LANE_NEEDS_ATTENTION",
        `lane ${v.laneId}: ${r.attention?.message ?? "an operation stopped"} (${r.attention?.code ?? "UNKNOWN"}); resolve it, then mark it active`,
        { laneId: v.laneId, hostId: v.hostId },
      );
      return;
    }
    const g = v.registration;
    if (r.state === "creating") {
      if (g !== undefined && hl !== undefined && g.status === "online") {
        this.push(v, "update-record", { code: "CREATE_COMPLETED", message: "registration online and lane present: creation finished" }, {
          changes: { state: "active", runnerId: g.id },
        });
      } else if (!v.pending && this.now - r.createdAtMs > (this.opts.createTimeoutMs ?? DEFAULT_CREATE_TIMEOUT_MS)) {
        this.warn("CREATE_STALLED", `lane ${v.laneId} has been creating since ${new Date(r.createdAtMs).toISOString()}; check the agent on ${v.hostId}`, {
          laneId: v.laneId,
          hostId: v.hostId,
        });
      }
      return;
    }
    if (r.state !== "active") return; // draining lanes are the group pass's business
    if (g !== undefined && r.runnerId !== g.id) {
      this.push(v, "update-record", { code: "RUNNER_ID_CHANGED", message: `registration is now runner ${g.id}` }, {
        changes: { runnerId: g.id },
      });
    }
    if (hl !== undefined && (hl.state === LaneState.LANE_STATE_NEEDS_ATTENTION || hl.health === Health.HEALTH_CRASH_LOOP)) {
      this.warn(
        "LANE_UNHEALTHY",
        `lane ${v.laneId} on ${v.hostId} is unhealthy (${hl.attentionReason === "" ? "crash loop" : hl.attentionReason})` +
          (hl.recoveryNote === "" ? "" : `: ${hl.recoveryNote}`),
        { laneId: v.laneId, hostId: v.hostId },
      );
    }
  }

  /** Maintenance that must not collide with a scale-down decision; run after the group pass chose. */
  private laneRepairs(v: LaneView, r: StoredLaneRecord): void {
    if (r.state !== "active" || this.targeted.has(v.laneId)) return;
    if (this.blocked(v.scope, v.hostId) !== undefined) return;
    const hl = v.hostLane;
    const g = v.registration;
    if (hl?.held === true) return;
    const pool = Object.hasOwn(this.policy.pools, v.pool) ? this.policy.pools[v.pool] : undefined;
    const labelsDraining = g?.labels.some((l) => l.name === DRAINING_LABEL) === true;
    if (labelsDraining || hl?.draining === true) {
      if (pool === undefined || !this.permits(v, ["undrain"])) return;
      const labels = this.canonical(v, pool);
      if (labels === undefined) return;
      this.push(v, "undrain", { code: "LEFTOVER_DRAIN", message: "the lane is drained but its record says active (an interrupted operation)" }, {
        runnerId: g?.id,
        labels,
      }, this.hostGuards(v, "undrain"));
      return;
    }
    if (
      hl !== undefined &&
      v.hostKnown &&
      hl.state === LaneState.LANE_STATE_IDLE_UNARMED &&
      pool?.mode === "ephemeral" &&
      this.permits(v, ["arm"])
    ) {
      const labels = this.canonical(v, pool);
      if (labels === undefined) return;
      this.push(v, "arm", { code: "UNARMED", message: "the ephemeral lane finished its job and waits for a fresh JIT registration" }, {
        runnerName: this.armRunnerName(v),
        labels,
      }, [
        ...this.hostGuards(v, "arm"),
        { kind: "no-job-evidence", hostId: v.hostId, laneId: v.laneId },
      ]);
      return;
    }
    if (
      hl !== undefined &&
      v.hostKnown &&
      (hl.state === LaneState.LANE_STATE_STOPPED || hl.state === LaneState.LANE_STATE_FAILED) &&
      pool !== undefined &&
      this.permits(v, ["drain", "restart"])
    ) {
      const labels = this.canonical(v, pool);
      if (labels !== undefined) {
        this.push(v, "restart", { code: "STOPPED", message: `the lane is ${hl.state === LaneState.LANE_STATE_FAILED ? "failed" : "stopped"} on its host` }, {
          runnerId: g?.id,
          labels,
        }, [
          ...this.hostGuards(v, "restart"),
          this.allowsGuard(v, "drain"),
          { kind: "no-job-evidence", hostId: v.hostId, laneId: v.laneId, at: "send-restart" },
        ]);
        return;
      }
    }
    if (g !== undefined && pool !== undefined) {
      const want = this.canonical(v, pool);
      if (want === undefined) return;
      const have = g.labels.filter((l) => l.type !== "read-only").map((l) => l.name);
      if (!sameSet(have, want)) {
        this.push(v, "relabel", { code: "LABEL_DRIFT", message: `labels differ from pool ${v.pool}'s canonical set` }, {
          runnerId: g.id,
          from: have.sort(cmp),
          to: want,
        }, [
          { kind: "runner-id-matches", scope: v.scope, laneId: v.laneId, runnerId: g.id },
          { kind: "runner-identity-labels", scope: v.scope, runnerId: g.id, laneId: v.laneId, hostId: v.hostId, pool: v.pool },
        ]);
      }
    }
  }

  /**
   * The runner name of a re-armed ephemeral lane: the lane id, unless a registration of that name still
   * lingers in the scope (GitHub answers 409 to a duplicate), then the lane id with a short suffix from the plan time.
   */
  private armRunnerName(v: LaneView): string {
    const obs = this.observed.scopes.get(v.scope);
    const taken = obs?.status === "ok" && obs.runners.some((r) => r.name === v.laneId);
    return taken ? `${v.laneId.slice(0, 56)}-${(this.now % 36 ** 6).toString(36).padStart(6, "0")}` : v.laneId;
  }

  private canonical(v: LaneView, pool: PoolPolicy): string[] | undefined {
    try {
      return canonicalLabels({ laneId: v.laneId, hostId: v.hostId, pool: v.pool, capabilityLabels: pool.labels });
    } catch (err) {
      if (!(err instanceof LanekeeperError)) throw err;
      this.warn("INVALID_LANE", `lane ${v.laneId}: ${err.message}`, { laneId: v.laneId });
      return undefined;
    }
  }

  private addToGroup(byGroup: Map<string, GroupLane[]>, view: LaneView, record: StoredLaneRecord): void {
    const key = `${record.scope}\u0000${record.pool}`;
    const list = byGroup.get(key);
    if (list === undefined) byGroup.set(key, [{ view, record }]);
    else list.push({ view, record });
  }

  // ---- orphans ----------------------------------------------------------------------------------------------

  private newOrphan(v: LaneView): void {
    const kind = v.orphanKind;
    if (kind === undefined) return;
    if (!isOrphanVerified(v)) {
      // Probably ours with its other half unobserved: counted, so the group does not create a duplicate.
      const key = `${v.scope}\u0000${v.pool}`;
      this.unverified.set(key, (this.unverified.get(key) ?? 0) + 1);
      this.warn("ORPHAN_UNVERIFIED", `lane ${v.laneId} looks orphaned (${kind}) but the evidence is incomplete: waiting for fresh observations`, {
        laneId: v.laneId,
      });
      return;
    }
    if (this.blocked(v.scope, v.hostId) !== undefined) return;
    if (kind === "lane-without-registration" && !this.permits(v, ["remove"])) return;
    const g = v.registration;
    const guards: Guard[] = [...this.orphanFactGuards(v, kind)];
    this.push(v, "mark-orphan", { code: "ORPHAN_SEEN", message: orphanMessage(kind, v) }, {
      orphanKind: kind,
      runnerId: g?.id,
      mark: this.mark(kind, v),
    }, guards);
  }

  private markedOrphan(v: LaneView, r: StoredLaneRecord): void {
    const mark = r.orphan;
    if (mark === undefined) {
      this.warn("ORPHAN_MARK_STALE", `record of ${v.laneId} is orphaned without a mark; remove it with the lane store tools`, { laneId: v.laneId });
      return;
    }
    const still =
      v.class === "orphaned" &&
      v.orphanKind === mark.kind &&
      (mark.runnerId === undefined || v.registration?.id === mark.runnerId || mark.kind !== "registration-without-lane");
    if (still) {
      if (!isOrphanVerified(v)) return; // wait for complete evidence
      const notBefore = mark.markedAtMs + (this.opts.orphanGraceMs ?? DEFAULT_ORPHAN_GRACE_MS);
      if (this.now < notBefore) return; // phase two only on a later cycle
      if (mark.kind !== "record-without-lane" && this.blocked(v.scope, v.hostId) !== undefined) return;
      if (mark.kind === "lane-without-registration" && !this.permits(v, ["remove"])) return;
      if (mark.kind === "registration-without-lane" && v.registration?.busy === true) {
        this.warn("ORPHAN_BUSY", `orphaned registration ${v.registration.id} of ${v.laneId} is busy on GitHub: not deleted while it runs a job`, {
          laneId: v.laneId,
        });
        return;
      }
      if (mark.kind === "lane-without-registration" && (v.hostLane?.jobRunning === true || v.hostLane?.held === true)) {
        this.warn("ORPHAN_BUSY", `orphaned lane ${v.laneId} on ${v.hostId} is running a job or held: not removed now`, {
          laneId: v.laneId,
          hostId: v.hostId,
        });
        return;
      }
      if (mark.kind !== "record-without-lane") {
        if (this.orphanBudget <= 0) {
          this.warn("ORPHAN_BUDGET", "more orphans are due for cleanup than one plan may clean up; the rest follow in later plans");
          return;
        }
        this.orphanBudget--;
      }
      const guards: Guard[] = [
        {
          kind: "orphan-still-marked",
          laneId: v.laneId,
          orphanKind: mark.kind,
          markedAtMs: mark.markedAtMs,
          notBeforeMs: notBefore,
          ...(mark.runnerId === undefined ? {} : { runnerId: mark.runnerId }),
        },
        ...this.orphanFactGuards(v, mark.kind),
      ];
      if (mark.kind === "registration-without-lane" && v.registration !== undefined) {
        guards.push({ kind: "runner-not-busy", scope: v.scope, runnerId: v.registration.id, at: "delete-registration" });
      }
      if (mark.kind === "lane-without-registration") {
        guards.push({ kind: "no-job-evidence", hostId: v.hostId, laneId: v.laneId, at: "send-remove" });
        guards.push({ kind: "lane-not-held", hostId: v.hostId, laneId: v.laneId });
      }
      this.push(
        v,
        "cleanup-orphan",
        { code: "ORPHAN_CONFIRMED", message: `still orphaned since ${new Date(mark.markedAtMs).toISOString()}: ${orphanMessage(mark.kind, v)}` },
        { orphanKind: mark.kind, runnerId: v.registration?.id },
        guards,
      );
      return;
    }
    if (v.class === "needs-attention") {
      this.warn("ORPHAN_MARK_STALE", `orphan mark of ${v.laneId} no longer matches: ${v.attention?.message ?? ""}`, { laneId: v.laneId });
      return;
    }
    if (v.certainty !== "verified") return;
    if (v.registration === undefined && v.hostLane === undefined) {
      this.push(v, "forget-record", { code: "ORPHAN_CLEARED", message: "nothing of the orphan is left: the record goes" }, {});
    } else if (v.class === "managed" && mark.previousState !== undefined) {
      this.push(v, "update-record", { code: "ORPHAN_CLEARED", message: "both halves are back and agree: the orphan mark is cleared" }, {
        changes: { state: mark.previousState, ...(v.registration === undefined ? {} : { runnerId: v.registration.id }) },
      });
    } else {
      this.warn(
        "ORPHAN_MARK_STALE",
        `lane ${v.laneId} was marked ${mark.kind} but now looks ${v.class === "orphaned" ? (v.orphanKind ?? "") : v.class}; it is re-evaluated next plan`,
        { laneId: v.laneId },
      );
      if (v.class === "orphaned" && v.orphanKind !== undefined && isOrphanVerified(v) && this.blocked(v.scope, v.hostId) === undefined) {
        // Re-mark with the new kind: the grace period starts again.
        this.push(v, "mark-orphan", { code: "ORPHAN_SEEN", message: orphanMessage(v.orphanKind, v) }, {
          orphanKind: v.orphanKind,
          runnerId: v.registration?.id,
          mark: { ...this.mark(v.orphanKind, v), ...(mark.previousState === undefined ? {} : { previousState: mark.previousState }) },
        }, this.orphanFactGuards(v, v.orphanKind));
      }
    }
  }

  private mark(kind: OrphanKind, v: LaneView): OrphanMark {
    const prev = v.record?.state;
    return {
      kind,
      markedAtMs: this.now,
      planId: this.planId,
      ...(kind === "registration-without-lane" && v.registration !== undefined ? { runnerId: v.registration.id } : {}),
      ...(prev === undefined || prev === "orphaned" ? {} : { previousState: prev }),
    };
  }

  /** Guards that restate why a lane is orphaned of this kind. */
  private orphanFactGuards(v: LaneView, kind: OrphanKind): Guard[] {
    const g = v.registration;
    switch (kind) {
      case "registration-without-lane":
        return g === undefined
          ? []
          : [
              { kind: "runner-id-matches", scope: v.scope, laneId: v.laneId, runnerId: g.id },
              { kind: "runner-identity-labels", scope: v.scope, runnerId: g.id, laneId: v.laneId, hostId: v.hostId, pool: v.pool },
              { kind: "lane-absent-on-host", hostId: v.hostId, laneId: v.laneId },
            ];
      case "lane-without-registration":
        return [
          {
            kind: "registration-absent",
            scope: v.scope,
            laneId: v.laneId,
            ...(v.hostLane !== undefined && v.hostLane.runnerId !== 0 ? { runnerId: v.hostLane.runnerId } : {}),
          },
          { kind: "lane-marker-valid", hostId: v.hostId, laneId: v.laneId, scope: v.scope, pool: v.pool },
        ];
      case "record-without-lane":
        return [
          { kind: "registration-absent", scope: v.scope, laneId: v.laneId },
          { kind: "lane-absent-on-host", hostId: v.hostId, laneId: v.laneId },
        ];
    }
  }

  private resumeRemoval(v: LaneView, r: StoredLaneRecord): void {
    if (v.registration === undefined && v.hostLane === undefined && v.certainty === "verified") {
      this.push(v, "forget-record", { code: "REMOVED", message: "the lane and its registration are gone: the removal finished" }, {});
      return;
    }
    if (this.blocked(v.scope, v.hostId) !== undefined) return;
    if (!this.permits(v, ["drain", "remove"])) return;
    if (v.hostLane?.held === true) {
      this.warn("LANE_HELD", `lane ${v.laneId} is held on ${v.hostId}: its removal waits`, { laneId: v.laneId, hostId: v.hostId });
      return;
    }
    this.push(v, "remove", { code: "RESUME_REMOVE", message: `resume the removal started at ${new Date(r.updatedAtMs).toISOString()}` }, {
      runnerId: v.registration?.id,
    }, this.removalGuards(v));
  }

  // ---- groups -----------------------------------------------------------------------------------------------

  private groupPass(byGroup: Map<string, GroupLane[]>): void {
    const desired = new Map<string, { scope: string; pool: string; count: number; hosts: readonly string[] }>();
    for (const l of this.policy.lanes) {
      const key = `${l.scope}\u0000${l.pool}`;
      const prev = desired.get(key);
      // The policy schema refuses duplicates; merging keeps a hand-built policy meaningful anyway.
      desired.set(key, {
        scope: l.scope,
        pool: l.pool,
        count: (prev?.count ?? 0) + l.count,
        hosts: [...new Set([...(prev?.hosts ?? []), ...l.hosts])],
      });
    }
    const laneHosts: string[] = [];
    const laneGroups: string[] = [];
    for (const v of this.cls.lanes) {
      if (v.hostId === "") continue;
      const r = v.record;
      if (v.hostLane !== undefined || (r !== undefined && r.state !== "orphaned")) {
        laneHosts.push(v.hostId);
        laneGroups.push(groupKey(v.scope, v.pool, v.hostId));
      }
    }
    const placement = new Placement(this.hostStatus, laneHosts, laneGroups);
    const keys = [...new Set([...desired.keys(), ...byGroup.keys()])].sort(cmp);
    for (const key of keys) {
      const [scope = "", pool = ""] = key.split("\u0000");
      const want = desired.get(key) ?? { scope, pool, count: 0, hosts: [] };
      this.group(want, byGroup.get(key) ?? [], placement);
    }
    // Repairs last, so they never collide with a lane the group pass chose to drain or remove.
    for (const list of [...byGroup.values()]) for (const { view, record } of list) this.laneRepairs(view, record);
  }

  private group(
    want: { scope: string; pool: string; count: number; hosts: readonly string[] },
    lanes: readonly GroupLane[],
    placement: Placement,
  ): void {
    const { scope, pool } = want;
    const declared = this.declared(scope, pool);
    // An undeclared group wants zero lanes: its lanes are excess wherever they are, not misplaced.
    const allowed = new Set(declared ? want.hosts : lanes.map((gl) => gl.view.hostId));
    const frozen: GroupLane[] = [];
    const misplaced: GroupLane[] = [];
    const drained: GroupLane[] = [];
    const serving: GroupLane[] = [];
    for (const gl of lanes) {
      const { view, record } = gl;
      if (view.class === "orphaned") continue; // replaced; the orphan path deals with it
      const hostBlocked = this.blocked(scope, view.hostId) !== undefined;
      if (hostBlocked || view.hostLane?.held === true || record.state === "needs-attention" || view.class === "needs-attention") {
        frozen.push(gl);
      } else if (record.state === "draining" && record.drainReason !== "operator") {
        drained.push(gl);
      } else if (!allowed.has(view.hostId)) {
        misplaced.push(gl);
      } else {
        serving.push(gl);
      }
    }
    let current = serving.length + frozen.length + (this.unverified.get(`${scope}\u0000${pool}`) ?? 0);
    const before = current;
    const scopeBlocked = this.scopeBlocked(scope);
    const createIds: string[] = [];

    if (!scopeBlocked && current < want.count) {
      // Reuse drained lanes on allowed hosts first: cheaper than a new lane, and nothing moves.
      for (const gl of drained.filter((d) => allowed.has(d.view.hostId)).sort(byNewest)) {
        if (current >= want.count) break;
        if (gl.view.class !== "managed" || !this.permits(gl.view, ["undrain"])) continue;
        const poolPolicy = Object.hasOwn(this.policy.pools, pool) ? this.policy.pools[pool] : undefined;
        const labels = poolPolicy === undefined ? undefined : this.canonical(gl.view, poolPolicy);
        if (labels === undefined) break;
        this.push(gl.view, "undrain", { code: "REUSE_DRAINED", message: `scale-up: reuse the drained lane (${current} of ${want.count})` }, {
          runnerId: gl.view.registration?.id,
          labels,
        }, this.hostGuards(gl.view, "undrain"));
        current++;
      }
      const poolPolicy = Object.hasOwn(this.policy.pools, pool) ? this.policy.pools[pool] : undefined;
      if (poolPolicy !== undefined) {
        while (current < want.count) {
          if (this.createBudget <= 0) {
            this.warn("CREATE_BUDGET", `${want.count - current} more lane(s) of ${scope}/${pool} wait for a later plan (create limit per plan)`, {
              scope,
              pool,
            });
            break;
          }
          const id = this.create(scope, pool, poolPolicy, want.hosts, placement);
          if (id === undefined) {
            break;
          }
          createIds.push(id);
          this.createBudget--;
          current++;
        }
      }
    }

    // Scale down: only when more lanes serve than wanted. Frozen lanes count but are never chosen.
    let excess = current - want.count;
    const reasonDown = (busy: boolean): ReasonCode =>
      want.count === 0 && !declared ? (busy ? "NOT_IN_POLICY_BUSY" : "NOT_IN_POLICY") : busy ? "SCALE_DOWN_BUSY" : "SCALE_DOWN";
    if (!scopeBlocked && excess > 0) {
      const candidates = serving.filter((gl) => gl.record.state === "active" && gl.view.class === "managed" && !gl.view.pending);
      const idle = candidates.filter((gl) => isIdle(gl.view)).sort(byRemovalPreference);
      for (const gl of idle) {
        if (excess <= 0) break;
        if (!this.permits(gl.view, ["drain", "remove"])) continue;
        if (!this.spendRemoval()) break;
        this.remove(gl.view, reasonDown(false), `${current} lanes for ${want.count} wanted; idle, ${removalWhy(gl)}`, []);
        excess--;
        current--;
      }
      if (excess > 0 && (this.opts.drainBusyOnScaleDown ?? true)) {
        const busy = candidates.filter((gl) => !isIdle(gl.view) && canDrain(gl.view)).sort(byRemovalPreference);
        for (const gl of busy) {
          if (excess <= 0) break;
          if (!this.permits(gl.view, ["drain"])) continue;
          if (!this.spendRemoval()) break;
          this.drain(gl.view, reasonDown(true), "scale-down", "busy: drained so it takes no new job; removed by a later plan once idle");
          excess--;
          current--;
        }
      }
      if (excess > 0) {
        this.warn(
          "SCALE_DOWN_WAITING",
          `${excess} lane(s) of ${scope}/${pool} above the wanted ${want.count} cannot be removed now (busy, job evidence unknown, ` +
            "or the removal limit per plan was reached)",
          { scope, pool },
        );
      }
    }

    // Drained lanes nobody needs: remove them once idle.
    if (!scopeBlocked) {
      for (const gl of drained) {
        if (this.targeted.has(gl.view.laneId)) continue;
        if (!isIdle(gl.view) || gl.view.class !== "managed") continue;
        if (!this.permits(gl.view, ["drain", "remove"])) continue;
        if (!this.spendRemoval()) break;
        this.remove(gl.view, "SCALE_DOWN", "drained and idle: removed", []);
      }
      // Lanes on hosts no longer listed for the group: their replacements are created above; they go when idle.
      for (const gl of misplaced) {
        if (gl.view.class !== "managed" || gl.record.state !== "active") continue;
        const idle = isIdle(gl.view);
        if (!idle && !canDrain(gl.view)) continue;
        if (!this.permits(gl.view, idle ? ["drain", "remove"] : ["drain"])) continue;
        if (!this.spendRemoval()) break;
        if (idle) this.remove(gl.view, "MISPLACED", `host ${gl.view.hostId} is no longer listed for ${scope}/${pool}`, createIds);
        else this.drain(gl.view, "MISPLACED_BUSY", "move", `host ${gl.view.hostId} is no longer listed; busy, drained first`);
      }
    }
    this.groups.push({ scope, pool, desired: want.count, current: before, planned: current });
  }

  private declared(scope: string, pool: string): boolean {
    return this.policy.lanes.some((l) => l.scope === scope && l.pool === pool);
  }

  private scopeBlocked(scope: string): boolean {
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

  private spendRemoval(): boolean {
    if (this.removalBudget <= 0) {
      this.warn("REMOVAL_BUDGET", "more lanes are due for removal than one plan may remove; the rest follow in later plans");
      return false;
    }
    this.removalBudget--;
    return true;
  }

  private create(scope: string, pool: string, poolPolicy: PoolPolicy, hosts: readonly string[], placement: Placement): string | undefined {
    const backend = poolPolicy.backend;
    const req: PlacementRequest = { scope, pool, backend, image: backend === "container" ? poolPolicy.image : undefined };
    const choice = placement.choose(hosts, req);
    for (const [h, e] of choice.refused) {
      if (e.ok || e.why === "full") continue;
      if (e.why === "not-allowed") {
        this.warn("HOST_NOT_ALLOWED", `host ${h} does not take ${scope}/${pool}: ${e.detail}. Extend control in its agent config`, {
          hostId: h,
          scope,
          pool,
        });
      } else {
        this.blocked(scope, h);
      }
    }
    if (choice.hostId === undefined) {
      const why = [...choice.refused.entries()].map(([h, e]) => (e.ok ? h : `${h}: ${e.detail}`));
      this.warn("NO_CAPACITY", `no host can take another lane of ${scope}/${pool}${why.length > 0 ? ` (${why.join("; ")})` : ""}`, {
        scope,
        pool,
      });
      return undefined;
    }
    const laneId = newLaneId(scope, pool, this.takenIds);
    this.takenIds.add(laneId);
    const hostId = choice.hostId;
    let labels: string[];
    try {
      labels = canonicalLabels({ laneId, hostId, pool, capabilityLabels: poolPolicy.labels });
    } catch (err) {
      if (!(err instanceof LanekeeperError)) throw err;
      this.warn("INVALID_LANE", `lanes of ${scope}/${pool} cannot be created: ${err.message}`, { scope, pool });
      return undefined;
    }
    const parsed = parseScope(scope);
    const webUrl = this.policy.github.webUrl.replace(/\/+$/, "");
    const scopePolicy = this.policy.scopes[scope];
    const spec: LaneSpec = {
      laneId,
      scope,
      pool,
      backend: backend === "container" ? Backend.BACKEND_CONTAINER : Backend.BACKEND_SYSTEMD,
      mode: poolPolicy.mode === "ephemeral" ? LaneMode.LANE_MODE_EPHEMERAL : LaneMode.LANE_MODE_PERSISTENT,
      labels,
      runnerGroup: parsed.kind === "org" ? (scopePolicy?.runnerGroup ?? "Default") : "",
      githubUrl: parsed.kind === "org" ? `${webUrl}/${parsed.org}` : `${webUrl}/${parsed.owner}/${parsed.repo}`,
      runnerVersion: backend === "systemd" ? (poolPolicy.runnerVersion ?? "") : "",
      image: backend === "container" ? (poolPolicy.image ?? "") : "",
      limits:
        poolPolicy.limits === undefined
          ? undefined
          : { cpuMillis: poolPolicy.limits.cpuMillis ?? 0, memoryBytes: poolPolicy.limits.memoryBytes ?? 0 },
    };
    const guards: Guard[] = [
      { kind: "record-revision", laneId, revision: null },
      { kind: "scope-opted-in", scope },
      { kind: "host-opted-in", hostId },
      { kind: "host-allows", hostId, action: "create", scope, pool, backend, ...(req.image === undefined ? {} : { image: req.image }) },
      { kind: "host-capacity", hostId, maxLanes: choice.capacity },
      { kind: "lane-id-unused", laneId },
    ];
    const evidence: Evidence[] = [
      choice.evidence,
      { source: "policy", path: `lanes[${scope}/${pool}].count`, value: this.policy.lanes.find((l) => l.scope === scope && l.pool === pool)?.count ?? 0 },
    ];
    const id = `create:${laneId}`;
    this.actionIds.add(id);
    this.actions.push({
      id,
      kind: "create",
      laneId,
      scope,
      pool,
      hostId,
      reason: { code: "SCALE_UP", message: `fewer lanes than the ${scope}/${pool} policy wants` },
      guards,
      evidence,
      steps: STEPS.create,
      dependsOn: [],
      spec,
    });
    this.targeted.add(laneId);
    return id;
  }

  private remove(v: LaneView, code: ReasonCode, message: string, dependsOn: readonly string[]): void {
    this.push(v, "remove", { code, message }, { runnerId: v.registration?.id }, this.removalGuards(v), dependsOn);
  }

  private drain(v: LaneView, code: ReasonCode, drainReason: "scale-down" | "move", message: string): void {
    this.push(v, "drain", { code, message }, { runnerId: v.registration?.id, drainReason }, this.hostGuards(v, "drain"));
  }

  /** Guards of an action on a live lane: opt-ins, agent permission, marker, hold, and the registration's identity. */
  private hostGuards(v: LaneView, action: IntentActionKind): Guard[] {
    const guards: Guard[] = [
      { kind: "scope-opted-in", scope: v.scope },
      { kind: "host-opted-in", hostId: v.hostId },
      this.allowsGuard(v, action),
      { kind: "lane-marker-valid", hostId: v.hostId, laneId: v.laneId, scope: v.scope, pool: v.pool },
      { kind: "lane-not-held", hostId: v.hostId, laneId: v.laneId },
    ];
    const g = v.registration;
    if (g !== undefined) {
      guards.push({ kind: "runner-id-matches", scope: v.scope, laneId: v.laneId, runnerId: g.id });
      guards.push({ kind: "runner-identity-labels", scope: v.scope, runnerId: g.id, laneId: v.laneId, hostId: v.hostId, pool: v.pool });
    }
    return guards;
  }

  private allowsGuard(v: LaneView, action: IntentActionKind): Guard {
    const poolPolicy = Object.hasOwn(this.policy.pools, v.pool) ? this.policy.pools[v.pool] : undefined;
    const backend = poolPolicy?.backend ?? "systemd";
    const image = backend === "container" ? poolPolicy?.image : undefined;
    return { kind: "host-allows", hostId: v.hostId, action, scope: v.scope, pool: v.pool, backend, ...(image === undefined ? {} : { image }) };
  }

  private removalGuards(v: LaneView): Guard[] {
    const guards = this.hostGuards(v, "remove");
    guards.push(this.allowsGuard(v, "drain"));
    guards.push({ kind: "no-job-evidence", hostId: v.hostId, laneId: v.laneId, at: "send-remove" });
    const g = v.registration;
    if (g !== undefined) {
      guards.push({ kind: "runner-not-busy", scope: v.scope, runnerId: g.id, at: "send-remove" });
      guards.push({ kind: "runner-not-busy", scope: v.scope, runnerId: g.id, at: "delete-registration" });
    }
    return guards;
  }

  /** Add an action for an existing lane. The record's revision is always the first guard. */
  private push(
    v: LaneView,
    kind: Exclude<PlanActionKind, "create">,
    reason: ActionReason,
    extra: Record<string, unknown>,
    guards: readonly Guard[] = [],
    dependsOn: readonly string[] = [],
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
      evidence: laneEvidence(v),
      steps,
      dependsOn,
    };
    // The kind-specific fields come from the typed helpers above; the cast joins base and extra.
    this.actions.push({ ...base, kind, ...extra } as Action);
    if (kind !== "update-record" && kind !== "mark-orphan") this.targeted.add(v.laneId);
  }
}

function orphanMessage(kind: string, v: LaneView): string {
  switch (kind) {
    case "registration-without-lane":
      return `registration ${v.registration?.id ?? "?"} in ${v.scope} has no lane on ${v.hostId}`;
    case "lane-without-registration":
      return `lane on ${v.hostId} has no registration in ${v.scope}`;
    default:
      return "only the coordinator record is left";
  }
}

/**
 * Idle: the host, whose inventory is fresh, reports no job AND GitHub says not busy (or, for an ephemeral lane
 * waiting to be re-armed, there is no registration that could take one). Unknown is never idle.
 */
export function isIdle(v: LaneView): boolean {
  const hl = v.hostLane;
  if (!v.hostKnown || hl === undefined || hl.jobRunning) return false;
  if (v.registration !== undefined) return !v.registration.busy;
  return hl.state === LaneState.LANE_STATE_IDLE_UNARMED;
}

function canDrain(v: LaneView): boolean {
  return v.registration !== undefined && v.hostLane !== undefined && !v.hostLane.draining;
}

function unhealthy(v: LaneView): boolean {
  const hl = v.hostLane;
  return (
    hl !== undefined &&
    (hl.state === LaneState.LANE_STATE_FAILED ||
      hl.state === LaneState.LANE_STATE_NEEDS_ATTENTION ||
      hl.state === LaneState.LANE_STATE_STOPPED ||
      hl.health === Health.HEALTH_CRASH_LOOP ||
      hl.health === Health.HEALTH_REGISTRATION_DELETED)
  );
}

function removalWhy(gl: GroupLane): string {
  if (unhealthy(gl.view)) return "unhealthy";
  if (gl.view.registration?.status !== "online") return "offline on GitHub";
  return "newest";
}

/** Unhealthy first, then offline on GitHub, then newest, then lane id. */
function byRemovalPreference(a: GroupLane, b: GroupLane): number {
  const ua = unhealthy(a.view) ? 0 : 1;
  const ub = unhealthy(b.view) ? 0 : 1;
  if (ua !== ub) return ua - ub;
  const oa = a.view.registration?.status === "online" ? 1 : 0;
  const ob = b.view.registration?.status === "online" ? 1 : 0;
  if (oa !== ob) return oa - ob;
  return byNewest(a, b);
}

function byNewest(a: GroupLane, b: GroupLane): number {
  return b.record.createdAtMs - a.record.createdAtMs || cmp(a.record.laneId, b.record.laneId);
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
}

