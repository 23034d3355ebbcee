import { LanekeeperError } from "@lanekeeper/shared";
import type { LaneRecord, StoredLaneRecord } from "./lane-record.js";
import type { CoordinatorErrorCode } from "../error-codes.js";

/**
 * Durable lane records. Every write is compare-and-set on the revision, so two coordinators (or an apply and
 * a stale plan) cannot both act on the same record: the second write fails with `LaneStoreConflictError`.
 * The JetStream KV implementation maps `create` to KV create, `update`/`delete` to revision-checked writes.
 */
export interface LaneStore {
  /** Every record, sorted by lane id. */
  list(): Promise<readonly StoredLaneRecord[]>;
  /** The records of one host, sorted by lane id (as fresh as {@link list}). */
  listHost(hostId: string): Promise<readonly StoredLaneRecord[]>;
  get(laneId: string): Promise<StoredLaneRecord | undefined>;
  /** Write a new record; fails with a conflict if the lane id exists. */
  create(record: LaneRecord): Promise<StoredLaneRecord>;
  /** Replace a record read at `expectedRevision`. */
  update(record: LaneRecord, expectedRevision: number): Promise<StoredLaneRecord>;
  /**
   * Delete a record read at `expectedRevision`. The lane id is retired first (see {@link retiredLaneIds}), so it
   * is never handed to another lane, even when the delete then loses its compare-and-set.
   */
  delete(laneId: string, expectedRevision: number): Promise<void>;
  /**
   * Every lane id whose record was ever deleted, sorted. The planner treats them as taken, so a lane id names
   * one lane for all time and the audit trail never mixes two lanes.
   */
  retiredLaneIds(): Promise<readonly string[]>;
}

/** A compare-and-set write lost: the record changed (or appeared, or vanished) since it was read. */
export class LaneStoreConflictError extends LanekeeperError<CoordinatorErrorCode> {
  constructor(laneId: string, message: string) {
    super("LANE_STORE_CONFLICT", `lane ${laneId}: ${message}; re-plan and try again`, { details: { laneId } });
  }
}
