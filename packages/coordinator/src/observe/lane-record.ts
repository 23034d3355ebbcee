/**
 * The coordinator's own record of a lane: ownership marker 3 (DESIGN.md section 6). A lane is managed only
 * when this record, the GitHub identity labels and the host's signed marker agree.
 */

/**
 * Where a lane is in its life, from the coordinator's side.
 * - `creating`: a create was started (the record is written before the intent is sent).
 * - `active`: verified online with its canonical labels.
 * - `draining`: deliberately drained (scale-down, move or operator); takes no new job.
 * - `removing`: a remove was started; resumed by the next apply if interrupted.
 * - `needs-attention`: an operation hit a deadline or a disagreement; only an operator moves it on.
 * - `orphaned`: an orphan mark (see {@link OrphanMark}); cleaned up on a later cycle if still orphaned.
 */
export type LaneRecordState = "creating" | "active" | "draining" | "removing" | "needs-attention" | "orphaned";

/**
 * What is orphaned:
 * - `registration-without-lane`: a GitHub registration with this lane's identity labels, and the host (whose
 *   inventory is known) has no such lane;
 * - `lane-without-registration`: the host has the lane (valid marker), and the scope's complete runner list
 *   has no registration for it;
 * - `record-without-lane`: only the coordinator record is left: no registration, no lane on the host.
 */
export type OrphanKind = "registration-without-lane" | "lane-without-registration" | "record-without-lane";

/** Phase one of orphan cleanup: what was seen, and when. Phase two acts only if it still holds. */
export interface OrphanMark {
  readonly kind: OrphanKind;
  readonly markedAtMs: number;
  /** The registration seen orphaned; cleanup requires the same id (registration kinds only). */
  readonly runnerId?: number;
  /** The record's state before it was marked, when there was a record. */
  readonly previousState?: LaneRecordState;
  /** The plan that marked it. */
  readonly planId?: string;
}

/** Why a record needs an operator, with a stable code. */
export interface AttentionNote {
  readonly code: string;
  readonly message: string;
}

/** The coordinator's record of one lane. */
export interface LaneRecord {
  readonly laneId: string;
  /** `owner/repo` or `org:<org>`. */
  readonly scope: string;
  readonly pool: string;
  readonly hostId: string;
  /** The current GitHub registration, once known (changes with every job for ephemeral lanes). */
  readonly runnerId?: number;
  readonly state: LaneRecordState;
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
  /** Why the lane is draining, when it is. */
  readonly drainReason?: "scale-down" | "move" | "operator";
  /** Set when `state` is `orphaned`. */
  readonly orphan?: OrphanMark;
  /** Set when `state` is `needs-attention`. */
  readonly attention?: AttentionNote;
  /** The operation that last changed the record, for audit correlation. */
  readonly operationId?: string;
  /**
   * When `serve` restarted the lane for its health (offline, crash loop), within the current cap window. Kept on
   * the record, so a new leader goes on counting where the old one stopped.
   */
  readonly healthRestartsAtMs?: readonly number[];
  /** Set on the disposable lane of a `lanekeeper smoke` run (see {@link SmokeMark}). */
  readonly smoke?: SmokeMark;
  /**
   * The fencing token (leader epoch) of the coordinator that last wrote the record; set by the KV store on every
   * write. Evidence of which leader acted; the fence itself refuses writes from a superseded one.
   */
  readonly fencingToken?: number;
}

/**
 * A lane `lanekeeper smoke` created for itself: outside every `lanes[]` group, registered with only its identity
 * labels and one unique smoke label. While the lease runs, plan, apply and serve leave the lane to the smoke run
 * (it is neither excess nor an orphan); once it has expired (the smoke process died), the planner removes it like
 * any other lane nobody wants.
 */
export interface SmokeMark {
  /** The smoke run's id (`smoke-<hex>`), also in its audit records. */
  readonly runId: string;
  /** The unique capability label the lane registers with (no workflow but the smoke's targets it). */
  readonly label: string;
  /** Until when the smoke run owns the lane. */
  readonly leaseUntilMs: number;
}

/** A record as stored, with the store's revision for compare-and-set updates. */
export interface StoredLaneRecord extends LaneRecord {
  /** Increases with every write; an update must name the revision it read. */
  readonly revision: number;
}

/** A copy of a record to write back: without the store's revision, nor any of `fields`. */
export function recordWithout(r: LaneRecord | StoredLaneRecord, ...fields: (keyof LaneRecord)[]): LaneRecord {
  const copy: Record<string, unknown> = { ...r };
  delete copy.revision;
  for (const f of fields) delete copy[f];
  return copy as unknown as LaneRecord;
}
