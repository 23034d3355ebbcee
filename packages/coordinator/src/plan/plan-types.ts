import type { Classification } from "../observe/classify.js";
import type { Action, PlanActionKind } from "./action.js";
import type { Evidence } from "./evidence.js";
import type { CreateBudgetUsage } from "../github/create-budget.js";

/** Stable warning codes. */
export type PlanWarningCode =
  | "NO_INVENTORY"
  | "HOST_INVENTORY_UNKNOWN"
  | "HOST_INVENTORY_STALE"
  | "HOST_NOT_ENROLLED"
  | "HOST_NOT_OPTED_IN"
  | "HOST_CONTROL_DISABLED"
  | "HOST_NOT_ALLOWED"
  | "SCOPE_NOT_OPTED_IN"
  | "SCOPE_UNOBSERVED"
  | "SCOPE_INCOMPLETE"
  | "POOL_NOT_DECLARED"
  | "POOL_NO_LABELS"
  | "NO_CAPACITY"
  | "CREATE_BUDGET"
  | "GITHUB_CREATE_BUDGET"
  | "REMOVAL_BUDGET"
  | "SCALE_DOWN_WAITING"
  | "DEMAND_UNKNOWN"
  | "LANE_NEEDS_ATTENTION"
  | "LANE_HELD"
  | "LANE_UNHEALTHY"
  | "CREATE_STALLED"
  | "CREATE_INTERRUPTED"
  | "DRAIN_INTERRUPTED"
  | "OPERATION_IN_FLIGHT"
  | "ORPHAN_UNVERIFIED"
  | "ORPHAN_BUSY"
  | "ORPHAN_MARK_STALE"
  | "ORPHAN_BUDGET"
  | "FOREIGN_RUNNERS"
  | "INVALID_LANE"
  | "SMOKE_LANE"
  | "SMOKE_LANE_LEFT"
  | "RUNNER_VERSION_UNRESOLVED"
  | "RUNNER_VERSION_LAG"
  | "UPGRADE_HALTED"
  | "UPGRADE_WAITING"
  | "UPGRADE_WINDOW_CLOSED";

/** Something the operator should know; never an action. */
export interface PlanWarning {
  readonly code: PlanWarningCode;
  /** What is wrong, and what to do about it. */
  readonly message: string;
  readonly scope?: string;
  readonly hostId?: string;
  readonly laneId?: string;
  readonly pool?: string;
}

/** Options of `plan()`. Every threshold has a default; `nowMs` is required so the planner reads no clock. */
export interface PlanOptions {
  /** The time the plan is made for (ms since the epoch). */
  readonly nowMs: number;
  /** Id of this plan, written into orphan marks. @default `plan-<nowMs>` */
  readonly planId?: string;
  /** Lane removals and scale-down drains per plan. @default 2 */
  readonly maxRemovals?: number;
  /** Orphan cleanups per plan. @default 5 */
  readonly maxOrphanCleanups?: number;
  /** Lane creations per plan. @default 50 */
  readonly maxCreates?: number;
  /** How long an orphan stays marked before it is cleaned up. @default 300000 */
  readonly orphanGraceMs?: number;
  /** A lane still `creating` after this is reported. @default 900000 */
  readonly createTimeoutMs?: number;
  /** How long a new lane's other half may lag before it counts as orphaned. @default 300000 */
  readonly registrationGraceMs?: number;
  /** Inventories older than this are unknown. @default 60000 */
  readonly inventoryMaxAgeMs?: number;
  /**
   * Scale-down with no idle lane to remove drains busy ones instead (they finish their job, take no new one,
   * and are removed by a later plan once idle). @default true
   */
  readonly drainBusyOnScaleDown?: boolean;
  /**
   * Lane ids retired from the lane store (`LaneStore.retiredLaneIds`): never given to a new lane, so an id names
   * one lane for all time. @default none
   */
  readonly retiredLaneIds?: readonly string[];
}

/** The figures of a queue-driven group (`scaling` in the policy): what `wanted` was made from. */
export interface GroupScalingSummary {
  /** Queued jobs no lane has taken. */
  readonly queued: number;
  /** Busy lanes (GitHub busy, a job on the host, or a job in progress on the lane's runner). */
  readonly running: number;
  readonly idle: number;
  /** Lanes present but neither busy nor idle (being created, not online yet, not observable). */
  readonly starting: number;
  readonly wanted: number;
  /** `min`, raised by the schedules in force. */
  readonly min: number;
  readonly max: number;
  /** Idle lanes kept ready (`idle`, raised by the schedules in force). */
  readonly idleTarget: number;
  /** Whether demand for the scope is known; when not, the group is not scaled down. */
  readonly demandKnown: boolean;
  /** How `wanted` came about, in one line. */
  readonly why: string;
  /** Names of the schedule windows in force. */
  readonly schedules: readonly string[];
  /** The queued jobs counted (at most 50 listed). */
  readonly queuedJobIds: readonly number[];
  /** The jobs in progress on the group's lanes (at most 50 listed). */
  readonly runningJobIds: readonly number[];
  /** Idle lanes above `wanted` wait this long before scale-down may remove one; null when none waits. */
  readonly nextScaleDownInMs: number | null;
}

/** Per-group counts, for the plan header. */
export interface GroupSummary {
  readonly scope: string;
  readonly pool: string;
  /** `count`, or the `wanted` of a queue-driven group. */
  readonly desired: number;
  /** Lanes that count toward `desired` before this plan (serving, creating, or left alone). */
  readonly current: number;
  /** After this plan's actions succeed. */
  readonly planned: number;
  /** Set for queue-driven groups (`scaling` in the policy). */
  readonly scaling?: GroupScalingSummary;
}

/** What the plan was made from. */
export interface PlanObservationSummary {
  readonly scopesObserved: readonly string[];
  readonly scopesUnavailable: readonly { readonly scope: string; readonly code: string }[];
  readonly hostsKnown: readonly string[];
  readonly hostsUnknown: readonly string[];
  readonly hostsStale: readonly string[];
}

/** A lane that runs something other than what its pool wants, as `plan` shows it. */
export interface VersionDrift {
  readonly laneId: string;
  readonly scope: string;
  readonly pool: string;
  readonly hostId: string;
  /** `runner` (systemd: versions) or `image` (container: digests). */
  readonly what: "runner" | "image";
  /** What the host reports the lane runs. */
  readonly have: string;
  readonly want: string;
  /**
   * `upgrade` when this plan upgrades it; otherwise why it waits (`window`: the pool's upgrade window is closed).
   */
  readonly status: "upgrade" | "waiting" | "window" | "halted" | "busy-elsewhere" | "not-allowed";
  /** With `window`: "waiting for upgrade window <name>, opens <time>". */
  readonly note?: string;
  /** With `window`: the window's state at the plan's instant. */
  readonly evidence?: readonly Evidence[];
}

/** The output of `plan()`: ordered actions, warnings, and what they were made from. */
export interface Plan {
  readonly planId: string;
  readonly createdAtMs: number;
  /** In execution order: record fixes, undrains, creates, restarts, relabels, drains, removals, orphans. */
  readonly actions: readonly Action[];
  readonly warnings: readonly PlanWarning[];
  readonly groups: readonly GroupSummary[];
  readonly counts: Readonly<Record<PlanActionKind, number>>;
  readonly observation: PlanObservationSummary;
  readonly classification: Classification;
  /** Lanes whose runner version or image differs from what their pool wants (upgraded or not in this plan). */
  readonly versionDrift: readonly VersionDrift[];
  /**
   * The shared GitHub create budget as observed, and how many JIT mints (ephemeral creates and re-arms) this plan
   * deferred for it; absent when the observation had no budget (`github/create-budget.ts`).
   */
  readonly createBudget?: CreateBudgetUsage & { readonly deferred: number };
}
