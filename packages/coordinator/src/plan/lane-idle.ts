import { LaneState } from "@lanekeeper/shared";
import type { LaneView } from "../observe/classify.js";

/**
 * Idle: the host, whose inventory is fresh, reports no job AND GitHub says not busy (or, for an ephemeral lane
 * waiting to be re-armed, there is no registration that could take one). Unknown is never idle.
 */
export function isIdle(v: LaneView): boolean {
  const hl = v.hostLane;
  if (!v.hostKnown || hl === undefined || hl.jobRunning) return false;
  if (v.registration !== undefined) return !v.registration.busy;
  return hl.state === LaneState.LANE_STATE_IDLE_UNARMED;
}
