import { Health, LaneMode, LaneState, systemClock, type Clock, type CoordinatorPolicy, type Logger, type Policy } from "@lanekeeper/shared";
import { DEFAULT_MAX_REMOVALS_PER_PLAN } from "../limits.js";
import type { Action } from "../plan/action.js";
import { actionUnits, InFlightActions, selectUnits, type InFlightLimits } from "./in-flight-actions.js";
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
  /**
   * The policy to plan with, read once at the start of each cycle (`serve`'s policy reload); a reload during a
   * cycle applies from the next one. @default the policy of `ctx`
   */
  readonly policy?: () => Policy;
  /** Without a lock this process always acts (a single coordinator). */
  readonly lock?: LeaderLock;
  /**
   * With a lock: the fence this process raises to its leader epoch before it acts as leader, so every write and
   * intent of a coordinator it superseded is refused from then on.
   */
  readonly fence?: Pick<LaneFence, "lead">;
  readonly metrics?: CoordinatorMetrics;
  /**
   * Actions running at once, across cycles (a cycle does not wait for its actions).
   * @default policy `coordinator.applyConcurrency`, read at each cycle
   */
  readonly concurrency?: number;
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
  /** Whether this process may act now (`context/nats-link.ts`: not with NATS down or a view from before it). */
  readonly ready?: () => Promise<boolean>;
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
  /** The outcomes of the plan's actions this cycle started (all of them once it waited for them, see {@link Reconciler.cycle}). */
  readonly report?: ApplyReport;
  /** Health-driven restarts of this cycle. */
  readonly healthRestarts: readonly (ActionOutcome & { readonly why: "offline" | "crash-loop" })[];
  /** Lanes left to an operator this cycle because they hit the restart cap. */
  readonly capped: readonly string[];
  /** Planned actions not started, because an action on their lane was still running: later plans decide again. */
  readonly deferred?: number;
  readonly error?: string;
}

type HealthOutcome = ActionOutcome & { readonly why: "offline" | "crash-loop" };

/** A unit of a plan started in the background: its lanes stay in flight until `done` settles. */
interface Started {
  /** The unit wrote the record its first step writes (so the next observation counts the lane), or ended. */
  readonly claimed: Promise<void>;
  readonly done: Promise<{ readonly outcomes: readonly ActionOutcome[]; readonly error?: string }>;
}

/** What a cycle started, before any of it ended. */
interface CycleStart {
  readonly leader: boolean;
  readonly planId?: string;
  readonly units: readonly Started[];
  readonly health: readonly Promise<HealthOutcome[]>[];
  readonly capped: readonly string[];
  readonly deferred: number;
  readonly error?: string;
}

/**
 * The `serve` loop: every interval (or at once when {@link poke}d), if this process holds the leader lock,
 * observe → plan → start the plan's actions through the same engine, guards, drain protocol and audit as
 * `lanekeeper apply`, then health-driven restarts the planner does not do: a registration offline on GitHub for a
 * while although its host reports the runner running (a runner that lost its connection), and a lane the agent
 * reports in a crash loop (the agent stopped restarting it). Each lane gets at most `maxRestarts` health restarts
 * per window, then its record goes to `needs-attention` with a recovery note. Followers only keep collecting
 * inventories.
 *
 * Cycles do not wait for their actions: each action runs in the background and holds its lane in flight until it
 * ends, so a slow drain or a create waiting for GitHub never holds back the next plan. The next cycle plans from
 * a fresh observation (a create's or removal's record is written before the cycle that started it ends, so the
 * lane counts as starting, or no longer counts, and nothing is created twice), never starts a second action on a
 * lane with one in flight, and starts no more than `applyConcurrency` actions at once (`maxRemovals` removals and
 * drains at once). While planned actions wait for a slot or a lane, an action that ends pokes the loop, so they
 * start at once.
 */
export class Reconciler {
  private readonly o: ResolvedReconcilerOptions;
  private readonly offlineSince = new Map<string, number>();
  private readonly flight = new InFlightActions();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = true;
  /** The hold of the leader lock the fence was last moved for. */
  private ledHold: number | undefined;
  /** A cycle of the loop is planning. */
  private inFlight = false;
  /** A poke arrived during the running cycle. */
  private pending = false;
  private lastEndMs = Number.NEGATIVE_INFINITY;
  /** When the scheduled cycle starts, while one is scheduled. */
  private dueAtMs: number | undefined;
  /**
   * The last cycle left planned actions unstarted (no slot, or their lane busy): an action that ends then pokes the
   * loop so they start at once. Otherwise an ending action changes nothing a plan would count (a create was counted
   * as starting, a removal as gone), and a cycle would only spend GitHub budget on observing.
   */
  private waiting = false;
  /** Serializes the planning of cycles: the loop and a direct caller never plan at once. */
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
   * re-arm), an ephemeral runner that exited, an action that ended. Pokes coalesce: during a cycle they ask for one
   * more right after it (at least `pokeGapMs` after its end), and never two cycles plan at once. Ignored unless
   * {@link start}ed.
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

  /** Stop cycling, then wait for every action in flight (a drain in progress is finished, never cut short). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.dueAtMs = undefined;
    await this.running?.catch(() => undefined);
    await this.flight.idle();
  }

  /** Lanes with an action in flight now (started by this process), for status and tests. */
  lanesInFlight(): ReadonlySet<string> {
    return this.flight.state().lanes;
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
    this.running = this.backgroundCycle();
    void this.running
      .catch(() => undefined)
      .finally(() => {
        this.inFlight = false;
        this.lastEndMs = this.o.clock.now();
        if (!this.stopped) this.schedule(this.pending ? this.o.pokeGapMs : this.o.intervalMs);
      });
  }

  /**
   * One cycle of the loop: observe, plan and start what fits, without waiting for the actions to end (they poke
   * the loop when they do). Resolves once the started actions hold their lanes (their first record written).
   */
  protected backgroundCycle(): Promise<unknown> {
    const run = this.serial.then(() => this.startCycle(false));
    this.serial = run.catch(() => undefined);
    return run;
  }

  /**
   * One cycle (after any cycle already planning) that waits for what it starts: every planned action whose lane
   * has none in flight runs (those beyond the concurrency wait for a slot), and the report has their outcomes.
   * `serve --once` and tests use it. Never throws: an error is logged, counted and reported.
   */
  async cycle(): Promise<CycleReport> {
    const run = this.serial.then(() => this.startCycle(true));
    this.serial = run.catch(() => undefined);
    const s = await run;
    const ends = await Promise.all(s.units.map((u) => u.done));
    const healthRestarts = (await Promise.all(s.health)).flat();
    const outcomes = ends.flatMap((e) => e.outcomes);
    const error = s.error ?? ends.find((e) => e.error !== undefined)?.error;
    return {
      leader: s.leader,
      ...(s.planId === undefined ? {} : { report: { planId: s.planId, dryRun: false, outcomes, ok: outcomes.every((x) => x.status === "succeeded") } }),
      healthRestarts,
      capped: s.capped,
      ...(s.deferred === 0 ? {} : { deferred: s.deferred }),
      ...(error === undefined ? {} : { error }),
    };
  }

  /** What may run at once: the policy's `applyConcurrency` actions, of which at most `maxRemovals` removals. */
  private limits(): InFlightLimits {
    return { concurrency: this.o.concurrency ?? (this.o.policy?.() ?? this.o.ctx.policy).coordinator.applyConcurrency, maxRemovals: this.o.planOptions?.maxRemovals ?? DEFAULT_MAX_REMOVALS_PER_PLAN };
  }

  /**
   * Observe, plan and start. With `wait`, every unit of the plan starts (waiting for a slot when needed) unless
   * its lane has an action in flight; without, only what fits now. Resolves once every started unit has claimed
   * its lanes.
   */
  private async startCycle(wait: boolean): Promise<CycleStart> {
    const t0 = this.o.clock.now();
    const m = this.o.metrics;
    const none = { units: [], health: [], capped: [], deferred: 0 };
    const leader = (this.o.lock === undefined ? true : (await this.o.lock.ensure()) && (await this.fenceForEpoch())) && (await (this.o.ready?.() ?? true));
    m?.setLeader(leader);
    if (!leader) {
      m?.cycle("follower", 0);
      return { leader: false, ...none };
    }
    try {
      // One policy for the whole cycle: observe, plan, apply and health restarts agree on it.
      const policy = this.o.policy?.() ?? this.o.ctx.policy;
      const ctx = { ...this.o.ctx, policy, engine: (over: Parameters<CoordinatorContext["engine"]>[0] = {}) => this.o.ctx.engine({ policy, ...over }) };
      const observedFrom = this.o.clock.now();
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
      // Observe plus plan is the part of a cycle that grows with the fleet even when nothing changes.
      const observePlanMs = this.o.clock.now() - observedFrom;
      m?.lanesObserved(p.classification.lanes);
      m?.poolsPlanned(p.groups);
      const onEvent = (e: ApplyEvent): void => {
        m?.onEvent(e);
        this.o.onEvent?.(e);
      };
      const engine = ctx.engine();
      const units: Started[] = [];
      let deferred = 0;
      let pending: readonly (readonly Action[])[] = actionUnits(p.actions);
      for (;;) {
        const pick = selectUnits(pending, this.flight.state(), this.limits());
        for (const unit of pick.start) units.push(this.launch(unit, p.planId, engine, onEvent));
        // Waiting for a slot makes sense; waiting for a lane's action to end does not (the plan may be stale by then).
        const waiting = wait ? pick.deferred.filter((d) => d.why !== "lane-in-flight") : [];
        deferred += pick.deferred.length - waiting.length;
        if (waiting.length === 0) break;
        pending = waiting.map((d) => d.unit);
        await this.flight.nextEnd();
      }
      this.waiting = deferred > 0;
      if (deferred > 0) this.o.log?.debug({ deferred, inFlight: this.flight.state().running }, "reconcile: actions left for a later cycle");
      // A lane the plan acts on, or with an action in flight, is not restarted for its health on top.
      const targeted = new Set([...p.actions.map((a) => a.laneId), ...this.flight.state().lanes]);
      const { health, capped } = await this.healthRestarts(p.classification.lanes, targeted, engine, onEvent, wait, policy);
      await Promise.all(units.map((u) => u.claimed));
      m?.cycle("ok", (this.o.clock.now() - t0) / 1000);
      this.o.log?.info({ observePlanMs, cycleMs: this.o.clock.now() - t0, actions: p.actions.length, started: units.length, deferred }, "reconcile cycle");
      return { leader: true, planId: p.planId, units, health, capped, deferred };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.o.log?.error({ err: message }, "reconcile cycle failed");
      m?.cycle("failed", (this.o.clock.now() - t0) / 1000);
      return { leader: true, ...none, error: message };
    }
  }

  /**
   * Start one unit of a plan in the background, its lanes in flight until it ends. It has claimed its lanes once
   * every action that writes the lane record first (create: `creating`; remove and drain: their new state) has done
   * so, or ended: from then on an observation counts the lane as the action left it, so the next plan neither
   * creates it twice nor removes it twice. Its end pokes the loop while planned actions wait (see {@link waiting}).
   */
  private launch(unit: readonly Action[], planId: string, engine: ApplyEngine, onEvent: (e: ApplyEvent) => void): Started {
    const unclaimed = new Set(unit.filter((a) => a.dependsOn.length === 0 && a.steps[0] === "write-record").map((a) => a.id));
    const steps = new Map<string, number>();
    let claim = (): void => undefined;
    const claimed = new Promise<void>((resolve) => {
      claim = resolve;
    });
    const settle = (): void => {
      if (unclaimed.size === 0) claim();
    };
    const events = (e: ApplyEvent): void => {
      if (e.type === "step") {
        const n = (steps.get(e.actionId) ?? 0) + 1;
        steps.set(e.actionId, n);
        // The second step begins only after the first (the record write) is done.
        if (n >= 2) unclaimed.delete(e.actionId);
      } else if (e.type === "action-end") {
        unclaimed.delete(e.outcome.actionId);
      }
      settle();
      onEvent(e);
    };
    settle();
    const run = this.flight.track(unit, engine.run({ planId, actions: unit }, { onEvent: events }));
    const done = run.then(
      (report) => {
        this.o.metrics?.report(report);
        const failed = report.outcomes.filter((x) => x.status !== "succeeded");
        if (failed.length > 0) this.o.log?.warn({ failed: failed.map((x) => `${x.kind}:${x.laneId}:${x.code ?? ""}`) }, "reconcile: some actions did not succeed");
        return { outcomes: report.outcomes };
      },
      (err: unknown) => {
        // A store or audit failure: the engine's own endings did what they could; the next plan observes afresh.
        const error = err instanceof Error ? err.message : String(err);
        this.o.log?.error({ err: error, actions: unit.map((a) => a.id) }, "reconcile: an action run failed");
        return { outcomes: [], error };
      },
    );
    void done.finally(() => {
      claim();
      if (this.waiting) this.poke(`${unit.map((a) => `${a.kind} ${a.laneId}`).join(", ")} ended; planned actions wait for it`);
    });
    return { claimed, done };
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

  /**
   * Start the health restarts due now, each like a unit of the plan (in flight until it ends, within the
   * concurrency; with `wait`, waiting for a slot, else only while one is free).
   */
  private async healthRestarts(
    views: readonly LaneView[],
    targeted: ReadonlySet<string>,
    engine: ApplyEngine,
    onEvent: (e: ApplyEvent) => void,
    wait: boolean,
    policy: Policy,
  ): Promise<{ health: Promise<HealthOutcome[]>[]; capped: string[] }> {
    const now = this.o.clock.now();
    const max = this.o.health.maxRestarts;
    const windowMs = this.o.health.windowMs;
    const health: Promise<HealthOutcome[]>[] = [];
    const capped: string[] = [];
    for (const { view, why } of this.unhealthy(views, targeted)) {
      if (health.length >= MAX_HEALTH_RESTARTS_PER_CYCLE) break;
      const record = view.record;
      if (record === undefined) continue; // unhealthy() only returns lanes with an active record
      const recent = (record.healthRestartsAtMs ?? []).filter((t) => now - t < windowMs);
      if (recent.length >= max) {
        await this.capLane(view, why, recent.length, windowMs);
        capped.push(view.laneId);
        continue;
      }
      const probe = { ...operatorAction("restart", view, policy, { force: false }), id: `health-restart:${view.laneId}` };
      let room = selectUnits([[probe]], this.flight.state(), this.limits()).start.length > 0;
      while (!room && wait) {
        await this.flight.nextEnd();
        room = selectUnits([[probe]], this.flight.state(), this.limits()).start.length > 0;
      }
      if (!room) break; // every slot is taken: a later cycle restarts it
      // The restart is counted on the record before it is sent (compare-and-set), so neither a crash nor a new
      // leader can make the cap forget it. A conflict means someone else changed the lane: next cycle decides.
      let counted: StoredLaneRecord;
      try {
        counted = await this.o.ctx.store.update({ ...recordWithout(record), healthRestartsAtMs: [...recent, now], updatedAtMs: now }, record.revision);
      } catch (err) {
        this.o.log?.warn({ laneId: view.laneId, err: err instanceof Error ? err.message : String(err) }, "health restart not counted; left to the next cycle");
        continue;
      }
      const action = { ...operatorAction("restart", { ...view, record: counted }, policy, { force: false }), id: `health-restart:${view.laneId}` };
      const planId = `health-${why}-${view.laneId}-${now}`;
      const started = this.launch([action], planId, engine, onEvent);
      health.push(
        started.done.then(({ outcomes }) =>
          outcomes.map((outcome) => {
            this.o.metrics?.restart(why, outcome.status);
            return { ...outcome, why };
          }),
        ),
      );
      this.offlineSince.delete(view.laneId);
    }
    return { health, capped };
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
