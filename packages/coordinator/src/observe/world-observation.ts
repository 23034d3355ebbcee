import type { StoredLaneRecord } from "./lane-record.js";
import type { ObservedState } from "./observed-state.js";

/** What one observation pass saw: GitHub, the agents' inventories and the lane records. */
export interface WorldObservation {
  readonly observed: ObservedState;
  readonly records: readonly StoredLaneRecord[];
  /** Lane ids the store retired (`LaneStore.retiredLaneIds`); a new lane never gets one. @default none */
  readonly retiredLaneIds?: readonly string[];
  readonly observedAtMs: number;
  /**
   * Operation ids of in-flight records (`creating`, `removing`) whose action holds a live lease, read after the
   * records. Undefined when no lease store was asked: then nothing is concluded about interrupted actions.
   */
  readonly liveOperations?: ReadonlySet<string>;
}
