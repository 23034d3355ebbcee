import { Health, LaneMode, LaneState, systemClock, type Clock, type CoordinatorPolicy, type Logger } from "@lanekeeper/shared";
import type { ApplyEngine } from "../apply/apply-engine.js";
import type { AuditTrail } from "../audit/coordinator-audit.js";
import type { ActionOutcome, ApplyEvent, ApplyReport } from "../apply/apply-events.js";
import { operatorAction } from "../apply/operator-actions.js";
import type { CoordinatorContext } from "../context/coordinator-context.js";
import { observeWorld, planFromWorld } from "../context/observe-world.js";
import type { CoordinatorMetrics } from "../metrics/coordinator-metrics.js";
import type { LaneView } from "../observe/classify.js";
import { recordWithout, type StoredLaneRecord } from "../observe/lane-record.js";
import type { PlanOptions } from "../plan/plan-types.js";
import type { LaneFence } from "../lane-store-kv/lane-fence.js";
import type { JobStore } from "../demand/job-store.js";
import type { LeaderLock } from "./leader-lock.js";
import type { OperationLeases } from "../apply/operation-leases.js";
import {
  DEFAULT_POKE_GAP_MS,
  DEFAULT_HEALTH_WINDOW_MS,
  DEFAULT_MAX_HEALTH_RESTARTS,
  DEFAULT_OFFLINE_GRACE_MS,
  MAX_HEALTH_RESTARTS_PER_CYCLE,
} from "./limits.js";

/** Health-driven restart settings. */
export interface HealthRestartOptions {
  /** Offline on GitHub while the host reports the runner running, this long, triggers a restart. @default DEFAULT_OFFLINE_GRACE_MS */
  readonly offlineGraceMs?: number;
  /** Restarts of one lane per window; then it is left to an operator. @default DEFAULT_MAX_HEALTH_RESTARTS */
  readonly maxRestarts?: number;
  /** @default DEFAULT_HEALTH_WINDOW_MS */
  readonly windowMs?: number;
}

/** Options of {@link Reconciler}. */
export interface ReconcilerOptions {
  /** The reconciler only appends to the audit, so any {@link AuditTrail} will do. */
  readonly ctx: Pick<CoordinatorContext, "policy" | "github" | "store" | "inventory" | "engine"> & { readonly audit: AuditTrail; readonly leases?: OperationLeases };
  /** Without a lock this process always acts (a single coordinator). */
  readonly lock?: LeaderLock;
  /**
   * With a lock: the fence this process raises to its leader epoch before it acts as leader, so every write and
   * intent of a coordinator it superseded is refused from then on.
   */
  readonly fence?: Pick<LaneFence, "lead">;
  readonly metrics?: CoordinatorMetrics;
  /** Between cycles. @default policy `coordinator.reconcileIntervalMs` */
  readonly intervalMs?: number;
  /**
   * Least time from the end of one cycle to the start of a cycle a {@link Reconciler.poke} asked for: pokes in a
   * burst of webhooks share cycles instead of spending the GitHub budget on back-to-back observations.
   * @default DEFAULT_POKE_GAP_MS
   */
  readonly pokeGapMs?: number;
  /** The job store: when given and a lane entry uses `scaling`, each cycle plans with the demand it holds. */
  readonly jobs?: JobStore;
  /** @default systemClock */
  readonly clock?: Clock;
  readonly log?: Logger;
  readonly health?: HealthRestartOptions;
  readonly planOptions?: Omit<PlanOptions, "nowMs">;
  readonly onEvent?: (e: ApplyEvent) => void;
}

/** {@link ReconcilerOptions} with every default filled in: what a {@link Reconciler} runs with. */
export interface ResolvedReconcilerOptions extends ReconcilerOptions {
  readonly intervalMs: number;
  readonly pokeGapMs: number;
  readonly clock: Clock;
  readonly health: Required<HealthRestartOptions>;
}

/**
 * Fills in the reconciler's defaults: an explicit option wins, then the policy's `coordinator` section (by
 * default the one in `override.ctx.policy`), then the built-in default. Pure; resolving resolved options changes
 * nothing.
 */
export function resolveReconcilerOptions(
  override: ReconcilerOptions,
  policy: Pick<CoordinatorPolicy, "reconcileIntervalMs"> = override.ctx.policy.coordinator,
): ResolvedReconcilerOptions {
  return {
    ...override,
    intervalMs: override.intervalMs ?? policy.reconcileIntervalMs,
    pokeGapMs: override.pokeGapMs ?? DEFAULT_POKE_GAP_MS,
    clock: override.clock ?? systemClock,
    health: {
      offlineGraceMs: override.health?.offlineGraceMs ?? DEFAULT_OFFLINE_GRACE_MS,
      maxRestarts: override.health?.maxRestarts ?? DEFAULT_MAX_HEALTH_RESTARTS,
      windowMs: override.health?.windowMs ?? DEFAULT_HEALTH_WINDOW_MS,
    },
  };
}

/** What one cycle did. */
export interface CycleReport {
  readonly leader: boolean;
  readonly report?: ApplyReport;
  /** Health-driven restarts of this cycle. */
  readonly healthRestarts: readonly (ActionOutcome & { readonly why: "offline" | "crash-loop" })[];
  /** Lanes left to an operator this cycle because they hit the restart cap. */
  readonly capped: readonly string[];
  readonly error?: string;
}

/**
 * The `serve` loop: every interval, if this process holds the leader lock, observe → plan → apply (the same
 * engine, guards, drain protocol and audit as `lanekeeper apply`), then health-driven restarts the planner does
 * not do: a registration offline on GitHub for a while although its host reports the runner running (a runner
 * that lost its connection), and a lane the agent reports in a crash loop (the agent stopped restarting it). Each
 * lane gets at most `maxRestarts` health restarts per window, then its record goes to `needs-attention` with a
 * recovery note. Followers only keep collecting inventories.
 */
export class Reconciler {
  private readonly o: ResolvedReconcilerOptions;
  private readonly offlineSince = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<CycleReport> | undefined;
  private stopped = true;
  /** The hold of the leader lock the fence was last moved for. */
  private ledHold: number | undefined;
  /** A cycle of the loop is running. */
  private inFlight = false;
  /** A poke arrived during the running cycle. */
  private pending = false;
  private lastEndMs = Number.NEGATIVE_INFINITY;
  /** When the scheduled cycle starts, while one is scheduled. */
  private dueAtMs: number | undefined;
  /** Serializes {@link cycle}: the loop and a direct caller never run two at once. */
  private serial: Promise<unknown> = Promise.resolve();

  /** Options are resolved by {@link resolveReconcilerOptions}. */
  constructor(o: ReconcilerOptions) {
    this.o = resolveReconcilerOptions(o);
  }

  /** Run cycles every interval until {@link stop}; {@link poke} starts one sooner. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  /**
   * Start a cycle now instead of at the next interval: a new queued job, a completed one (an ephemeral lane to
   * re-arm), an ephemeral runner that exited. Pokes coalesce: during a cycle they ask for one more right after it
   * (at least `pokeGapMs` after its end), and never two cycles run at once. Ignored unless {@link start}ed.
   */
  poke(reason: string): void {
    if (this.stopped) return;
    this.o.log?.debug({ reason }, "reconcile poked");
    this.o.metrics?.poke();
    if (this.inFlight) {
      this.pending = true;
      return;
    }
    const wait = Math.max(0, this.lastEndMs + this.o.pokeGapMs - this.o.clock.now());
    if (this.dueAtMs !== undefined && this.dueAtMs <= this.o.clock.now() + wait) return;
    this.schedule(wait);
  }

  /** Stop after the current cycle (a drain in progress is finished, never cut short). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.dueAtMs = undefined;
    await this.running?.catch(() => undefined);
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.dueAtMs = this.o.clock.now() + ms;
    this.timer = setTimeout(() => this.loop(), ms);
  }

  private loop(): void {
    this.dueAtMs = undefined;
    if (this.stopped || this.inFlight) return;
    this.inFlight = true;
    this.pending = false;
    this.running = this.cycle();
    void this.running.finally(() => {
      this.inFlight = false;
      this.lastEndMs = this.o.clock.now();
      if (!this.stopped) this.schedule(this.pending ? this.o.pokeGapMs : this.o.intervalMs);
    });
  }

  /** One cycle (after any cycle already running). Never throws: an error is logged, counted and reported. */
  cycle(): Promise<CycleReport> {
    const run = this.serial.then(() => this.cycleNow());
    this.serial = run.catch(() => undefined);
    return run;
  }

  private async cycleNow(): Promise<CycleReport> {
    const t0 = this.o.clock.now();
    const m = this.o.metrics;
    const leader = this.o.lock === undefined ? true : (await this.o.lock.ensure()) && (await this.fenceForEpoch());
    m?.setLeader(leader);
    if (!leader) {
      m?.cycle("follower", 0);
      return { leader: false, healthRestarts: [], capped: [] };
    }
    try {
      const ctx = this.o.ctx;
      const world = await observeWorld({
        policy: ctx.policy,
        github: ctx.github,
        store: ctx.store,
        inventory: ctx.inventory,
        clock: this.o.clock,
        ...(ctx.leases === undefined ? {} : { leases: ctx.leases }),
        ...(this.o.jobs === undefined ? {} : { jobs: this.o.jobs }),
      });
      if (world.observed.demand !== undefined) m?.demandObserved(world.observed.demand, world.observedAtMs);
      const p = planFromWorld(ctx.policy, world, this.o.planOptions);
      m?.lanesObserved(p.classification.lanes);
      const onEvent = (e: ApplyEvent): void => {
        m?.onEvent(e);
        this.o.onEvent?.(e);
      };
      const engine = ctx.engine();
      const report = await engine.run(p, { onEvent });
      m?.report(report);
      const targeted = new Set(p.actions.map((a) => a.laneId));
      const { restarts, capped } = await this.healthRestarts(p.classification.lanes, targeted, engine, onEvent);
      m?.cycle("ok", (this.o.clock.now() - t0) / 1000);
      const failed = report.outcomes.filter((x) => x.status !== "succeeded");
      if (failed.length > 0) this.o.log?.warn({ failed: failed.map((x) => `${x.kind}:${x.laneId}:${x.code ?? ""}`) }, "reconcile: some actions did not succeed");
      return { leader: true, report, healthRestarts: restarts, capped };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.o.log?.error({ err: message }, "reconcile cycle failed");
      m?.cycle("failed", (this.o.clock.now() - t0) / 1000);
      return { leader: true, healthRestarts: [], capped: [], error: message };
    }
  }

  /**
   * A new hold on the lock: move the fence to a new epoch before acting. False when that fails (NATS trouble, or
   * an even newer leader exists): this cycle then acts as a follower.
   */
  private async fenceForEpoch(): Promise<boolean> {
    const hold = this.o.lock?.hold;
    const fence = this.o.fence;
    if (fence === undefined || hold === undefined || this.ledHold === hold.revision) return true;
    try {
      const epoch = await fence.lead(hold);
      this.ledHold = hold.revision;
      this.o.log?.info({ epoch, lockRevision: hold.revision }, "leading under a new fencing epoch");
      return true;
    } catch (err) {
      this.o.log?.warn({ lockRevision: hold.revision, err: err instanceof Error ? err.message : String(err) }, "cannot move the fence for this hold of the leader lock; not acting");
      return false;
    }
  }

  /** Which lanes need a health restart now, and why. */
  private unhealthy(views: readonly LaneView[], targeted: ReadonlySet<string>): { view: LaneView; why: "offline" | "crash-loop" }[] {
    const now = this.o.clock.now();
    const grace = this.o.health.offlineGraceMs;
    const out: { view: LaneView; why: "offline" | "crash-loop" }[] = [];
    const seen = new Set<string>();
    for (const v of views) {
      const r = v.record;
      const h = v.hostLane;
      const g = v.registration;
      // A smoke lane is its smoke run's to restart (or, once its lease expired, the planner's to remove).
      if (r?.state !== "active" || r.smoke !== undefined || h === undefined || v.class !== "managed" || !v.hostKnown || h.held || h.draining || targeted.has(v.laneId)) continue;
      if (h.health === Health.HEALTH_CRASH_LOOP || (h.state === LaneState.LANE_STATE_NEEDS_ATTENTION && h.attentionReason === "CRASH_LOOP")) {
        out.push({ view: v, why: "crash-loop" });
        continue;
      }
      // An ephemeral lane between jobs has no registration online by design.
      const offline = g !== undefined && g.status !== "online" && h.state === LaneState.LANE_STATE_RUNNING && h.mode !== LaneMode.LANE_MODE_EPHEMERAL && !h.jobRunning;
      if (!offline) continue;
      seen.add(v.laneId);
      const since = this.offlineSince.get(v.laneId) ?? now;
      this.offlineSince.set(v.laneId, since);
      if (now - since >= grace) out.push({ view: v, why: "offline" });
    }
    for (const id of [...this.offlineSince.keys()]) if (!seen.has(id)) this.offlineSince.delete(id);
    return out;
  }

  private async healthRestarts(
    views: readonly LaneView[],
    targeted: ReadonlySet<string>,
    engine: ApplyEngine,
    onEvent: (e: ApplyEvent) => void,
  ): Promise<{ restarts: (ActionOutcome & { why: "offline" | "crash-loop" })[]; capped: string[] }> {
    const now = this.o.clock.now();
    const max = this.o.health.maxRestarts;
    const windowMs = this.o.health.windowMs;
    const restarts: (ActionOutcome & { why: "offline" | "crash-loop" })[] = [];
    const capped: string[] = [];
    for (const { view, why } of this.unhealthy(views, targeted)) {
      if (restarts.length >= MAX_HEALTH_RESTARTS_PER_CYCLE) break;
      const record = view.record;
      if (record === undefined) continue; // unhealthy() only returns lanes with an active record
      const recent = (record.healthRestartsAtMs ?? []).filter((t) => now - t < windowMs);
      if (recent.length >= max) {
        await this.capLane(view, why, recent.length, windowMs);
        capped.push(view.laneId);
        continue;
      }
      // The restart is counted on the record before it is sent (compare-and-set), so neither a crash nor a new
      // leader can make the cap forget it. A conflict means someone else changed the lane: next cycle decides.
      let counted: StoredLaneRecord;
      try {
        counted = await this.o.ctx.store.update({ ...recordWithout(record), healthRestartsAtMs: [...recent, now], updatedAtMs: now }, record.revision);
      } catch (err) {
        this.o.log?.warn({ laneId: view.laneId, err: err instanceof Error ? err.message : String(err) }, "health restart not counted; left to the next cycle");
        continue;
      }
      const action = { ...operatorAction("restart", { ...view, record: counted }, this.o.ctx.policy, { force: false }), id: `health-restart:${view.laneId}` };
      const planId = `health-${why}-${view.laneId}-${now}`;
      const report = await engine.run({ planId, actions: [action] }, { onEvent });
      for (const outcome of report.outcomes) {
        this.o.metrics?.restart(why, outcome.status);
        restarts.push({ ...outcome, why });
      }
      this.offlineSince.delete(view.laneId);
    }
    return { restarts, capped };
  }

  /** The lane hit the restart cap: leave it to an operator, with a recovery note on the record and in the audit. */
  private async capLane(view: LaneView, why: string, count: number, windowMs: number): Promise<void> {
    const r = view.record;
    if (r === undefined || r.state === "needs-attention") return;
    const note =
      `lane ${view.laneId} on ${view.hostId} was restarted ${count} times in ${Math.round(windowMs / 60_000)} min for ${why} and is still unhealthy; ` +
      `nothing more is done automatically. Look at \`lanekeeper-agent status\` on ${view.hostId}, then \`lanekeeper lanes restart ${view.laneId}\`, ` +
      `or \`lanekeeper lanes remove ${view.laneId}\` (\`lanekeeper apply\` creates a replacement).`;
    try {
      await this.o.ctx.store.update(
        { ...recordWithout(r), state: "needs-attention", attention: { code: "HEALTH_RESTART_CAP", message: note }, updatedAtMs: this.o.clock.now() },
        r.revision,
      );
    } catch (err) {
      this.o.log?.warn({ laneId: view.laneId, err: err instanceof Error ? err.message : String(err) }, "could not mark the lane needs-attention");
      return;
    }
    await this.o.ctx.audit.append({
      action: "health-restart",
      phase: "failed",
      laneId: view.laneId,
      hostId: view.hostId,
      reasonCode: "HEALTH_RESTART_CAP",
      message: note.slice(0, 500),
      details: { why, restarts: count, windowMs, recovery: note },
    });
  }
}
