/**
 * What the lane operations, the health supervisor and crash recovery share: the options, the per-lane mutex, the
 * lane state and journal stores, audit writing, ownership and hold checks, and the job guard. One instance per
 * {@link LaneManager}; the three parts hold the same instance, so a health restart, an operation and a recovery
 * on the same lane are serialized by the same mutex. Internal to the agent package.
 */
import { type Clock, KeyedMutex, LanekeeperError, RejectError, RejectReason, systemClock, validateLaneId } from "@lanekeeper/shared";
import { silentLog, type AgentLog, type AuditEntryInput, type AuditPhase, type AuditSink } from "../audit-sink.js";
import { recoveryNote, type AttentionReason, type HealthPolicy } from "./health-policy.js";
import type { LaneDirectories } from "./lane-directory.js";
import { readHold, removeHold } from "./lane-holds.js";
import type { BackendName, LaneRecord } from "./lane-marker.js";
import type { JobEvidence, LaneRuntime, RuntimeLane } from "../runtimes/lane-runtime.js";
import { initialLaneState, LaneStateStore, type LaneState } from "./lane-state.js";
import { OperationJournal } from "./operation-journal.js";
import { procProcessTable, type ProcessTable } from "../runtimes/process-table.js";
import type { RunnerDist } from "../runner-dist/runner-dist.js";

/** Correlation fields every operation may carry (from the intent that asked for it). */
export interface OperationContext {
  /** Coordinator operation id, for audit correlation. */
  readonly operationId?: string;
  /** The intent that asked for this, if any. */
  readonly intentId?: string;
  /** Set when an operator forced the action (recorded in audit). */
  readonly forcedBy?: string;
}

/** Options of {@link LaneManager}. */
export interface LaneManagerOptions {
  readonly hostId: string;
  readonly stateDir: string;
  readonly dirs: LaneDirectories;
  /** The configured backends. A spec naming another backend is refused with `NOT_ALLOWED_BACKEND`. */
  readonly runtimes: Readonly<Partial<Record<BackendName, LaneRuntime>>>;
  readonly audit: AuditSink;
  readonly health: HealthPolicy;
  readonly clock?: Clock;
  readonly log?: AgentLog;
  /** Local cap on lanes (the intake also enforces `control.maxLanes`). Unset: no cap here. */
  readonly maxLanes?: number;
  /** Injected for crash tests; defaults to one in `<stateDir>/journal`. */
  readonly journal?: OperationJournal;
  /** `source` of audit records. @default "agent" */
  readonly auditSource?: string;
  /**
   * How `config.sh` children are identified (journaled) and killed by recovery.
   * @default the host's `/proc` ({@link procProcessTable})
   */
  readonly processes?: ProcessTable;
  /** The host's runner versions; unused ones are pruned after a remove or an upgrade. Unset: nothing is pruned. */
  readonly runnerDist?: RunnerDist;
}

/** A lane whose host-side markers verified. */
export interface OwnedLane {
  readonly record: LaneRecord;
  readonly runtime: LaneRuntime;
  readonly lane: RuntimeLane;
  readonly runtimeExists: boolean;
}

/** Extra fields of an audit record. */
export interface AuditExtra {
  reasonCode?: string;
  message?: string;
  details?: Record<string, unknown>;
}

/** The stable code of an error, for audit records. */
export function errorCode(err: unknown): string {
  return err instanceof LanekeeperError ? err.code : "INTERNAL";
}

/** A bounded message of an error, for audit records and logs. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message.slice(0, 300) : "unexpected error";
}

/** Shared state and checks of the lane parts. */
export class LaneCore {
  readonly mutex = new KeyedMutex();
  readonly states: LaneStateStore;
  readonly journal: OperationJournal;
  readonly clock: Clock;
  readonly log: AgentLog;
  readonly processes: ProcessTable;
  private readonly source: string;
  /** Verified records, so the health loop does not re-verify every lane every tick (mutations always re-read). */
  readonly records = new Map<string, LaneRecord>();

  constructor(readonly opts: LaneManagerOptions) {
    this.states = new LaneStateStore(opts.stateDir);
    this.journal = opts.journal ?? new OperationJournal(opts.stateDir);
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? silentLog;
    this.processes = opts.processes ?? procProcessTable;
    this.source = opts.auditSource ?? "agent";
  }

  runtimeFor(backend: BackendName): LaneRuntime {
    const rt = this.opts.runtimes[backend];
    if (!rt) throw new RejectError(RejectReason.NOT_ALLOWED_BACKEND, `backend ${backend} is not configured on this host`);
    return rt;
  }

  async writeAudit(phase: AuditPhase, action: string, ctx: OperationContext, laneId: string, extra: AuditExtra = {}): Promise<void> {
    const entry: AuditEntryInput = {
      source: this.source,
      action,
      phase,
      laneId,
      hostId: this.opts.hostId,
      ...(ctx.operationId ? { operationId: ctx.operationId } : {}),
      ...(ctx.intentId ? { intentId: ctx.intentId } : {}),
      ...(extra.reasonCode ? { reasonCode: extra.reasonCode } : {}),
      ...(extra.message ? { message: extra.message } : {}),
      ...(extra.details || ctx.forcedBy ? { details: { ...(extra.details ?? {}), ...(ctx.forcedBy ? { forcedBy: ctx.forcedBy } : {}) } } : {}),
    };
    await this.opts.audit.append(entry);
  }

  /** Terminal audit after the action ran: never let an audit failure mask the operation's own outcome. */
  async finalAudit(phase: AuditPhase, action: string, ctx: OperationContext, laneId: string, extra: AuditExtra = {}): Promise<void> {
    try {
      await this.writeAudit(phase, action, ctx, laneId, extra);
    } catch (err) {
      this.log.error({ laneId, action, phase, err: errorMessage(err) }, "audit append failed");
    }
  }

  async rejected(action: string, ctx: OperationContext, laneId: string, err: unknown): Promise<void> {
    const phase: AuditPhase = err instanceof RejectError ? "rejected" : "failed";
    await this.finalAudit(phase, action, ctx, laneId, { reasonCode: errorCode(err), message: errorMessage(err) });
  }

  /**
   * All three host-side markers: `lane.json` (signature, lane, host, backend, name), and the runtime's own marker
   * when the unit/container exists.
   */
  async owned(laneId: string): Promise<OwnedLane> {
    validateLaneId(laneId);
    const record = await this.opts.dirs.read(laneId);
    const runtime = this.runtimeFor(record.backend);
    if (record.runtimeName !== runtime.runtimeName(laneId)) {
      throw new RejectError(RejectReason.BAD_MARKER, `lane.json of ${laneId} names ${record.runtimeName}`);
    }
    const exists = (await runtime.checkOwnership(laneId)) === "owned";
    this.records.set(laneId, record);
    return { record, runtime, lane: { record, laneDir: this.opts.dirs.dir(laneId) }, runtimeExists: exists };
  }

  async assertNotHeld(laneId: string): Promise<void> {
    const hold = await readHold(this.opts.stateDir, laneId);
    if (hold) {
      throw new RejectError(RejectReason.LANE_HELD, `lane ${laneId} is on hold${hold.reason ? ` (${hold.reason})` : ""}; release it first`, {
        details: { laneId },
      });
    }
  }

  async assertNoPendingOperation(laneId: string): Promise<void> {
    if (await this.journal.get(laneId)) {
      throw new RejectError(RejectReason.LANE_EXISTS, `lane ${laneId} has an interrupted operation; restart the agent so it recovers first`);
    }
  }

  async state(laneId: string): Promise<LaneState> {
    return (await this.states.get(laneId)) ?? initialLaneState(laneId, this.clock.now());
  }

  async setState(laneId: string, patch: Partial<Omit<LaneState, "laneId">>): Promise<LaneState> {
    const cur = await this.state(laneId);
    const next: LaneState = {
      ...cur,
      ...patch,
      laneId,
      stateSinceMs: patch.state !== undefined && patch.state !== cur.state ? this.clock.now() : cur.stateSinceMs,
    };
    return this.states.put(next);
  }

  /** The "last instant" check before a stop: a live `Runner.Worker` refuses it unless forced. */
  jobGuard(runtime: LaneRuntime, laneId: string, force: boolean | undefined): () => Promise<void> {
    return async () => {
      const ev: JobEvidence = await runtime.jobEvidence(laneId);
      if (ev.jobRunning && !force) {
        throw new RejectError(RejectReason.JOB_RUNNING, `lane ${laneId} is running a job (Runner.Worker pid ${ev.workerPids.join(", ")}); drain it first or force`, {
          details: { laneId, workerPids: [...ev.workerPids] },
        });
      }
    };
  }

  /** The recovery note of `reason` for a lane. */
  attention(reason: AttentionReason, record: LaneRecord, extra: { restarts?: number } = {}): string {
    return recoveryNote(reason, {
      laneId: record.laneId,
      backend: record.backend,
      laneDir: this.opts.dirs.dir(record.laneId),
      runtimeName: record.runtimeName,
      ...(extra.restarts !== undefined ? { restarts: extra.restarts, windowMs: this.opts.health.windowMs } : {}),
    });
  }

  /**
   * Delete runner versions no lane's record names any more (and their cached archives), except `keep`. Never
   * fails the operation that triggered it: a prune that fails is logged and tried again next time.
   */
  async pruneRunners(keep: readonly string[] = []): Promise<void> {
    const rd = this.opts.runnerDist;
    if (rd === undefined) return;
    try {
      const versions = new Set<string>(keep);
      for (const id of await this.opts.dirs.listIds()) {
        const r = await this.opts.dirs.read(id).catch(() => undefined);
        if (r !== undefined && r.runnerVersion !== "") versions.add(r.runnerVersion);
      }
      const removed = await rd.prune(versions);
      if (removed.length > 0) this.log.info({ removed }, "pruned runner versions no lane uses");
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, "pruning unused runner versions failed; will retry after the next change");
    }
  }

  /** Drop everything the agent keeps about a removed lane. */
  async forget(laneId: string): Promise<void> {
    await this.states.delete(laneId);
    await removeHold(this.opts.stateDir, laneId).catch(() => undefined);
    this.records.delete(laneId);
  }

  /** Undo a create that registered nothing: delete what verifies as ours (unit or container, directory, state). */
  async rollbackCreate(laneId: string, runtime: LaneRuntime): Promise<void> {
    // Only remove what verifies as ours; a unit or container that is not ours stays untouched.
    const runtimeOwned = await runtime.checkOwnership(laneId).then(
      (o) => o === "owned",
      () => false,
    );
    if (runtimeOwned) await runtime.remove(laneId);
    let verified = false;
    try {
      await this.opts.dirs.read(laneId);
      verified = true;
    } catch (err) {
      if (!(err instanceof RejectError) || (err.reason !== RejectReason.LANE_NOT_FOUND && err.reason !== RejectReason.NOT_OWNED)) throw err;
    }
    if (verified) await this.opts.dirs.remove(laneId);
    // A crash between mkdir and writing lane.json leaves an empty directory (or our temp file): only that goes.
    else await this.opts.dirs.removeIfPartial(laneId);
    await this.states.delete(laneId);
    this.records.delete(laneId);
  }

  /** A lane's record from the cache, or read and verified; `undefined` when it does not verify. */
  async cachedRecord(laneId: string): Promise<LaneRecord | undefined> {
    const hit = this.records.get(laneId);
    if (hit) return hit;
    try {
      const rec = await this.opts.dirs.read(laneId);
      this.records.set(laneId, rec);
      return rec;
    } catch {
      return undefined;
    }
  }
}
