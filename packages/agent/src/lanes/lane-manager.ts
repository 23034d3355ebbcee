/**
 * The lane API of one host: the local API the intent intake calls after it verified an intent, and what tests
 * drive directly. A thin facade over the parts that share one {@link LaneCore} (options, per-lane mutex, state,
 * journal, audit):
 * - `lane-operations.ts`: create, start, stop, restart, remove, drain/undrain, hold/release, arm;
 * - `lane-observation.ts`: inspect and list;
 * - `lane-supervisor.ts`: one pass of the health loop (backoff, crash-loop breaker);
 * - `lane-recovery.ts`: journal replay after a crash;
 * - `lane-upgrade.ts`: swapping a drained lane's runner version.
 */
import type { LaneObservation } from "@lanekeeper/shared";
import { LaneCore, type LaneManagerOptions } from "./lane-core.js";
import type { BackendName } from "./lane-marker.js";
import { LaneObserver } from "./lane-observation.js";
import {
  LaneOperations,
  type ArmLaneRequest,
  type CreateLaneRequest,
  type HoldLaneRequest,
  type LaneRequest,
  type RemoveLaneRequest,
  type RemoveLaneResult,
  type StopLaneRequest,
} from "./lane-operations.js";
import { LaneRecovery, type RecoveryAction } from "./lane-recovery.js";
import type { LaneRuntime } from "../runtimes/lane-runtime.js";
import { LaneSupervisor } from "./lane-supervisor.js";
import { LaneUpgrader, type UpgradeLaneRequest } from "./lane-upgrade.js";

export type { LaneManagerOptions, OperationContext } from "./lane-core.js";
export type {
  ArmLaneRequest,
  CreateLaneRequest,
  HoldLaneRequest,
  LaneRequest,
  RemoveLaneRequest,
  RemoveLaneResult,
  StopLaneRequest,
} from "./lane-operations.js";
export type { RecoveryAction } from "./lane-recovery.js";
export type { UpgradeLaneRequest } from "./lane-upgrade.js";

/** The lane operations, observation, health supervision and crash recovery of this host. */
export class LaneManager {
  private readonly core: LaneCore;
  private readonly ops: LaneOperations;
  private readonly observer: LaneObserver;
  private readonly supervisor: LaneSupervisor;
  private readonly recovery: LaneRecovery;
  private readonly upgrader: LaneUpgrader;

  constructor(opts: LaneManagerOptions) {
    this.core = new LaneCore(opts);
    this.observer = new LaneObserver(this.core);
    this.ops = new LaneOperations(this.core, this.observer);
    this.supervisor = new LaneSupervisor(this.core);
    this.recovery = new LaneRecovery(this.core);
    this.upgrader = new LaneUpgrader(this.core, this.observer, this.recovery);
  }

  /** The host this manager serves. */
  get hostId(): string {
    return this.core.opts.hostId;
  }

  /** The configured runtimes. */
  get runtimes(): Readonly<Partial<Record<BackendName, LaneRuntime>>> {
    return this.core.opts.runtimes;
  }

  /** Create a lane: directory and signed `lane.json`, unit or container, registration, start. */
  create(req: CreateLaneRequest): Promise<LaneObservation> {
    return this.ops.create(req);
  }

  /** Start a stopped lane and keep it running (clears a needs-attention state). */
  start(req: LaneRequest): Promise<LaneObservation> {
    return this.ops.start(req);
  }

  /** Stop a lane and keep it stopped. Refused with `JOB_RUNNING` while a job runs, unless forced. */
  stop(req: StopLaneRequest): Promise<LaneObservation> {
    return this.ops.stop(req);
  }

  /** Restart a lane (clears restart history and a needs-attention state). Refused while a job runs unless forced. */
  restart(req: StopLaneRequest): Promise<LaneObservation> {
    return this.ops.restart(req);
  }

  /** Mark a lane draining (reported in inventory; an ephemeral lane is not re-armed). */
  drain(req: LaneRequest): Promise<LaneObservation> {
    return this.ops.drain(req);
  }

  /** Clear the draining mark. */
  undrain(req: LaneRequest): Promise<LaneObservation> {
    return this.ops.undrain(req);
  }

  /** Put a hold on a lane (same file the local `lanekeeper-agent hold` writes). */
  hold(req: HoldLaneRequest): Promise<LaneObservation> {
    return this.ops.hold(req);
  }

  /** Release a hold. */
  release(req: LaneRequest): Promise<LaneObservation> {
    return this.ops.release(req);
  }

  /** Give an idle ephemeral lane a fresh JIT config and start it. */
  arm(req: ArmLaneRequest): Promise<LaneObservation> {
    return this.ops.arm(req);
  }

  /** Remove a lane: stop (refused while a job runs unless forced), deregister, delete unit or container and directory. */
  remove(req: RemoveLaneRequest): Promise<RemoveLaneResult> {
    return this.ops.remove(req);
  }

  /**
   * Swap a drained or stopped, idle systemd lane's runner for another version, keeping its registration; refused
   * with `LANE_BUSY` otherwise. Unused versions are pruned afterwards.
   */
  upgrade(req: UpgradeLaneRequest): Promise<LaneObservation> {
    return this.upgrader.upgrade(req);
  }

  /** Delete runner versions no lane uses (the agent does this at start; removes and upgrades do it too). */
  pruneRunners(): Promise<void> {
    return this.core.pruneRunners();
  }

  /** What the agent knows about one lane, with local job evidence. */
  inspect(laneId: string): Promise<LaneObservation> {
    return this.observer.inspect(laneId);
  }

  /** Every managed lane (verified `lane.json`), optionally with job evidence (a `/proc` scan per lane). */
  list(opts: { evidence?: boolean } = {}): Promise<LaneObservation[]> {
    return this.observer.list(opts);
  }

  /** One pass of the health loop over every lane (see {@link LaneSupervisor}). */
  superviseOnce(): Promise<void> {
    return this.supervisor.superviseOnce();
  }

  /** Finish or roll back every operation a crash interrupted (see {@link LaneRecovery}). */
  recover(): Promise<RecoveryAction[]> {
    return this.recovery.recover();
  }
}
