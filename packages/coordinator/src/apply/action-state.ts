import type { LaneObservation } from "@lanekeeper/shared";
import type { StoredLaneRecord } from "../observe/lane-record.js";
import type { Action, PlanStep } from "../plan/action.js";
import type { SafeState } from "./recovery-note.js";

/** What one action has done so far: the engine's steps read and update it, its ending reports it. */
export interface ActionState {
  readonly action: Action;
  readonly operationId: string;
  readonly startedAtMs: number;
  record: StoredLaneRecord | undefined;
  /** The record as it was before the action's first step (to undo an operator command's write). */
  recordBefore: StoredLaneRecord | undefined;
  runnerId: number | undefined;
  /** Registration token / JIT config / remove token in the clear, wiped after use. */
  secret: Buffer | undefined;
  removeToken: Buffer | undefined;
  /** Agent clock: the drain result's `finishedAtMs`; host snapshots before it do not count. */
  drainSince: number | undefined;
  drainStartedAtMs: number | undefined;
  drainDeadlineAtMs: number | undefined;
  removedSince: number | undefined;
  observed: LaneObservation | undefined;
  labelsDrained: boolean;
  /** A draining-label change got no answer: the labels may or may not have been swapped. */
  labelsUncertain: boolean;
  agentDrained: boolean;
  stopped: boolean;
  maybeCreated: boolean;
  forced: boolean;
  /** An `UpgradeLane` intent went out: a failure from here on rolls the lane back to its old version. */
  upgradeSent: boolean;
  /** Agent clock: the upgrade result's `finishedAtMs`; host snapshots before it do not show the new version. */
  upgradedSince: number | undefined;
  readonly intentIds: string[];
  readonly stepsDone: PlanStep[];
}

/** The state of an action about to run its first step. */
export function newActionState(action: Action, operationId: string, startedAtMs: number): ActionState {
  return {
    action,
    operationId,
    startedAtMs,
    record: undefined,
    recordBefore: undefined,
    runnerId: "runnerId" in action ? action.runnerId : undefined,
    secret: undefined,
    removeToken: undefined,
    drainSince: undefined,
    drainStartedAtMs: undefined,
    drainDeadlineAtMs: undefined,
    removedSince: undefined,
    observed: undefined,
    labelsDrained: false,
    labelsUncertain: false,
    agentDrained: false,
    stopped: false,
    maybeCreated: false,
    forced: false,
    upgradeSent: false,
    upgradedSince: undefined,
    intentIds: [],
    stepsDone: [],
  };
}

/** The state the lane was left in, from what the action's steps did. */
export function safeStateOf(st: ActionState): SafeState {
  if (st.stopped) return "stopped";
  if (st.labelsDrained || st.agentDrained) return "drained";
  if (st.maybeCreated) return "created-unverified";
  return "untouched";
}
