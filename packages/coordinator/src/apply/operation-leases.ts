import { LanekeeperError, systemClock, type Clock } from "@lanekeeper/shared";
import type { CoordinatorErrorCode } from "../error-codes.js";

/** What a lease says about the action holding it (shown to other coordinators, never a secret). */
export interface OperationLeaseInfo {
  readonly laneId: string;
  readonly kind: string;
}

/**
 * Which actions are running right now, across every coordinator process (CLI runs and `serve` alike). An action
 * holds a lease on its operation id from before its first step until it ends; the lease lives only while its
 * process renews it, so a process killed with -9 (or cut off from NATS) loses its leases within one TTL. A lane
 * record in flight (`creating`, `removing`) whose `operationId` has no live lease was interrupted: any coordinator
 * may resume or roll it back at once (`plan/interrupted-actions.ts`). A lease that is live is never second-guessed.
 */
export interface OperationLeases {
  /** Take the lease of `operationId` (renewed until {@link release}). */
  hold(operationId: string, info: OperationLeaseInfo): Promise<void>;
  /** Give it up: the action ended (whatever its outcome). */
  release(operationId: string): Promise<void>;
  /**
   * Throws {@link OperationLeaseLostError} when this process can no longer be sure it still holds the lease (a
   * renewal failed or is overdue): another coordinator may already be resuming or rolling back the action, so the
   * action must not send anything more.
   */
  assertHeld(operationId: string): void;
  /** The operation ids among `operationIds` whose lease is live now (held by any process). */
  live(operationIds: readonly string[]): Promise<ReadonlySet<string>>;
  /** Stop renewing and release every lease this process holds. */
  close(): Promise<void>;
}

/** The action's lease was lost (renewal failed or overdue): it stops before sending anything more. */
export class OperationLeaseLostError extends LanekeeperError<CoordinatorErrorCode> {
  constructor(operationId: string, why: string) {
    super("OPERATION_LEASE_LOST", `operation ${operationId} lost its lease (${why}); another coordinator may resume it, so nothing more is sent`, {
      details: { operationId },
    });
  }
}

/**
 * {@link OperationLeases} in memory, shared by the engines of one process (tests; a plan without NATS). A lease
 * can be dropped by hand ({@link expire}) to play a process that died.
 */
export class MemoryOperationLeases implements OperationLeases {
  private readonly held = new Map<string, { info: OperationLeaseInfo; lost: boolean }>();

  constructor(private readonly clock: Clock = systemClock) {}

  hold(operationId: string, info: OperationLeaseInfo): Promise<void> {
    this.held.set(operationId, { info, lost: false });
    return Promise.resolve();
  }

  release(operationId: string): Promise<void> {
    this.held.delete(operationId);
    return Promise.resolve();
  }

  assertHeld(operationId: string): void {
    const h = this.held.get(operationId);
    if (h === undefined || h.lost) throw new OperationLeaseLostError(operationId, `expired at ${this.clock.now()}`);
  }

  live(operationIds: readonly string[]): Promise<ReadonlySet<string>> {
    return Promise.resolve(new Set(operationIds.filter((id) => this.held.get(id)?.lost === false)));
  }

  /** Play the death of the holder: the lease is gone for everyone, and the holder finds out on its next check. */
  expire(operationId: string): void {
    const h = this.held.get(operationId);
    if (h !== undefined) h.lost = true;
  }

  close(): Promise<void> {
    this.held.clear();
    return Promise.resolve();
  }
}
