import type { ActionKind } from "@lanekeeper/shared";
import type { DrainProgress } from "../drain/drain-protocol.js";
import type { PlanActionKind, PlanStep } from "../plan/action.js";
import type { SafeState } from "./recovery-note.js";

/** How one action ended. */
export type ActionStatus =
  /** Every step done and verified. */
  | "succeeded"
  /** A step failed; the lane is in `safeState` and the recovery note says what to run. */
  | "failed"
  /** The drain deadline passed with the lane still busy: the lane record is `needs-attention`; nothing was killed. */
  | "needs-attention"
  /** A guard no longer held (or a dependency failed) before anything was done. */
  | "skipped"
  /** `--dry-run`: nothing was done. */
  | "dry-run";

/** The outcome of one action. */
export interface ActionOutcome {
  readonly actionId: string;
  /** The plan action's kind, or `hold` / `release` for those operator commands. */
  readonly kind: PlanActionKind | "hold" | "release";
  readonly laneId: string;
  readonly hostId: string;
  readonly scope: string;
  readonly operationId: string;
  readonly status: ActionStatus;
  readonly stepsDone: readonly PlanStep[];
  /** The step that failed, or `guards` / `dependency` for a skip. */
  readonly failedStep?: PlanStep | "guards" | "dependency";
  /** Stable code of the failure or skip. */
  readonly code?: string;
  readonly message?: string;
  readonly safeState?: SafeState;
  /** The recovery note (also on the lane record and in the audit). */
  readonly recovery?: string;
  /** Intents sent, in order. */
  readonly intentIds: readonly string[];
  /** Set when the operator forced a stop (`--force`). */
  readonly forcedBy?: string;
  readonly elapsedMs: number;
}

/** The outcome of one apply run. */
export interface ApplyReport {
  readonly planId: string;
  readonly dryRun: boolean;
  readonly outcomes: readonly ActionOutcome[];
  /** True when every action succeeded (or, in a dry run, always). */
  readonly ok: boolean;
}

/** Events of a run, for progress output and metrics. */
export type ApplyEvent =
  | { readonly type: "action-start"; readonly actionId: string; readonly kind: PlanActionKind; readonly laneId: string; readonly hostId: string }
  | { readonly type: "step"; readonly actionId: string; readonly laneId: string; readonly step: PlanStep }
  | DrainProgress
  | {
      readonly type: "intent";
      readonly hostId: string;
      readonly laneId: string;
      readonly action: ActionKind;
      /** `ok`, `rejected`, `failed`, or the dispatch error code. */
      readonly result: string;
      readonly latencyMs: number;
    }
  | { readonly type: "action-end"; readonly outcome: ActionOutcome };
