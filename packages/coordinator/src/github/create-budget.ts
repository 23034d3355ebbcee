/**
 * The create budget: GitHub's secondary rate limits allow, in general, no more than 80 content-generating requests
 * a minute and 500 an hour (docs/coordinator.md, "Create budget"). Minting a JIT config (`generate-jitconfig`) or
 * a registration token is one. Every coordinator sharing one GitHub credential draws from one budget, kept as the
 * times of the mints of the last hour (a sliding window); the arithmetic here is pure, the shared store is
 * `lane-store-kv/kv-create-budget.ts`.
 */
import { systemClock, type Clock } from "@lanekeeper/shared";

/** One minute and one hour, the two windows. */
export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;

/** Mints allowed per window (policy `github.createBudget`). */
export interface CreateBudgetLimits {
  readonly perMinute: number;
  readonly perHour: number;
}

/** The budget as seen now: limits, mints in each window, and when the next mint fits. */
export interface CreateBudgetUsage extends CreateBudgetLimits {
  /** Mints in the last minute. */
  readonly thisMinute: number;
  /** Mints in the last hour. */
  readonly thisHour: number;
  /** Mints that fit now (both windows). */
  readonly allowance: number;
  /** When the next mint fits (ms since the epoch): now when {@link allowance} > 0. */
  readonly nextFreeAtMs: number;
}

/** The mint times (ms) still inside the hour window, oldest first. */
export function liveMints(mints: readonly number[], nowMs: number): number[] {
  return mints.filter((t) => t > nowMs - HOUR_MS && t <= nowMs).sort((a, b) => a - b);
}

/** The usage of `limits` by `mints` at `nowMs`. Pure. */
export function budgetUsage(mints: readonly number[], limits: CreateBudgetLimits, nowMs: number): CreateBudgetUsage {
  const hour = liveMints(mints, nowMs);
  const minute = hour.filter((t) => t > nowMs - MINUTE_MS);
  const allowance = Math.max(0, Math.min(limits.perMinute - minute.length, limits.perHour - hour.length));
  let next = nowMs;
  if (allowance === 0) {
    // The window frees a slot when enough of its oldest mints age out of it.
    const freeAt = (inWindow: readonly number[], limit: number, windowMs: number): number => {
      const over = inWindow.length - limit;
      if (over < 0) return nowMs;
      const t = inWindow[over];
      return t === undefined ? nowMs : t + windowMs;
    };
    next = Math.max(freeAt(minute, limits.perMinute, MINUTE_MS), freeAt(hour, limits.perHour, HOUR_MS));
  }
  return { ...limits, thisMinute: minute.length, thisHour: hour.length, allowance, nextFreeAtMs: next };
}

/** Take one mint at `nowMs` if it fits: the new mint list (pruned to the hour) when granted. Pure. */
export function takeMint(mints: readonly number[], limits: CreateBudgetLimits, nowMs: number): { granted: boolean; mints: number[]; usage: CreateBudgetUsage } {
  const live = liveMints(mints, nowMs);
  const before = budgetUsage(live, limits, nowMs);
  if (before.allowance <= 0) return { granted: false, mints: live, usage: before };
  const after = [...live, nowMs];
  return { granted: true, mints: after, usage: budgetUsage(after, limits, nowMs) };
}

/** What {@link CreateBudget.take} answers. */
export interface CreateBudgetGrant {
  readonly granted: boolean;
  readonly usage: CreateBudgetUsage;
}

/** The budget every coordinator sharing a GitHub credential draws from. */
export interface CreateBudget {
  /** Take one mint now, or refuse (nothing is sent to GitHub then). */
  take(): Promise<CreateBudgetGrant>;
  /** The usage now, without taking anything. */
  usage(): Promise<CreateBudgetUsage>;
}

/** A {@link CreateBudget} in this process's memory (unit tests; one process). */
export class MemoryCreateBudget implements CreateBudget {
  private mints: number[] = [];

  constructor(
    private readonly limits: () => CreateBudgetLimits,
    private readonly clock: Clock = systemClock,
  ) {}

  take(): Promise<CreateBudgetGrant> {
    const r = takeMint(this.mints, this.limits(), this.clock.now());
    this.mints = r.mints;
    return Promise.resolve({ granted: r.granted, usage: r.usage });
  }

  usage(): Promise<CreateBudgetUsage> {
    return Promise.resolve(budgetUsage(this.mints, this.limits(), this.clock.now()));
  }
}
