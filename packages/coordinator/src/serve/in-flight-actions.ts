import type { Action } from "../plan/action.js";

/**
 * Kinds that take a lane out of service: how many of them run at once is bounded by the plan's removal limit
 * (`maxRemovals`), so a `serve` that plans every second still removes no more lanes at once than one plan may.
 */
const REMOVAL_KINDS: ReadonlySet<string> = new Set(["remove", "drain"]);

/** Kinds that add capacity: started first when slots are scarce, since a queued job waits for them. */
const CAPACITY_KINDS: ReadonlySet<string> = new Set(["create", "arm", "undrain"]);

/** What may run at once. */
export interface InFlightLimits {
  /** Actions running at once (the policy's `coordinator.applyConcurrency`). */
  readonly concurrency: number;
  /** Removals and drains running at once. */
  readonly maxRemovals: number;
}

/** What is running now, as {@link selectUnits} needs it. */
export interface InFlightState {
  /** Lanes an action runs on. */
  readonly lanes: ReadonlySet<string>;
  /** Actions running. */
  readonly running: number;
  /** Removals and drains among them. */
  readonly removals: number;
}

/** Why a unit was not started. */
export type DeferReason = "lane-in-flight" | "no-slot" | "removal-limit";

/** What {@link selectUnits} decided. */
export interface UnitSelection {
  /** Units to start now, in the order to start them. */
  readonly start: readonly (readonly Action[])[];
  /** Units left for a later plan (which plans them again if they are still wanted). */
  readonly deferred: readonly { readonly unit: readonly Action[]; readonly why: DeferReason }[];
}

/**
 * A plan's actions split into the sets that must run together in one engine run: an action with the actions it
 * depends on, and every action on one lane (the engine keeps one lane's actions in plan order). Units keep plan
 * order, by their first action.
 */
export function actionUnits(actions: readonly Action[]): Action[][] {
  const parent = actions.map((_, i) => i);
  const find = (i: number): number => {
    let r = i;
    while (parent[r] !== r) r = parent[r] as number;
    parent[i] = r;
    return r;
  };
  const join = (a: number, b: number): void => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
  };
  const byId = new Map(actions.map((a, i) => [a.id, i]));
  const byLane = new Map<string, number>();
  actions.forEach((a, i) => {
    const first = byLane.get(a.laneId);
    if (first === undefined) byLane.set(a.laneId, i);
    else join(first, i);
    for (const d of a.dependsOn) {
      const j = byId.get(d);
      if (j !== undefined) join(i, j);
    }
  });
  const units = new Map<number, Action[]>();
  actions.forEach((a, i) => {
    const r = find(i);
    const u = units.get(r);
    if (u === undefined) units.set(r, [a]);
    else u.push(a);
  });
  return [...units.values()];
}

const removalsIn = (unit: readonly Action[]): number => unit.filter((a) => REMOVAL_KINDS.has(a.kind)).length;

/**
 * Which units start now, pure: never a unit touching a lane an action already runs on (no second action on a
 * lane), never more than `concurrency` actions running (a unit larger than that only when nothing runs), never
 * more than `maxRemovals` removals and drains running. Units that add capacity go first; otherwise plan order.
 */
export function selectUnits(units: readonly (readonly Action[])[], state: InFlightState, limits: InFlightLimits): UnitSelection {
  const ordered = [...units.filter((u) => u.some((a) => CAPACITY_KINDS.has(a.kind))), ...units.filter((u) => !u.some((a) => CAPACITY_KINDS.has(a.kind)))];
  const start: (readonly Action[])[] = [];
  const deferred: { unit: readonly Action[]; why: DeferReason }[] = [];
  let running = state.running;
  let removals = state.removals;
  for (const unit of ordered) {
    if (unit.some((a) => state.lanes.has(a.laneId))) {
      deferred.push({ unit, why: "lane-in-flight" });
      continue;
    }
    if (running > 0 && running + unit.length > Math.max(1, limits.concurrency)) {
      deferred.push({ unit, why: "no-slot" });
      continue;
    }
    const r = removalsIn(unit);
    if (r > 0 && removals > 0 && removals + r > Math.max(1, limits.maxRemovals)) {
      deferred.push({ unit, why: "removal-limit" });
      continue;
    }
    start.push(unit);
    running += unit.length;
    removals += r;
  }
  return { start, deferred };
}

/**
 * The actions a `serve` process runs in the background, by lane: a lane with an action in flight gets no second
 * one until it ends, and the counts bound what {@link selectUnits} admits. Runs nothing itself: {@link track}
 * registers a started unit until its run settles.
 */
export class InFlightActions {
  private readonly lanes = new Map<string, string>();
  private running = 0;
  private removals = 0;
  private readonly runs = new Set<Promise<unknown>>();
  private waiters: (() => void)[] = [];

  /** What runs now. */
  state(): InFlightState {
    return { lanes: new Set(this.lanes.keys()), running: this.running, removals: this.removals };
  }

  /** The kind of the action in flight on `laneId`, if any. */
  kindOn(laneId: string): string | undefined {
    return this.lanes.get(laneId);
  }

  /** Count `unit` as running until `run` settles; returns `run`. */
  track<T>(unit: readonly Action[], run: Promise<T>): Promise<T> {
    for (const a of unit) this.lanes.set(a.laneId, a.kind);
    const r = removalsIn(unit);
    this.running += unit.length;
    this.removals += r;
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    const end = settled.then(() => {
      for (const a of unit) this.lanes.delete(a.laneId);
      this.running -= unit.length;
      this.removals -= r;
      this.runs.delete(end);
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    });
    this.runs.add(end);
    return run;
  }

  /** Resolves when some tracked run ends (at once when none runs). */
  nextEnd(): Promise<void> {
    if (this.runs.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Resolves when every tracked run has ended, including runs started meanwhile. */
  async idle(): Promise<void> {
    while (this.runs.size > 0) await Promise.all([...this.runs]);
  }
}
