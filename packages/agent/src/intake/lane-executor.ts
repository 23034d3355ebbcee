import type { LaneObservation, LaneSpec, RunnerDownload } from "@lanekeeper/shared";

/**
 * The typed action of a verified, allowed intent, with any sealed secret already opened. Secrets are Buffers
 * so the executor can wipe them after use; they must never be logged or put into a result.
 */
export type IntentAction =
  | { readonly kind: "create"; readonly laneId: string; readonly spec: LaneSpec; readonly registration: Buffer | undefined }
  | { readonly kind: "drain"; readonly laneId: string }
  | { readonly kind: "undrain"; readonly laneId: string }
  | { readonly kind: "start"; readonly laneId: string }
  | { readonly kind: "stop"; readonly laneId: string; readonly force: boolean }
  | { readonly kind: "restart"; readonly laneId: string; readonly force: boolean }
  | { readonly kind: "remove"; readonly laneId: string; readonly force: boolean; readonly removeToken: Buffer | undefined }
  | { readonly kind: "hold"; readonly laneId: string; readonly reason: string }
  | { readonly kind: "release"; readonly laneId: string }
  | { readonly kind: "arm"; readonly laneId: string; readonly jitConfig: Buffer }
  | {
      readonly kind: "upgrade";
      readonly laneId: string;
      /** systemd lanes: the version to run, and where to fetch it (absent: an operator-staged version). */
      readonly runnerVersion: string;
      readonly runnerDownload: RunnerDownload | undefined;
      /** container lanes: the image to run, pinned by digest. */
      readonly image: string;
    };

/** Who asked for the action, for the executor's audit and logs. */
export interface ExecutionContext {
  readonly hostId: string;
  readonly intentId: string;
  readonly sequence: number;
  /** Hex SHA-256 of the intent payload (log this, never the body). */
  readonly digest: string;
  /** Coordinator operation id, for audit correlation. */
  readonly operationId: string;
  /** Set when an operator forced the action. */
  readonly forcedBy: string;
}

/**
 * What the runtime markers say about a lane id on this host, re-checked under the lane's lock right before
 * acting (DESIGN section 6).
 */
export type LaneOwnership =
  /** A lane this agent created: all its host markers agree and name this host. */
  | "owned"
  /** Nothing with this lane's unit, container or directory name exists. */
  | "absent"
  /** Something exists under the lane's name without lanekeeper's markers. */
  | "unmanaged"
  /** The markers name another host. */
  | "foreign-host"
  /** Markers are present but fail verification (wrong signature, disagreeing fields). */
  | "bad-marker"
  /** The unit file or lane directory is a symlink (possibly pointing outside the managed directory). */
  | "symlink";

/** The result of {@link LaneExecutor.inspect}. */
export interface LaneInspection {
  readonly ownership: LaneOwnership;
  /** Whether an operator hold is on the lane (only meaningful when owned). */
  readonly held: boolean;
  /** The lane as observed (only when owned); goes into results. */
  readonly observed?: LaneObservation;
}

/** What an executed action reports back. */
export interface ExecutionOutcome {
  /** The lane after the action (absent after a remove). */
  readonly observed?: LaneObservation;
}

/**
 * The agent's lane operations as the intake sees them. The intake calls `inspect` and `managedLaneIds`
 * (read-only) during the ownership and allowlist steps and `execute` only after every check passed and the
 * replay reservation is durable. Calls for one lane are serialized by the intake.
 *
 * `execute` re-checks ownership and local job evidence at the instant of acting and throws a
 * `RejectError` (`NOT_OWNED`, `JOB_RUNNING`, ...) when it refuses, or another `LanekeeperError` when the action
 * failed after it started (the lane left in a safe state).
 */
export interface LaneExecutor {
  /** Ownership, hold and observed state of a lane id on this host. */
  inspect(laneId: string): Promise<LaneInspection>;
  /** The managed lanes on this host (for `control.maxLanes`). */
  managedLaneIds(): Promise<readonly string[]>;
  /** Perform a verified, allowed action. */
  execute(action: IntentAction, ctx: ExecutionContext): Promise<ExecutionOutcome>;
}
