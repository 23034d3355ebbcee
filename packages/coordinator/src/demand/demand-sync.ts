import { systemClock, type Clock, type Logger } from "@lanekeeper/shared";
import type { JobStore } from "./job-store.js";
import type { RestDemandReconciler, ScopePass } from "./rest-reconciler.js";

/** Options of {@link DemandSync}. */
export interface DemandSyncOptions {
  readonly rest: Pick<RestDemandReconciler, "reconcileScope">;
  readonly jobs: Pick<JobStore, "reconciledAt" | "prune">;
  /** The scopes to reconcile (read every tick: lane entries with `scaling`). */
  readonly scopes: () => readonly string[];
  /** Only the leader spends the REST budget; followers skip their ticks. @default always */
  readonly isLeader?: () => boolean;
  readonly restIntervalMs: number;
  readonly completedRetentionMs: number;
  readonly clock?: Clock;
  readonly log?: Logger;
}

/**
 * The REST reconciliation's schedule in `lanekeeper serve`: while leader, each scope whose last confirmed pass (as
 * stored, so a new leader does not repeat the old one's) is `restIntervalMs` old gets a pass, and completed jobs
 * past the retention window are pruned. One tick at a time.
 */
export class DemandSync {
  private readonly clock: Clock;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private serial: Promise<unknown> = Promise.resolve();
  private stopped = true;
  /** Per scope, when this process last tried (a failing scope waits the interval too, instead of every tick). */
  private readonly triedAtMs = new Map<string, number>();

  constructor(private readonly o: DemandSyncOptions) {
    this.clock = o.clock ?? systemClock;
  }

  /** Tick now, then every `min(restIntervalMs, 5 s)` until {@link stop}. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const every = Math.min(this.o.restIntervalMs, 5000);
    const loop = (): void => {
      if (this.stopped) return;
      this.running = this.tick().finally(() => {
        if (!this.stopped) this.timer = setTimeout(loop, every);
      });
    };
    this.timer = setTimeout(loop, 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running.catch(() => undefined);
  }

  /** One tick (after any tick already running): the due scopes' passes, then pruning. Never throws. */
  tick(): Promise<ScopePass[]> {
    const run = this.serial.then(() => this.tickNow());
    this.serial = run.catch(() => undefined);
    return run;
  }

  private async tickNow(): Promise<ScopePass[]> {
    if (this.o.isLeader !== undefined && !this.o.isLeader()) return [];
    const passes: ScopePass[] = [];
    try {
      const at = await this.o.jobs.reconciledAt();
      const now = this.clock.now();
      for (const scope of this.o.scopes()) {
        const last = Math.max(at[scope] ?? Number.NEGATIVE_INFINITY, this.triedAtMs.get(scope) ?? Number.NEGATIVE_INFINITY);
        if (now - last < this.o.restIntervalMs) continue;
        this.triedAtMs.set(scope, now);
        passes.push(await this.o.rest.reconcileScope(scope));
      }
      await this.o.jobs.prune(this.clock.now() - this.o.completedRetentionMs);
    } catch (err) {
      this.o.log?.warn({ err: err instanceof Error ? err.message : String(err) }, "demand reconciliation tick failed");
    }
    return passes;
  }
}
