/**
 * The lane operations of one host: create, start, stop, restart, remove, drain/undrain, hold/release, arm,
 * inspect and list. This is the local API the intent intake calls after it verified an intent, and what tests
 * drive directly. Each operation takes a typed request and returns a `LaneObservation` (or a typed result),
 * runs serialized per lane, re-checks all host-side ownership markers (signed `lane.json`, unit keys or container
 * labels, no symlinks) right before it acts, writes `planned`, `started` and a terminal record to the audit chain,
 * and journals multi-step work so {@link LaneManager.recover} can finish or roll back what a crash interrupted.
 *
 * Secrets (registration token, JIT config, remove token) arrive as plaintext Buffers; they go only into a child's
 * environment, a 0600 env file or a 0600 file copied into a container, and never into logs, audit records,
 * argv, results or the journal. The caller owns the Buffers (and should wipe them).
 */
import {
  Backend,
  type Clock,
  Health,
  LanekeeperError,
  LaneState as LaneStateEnum,
  type LaneObservation,
  type LaneSpec,
  RejectError,
  RejectReason,
  systemClock,
  validateLaneId,
} from "@lanekeeper/shared";
import { silentLog, type AgentLog, type AuditEntryInput, type AuditPhase, type AuditSink } from "./audit-sink.js";
import { recoveryNote, decideHealth, pruneRestarts, type AttentionReason, type HealthPolicy } from "./health-policy.js";
import { KeyedMutex } from "./keyed-mutex.js";
import type { LaneDirectories } from "./lane-directory.js";
import { cleanHoldReason, listHolds, readHold, removeHold, writeHold, type LaneHold } from "./lane-holds.js";
import { backendEnum, modeEnum, type BackendName, type LaneRecord } from "./lane-marker.js";
import type { DeregisterOutcome, JobEvidence, LaneRuntime, RuntimeLane, RuntimeStatus } from "./lane-runtime.js";
import { laneRecordFromSpec, validateSecret } from "./lane-spec.js";
import { initialLaneState, LaneStateStore, type HealthName, type LaneState, type LaneStateName } from "./lane-state.js";
import { MAX_SECRET_BYTES } from "./limits.js";
import { OperationJournal, type JournalEntry } from "./operation-journal.js";
import { readProcStat, isSameProcess } from "./proc-scan.js";

/** Correlation fields every operation may carry (from the intent that asked for it). */
export interface OperationContext {
  /** Coordinator operation id, for audit correlation. */
  readonly operationId?: string;
  /** The intent that asked for this, if any. */
  readonly intentId?: string;
  /** Set when an operator forced the action (recorded in audit). */
  readonly forcedBy?: string;
}

/** Create a lane. Persistent lanes need `registrationToken`; ephemeral lanes need `jitConfig`. */
export interface CreateLaneRequest extends OperationContext {
  readonly spec: LaneSpec;
  readonly registrationToken?: Buffer;
  readonly jitConfig?: Buffer;
}

/** An operation on one existing lane. */
export interface LaneRequest extends OperationContext {
  readonly laneId: string;
}

/** Stop or restart. Refused with `JOB_RUNNING` while a `Runner.Worker` lives, unless `force`. */
export interface StopLaneRequest extends LaneRequest {
  readonly force?: boolean;
}

/** Remove: stop, deregister with `removeToken` (absent when the registration is already gone), delete. */
export interface RemoveLaneRequest extends LaneRequest {
  readonly removeToken?: Buffer;
  readonly force?: boolean;
}

/** Hold a lane (the agent refuses mutations and does not restart it). */
export interface HoldLaneRequest extends LaneRequest {
  readonly reason: string;
  /** Who holds it (`intent`, or a login name). */
  readonly by?: string;
}

/** Give an ephemeral lane a fresh JIT config and start it. */
export interface ArmLaneRequest extends LaneRequest {
  readonly jitConfig: Buffer;
}

/** What a remove did. */
export interface RemoveLaneResult {
  readonly laneId: string;
  /** `removed`: deregistered with the token; `not-configured`: no `.runner`; `skipped`: no token given. */
  readonly deregistration: DeregisterOutcome | "skipped";
}

/** What recovery did with one interrupted operation. */
export interface RecoveryAction {
  readonly laneId: string;
  readonly op: JournalEntry["op"];
  readonly step: string;
  readonly outcome: "rolled-back" | "rolled-forward" | "needs-attention";
  readonly message: string;
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
}

const STATE_TO_ENUM: Readonly<Record<LaneStateName, LaneStateEnum>> = {
  creating: LaneStateEnum.LANE_STATE_CREATING,
  running: LaneStateEnum.LANE_STATE_RUNNING,
  stopped: LaneStateEnum.LANE_STATE_STOPPED,
  failed: LaneStateEnum.LANE_STATE_FAILED,
  "needs-attention": LaneStateEnum.LANE_STATE_NEEDS_ATTENTION,
  removing: LaneStateEnum.LANE_STATE_REMOVING,
  "idle-unarmed": LaneStateEnum.LANE_STATE_IDLE_UNARMED,
};

const HEALTH_TO_ENUM: Readonly<Record<HealthName, Health>> = {
  healthy: Health.HEALTH_HEALTHY,
  restarting: Health.HEALTH_RESTARTING,
  "crash-loop": Health.HEALTH_CRASH_LOOP,
  "registration-deleted": Health.HEALTH_REGISTRATION_DELETED,
  unknown: Health.HEALTH_UNKNOWN,
};

interface OwnedLane {
  readonly record: LaneRecord;
  readonly runtime: LaneRuntime;
  readonly lane: RuntimeLane;
  readonly runtimeExists: boolean;
}

function errorCode(err: unknown): string {
  return err instanceof LanekeeperError ? err.code : "INTERNAL";
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message.slice(0, 300) : "unexpected error";
}

/** The lane operations of this host. */
export class LaneManager {
  private readonly mutex = new KeyedMutex();
  private readonly states: LaneStateStore;
  private readonly journal: OperationJournal;
  private readonly clock: Clock;
  private readonly log: AgentLog;
  private readonly source: string;
  /** Verified records, so the health loop does not re-verify every lane every tick (mutations always re-read). */
  private readonly records = new Map<string, LaneRecord>();

  constructor(private readonly opts: LaneManagerOptions) {
    this.states = new LaneStateStore(opts.stateDir);
    this.journal = opts.journal ?? new OperationJournal(opts.stateDir);
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? silentLog;
    this.source = opts.auditSource ?? "agent";
  }

  /** The host this manager serves. */
  get hostId(): string {
    return this.opts.hostId;
  }

  /** The configured runtimes. */
  get runtimes(): Readonly<Partial<Record<BackendName, LaneRuntime>>> {
    return this.opts.runtimes;
  }

  /** Run `fn` serialized with every other operation on `laneId` (used by the health loop and the intake). */
  withLane<T>(laneId: string, fn: () => Promise<T>): Promise<T> {
    return this.mutex.run(validateLaneId(laneId), fn);
  }

  // ---------------------------------------------------------------------------------------------- helpers

  private runtimeFor(backend: BackendName): LaneRuntime {
    const rt = this.opts.runtimes[backend];
    if (!rt) throw new RejectError(RejectReason.NOT_ALLOWED_BACKEND, `backend ${backend} is not configured on this host`);
    return rt;
  }

  private async writeAudit(
    phase: AuditPhase,
    action: string,
    ctx: OperationContext,
    laneId: string,
    extra: { reasonCode?: string; message?: string; details?: Record<string, unknown> } = {},
  ): Promise<void> {
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
  private async finalAudit(phase: AuditPhase, action: string, ctx: OperationContext, laneId: string, extra: Parameters<LaneManager["writeAudit"]>[4] = {}): Promise<void> {
    try {
      await this.writeAudit(phase, action, ctx, laneId, extra);
    } catch (err) {
      this.log.error({ laneId, action, phase, err: errorMessage(err) }, "audit append failed");
    }
  }

  private async rejected(action: string, ctx: OperationContext, laneId: string, err: unknown): Promise<void> {
    const phase: AuditPhase = err instanceof RejectError ? "rejected" : "failed";
    await this.finalAudit(phase, action, ctx, laneId, { reasonCode: errorCode(err), message: errorMessage(err) });
  }

  /**
   * All three host-side markers: `lane.json` (signature, lane, host, backend, name), and the runtime's own marker
   * when the unit/container exists.
   */
  private async owned(laneId: string): Promise<OwnedLane> {
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

  private async assertNotHeld(laneId: string): Promise<void> {
    const hold = await readHold(this.opts.stateDir, laneId);
    if (hold) {
      throw new RejectError(RejectReason.LANE_HELD, `lane ${laneId} is on hold${hold.reason ? ` (${hold.reason})` : ""}; release it first`, {
        details: { laneId },
      });
    }
  }

  private async assertNoPendingOperation(laneId: string): Promise<void> {
    if (await this.journal.get(laneId)) {
      throw new RejectError(RejectReason.LANE_EXISTS, `lane ${laneId} has an interrupted operation; restart the agent so it recovers first`);
    }
  }

  private async state(laneId: string): Promise<LaneState> {
    return (await this.states.get(laneId)) ?? initialLaneState(laneId, this.clock.now());
  }

  private async setState(laneId: string, patch: Partial<Omit<LaneState, "laneId">>): Promise<LaneState> {
    const cur = await this.state(laneId);
    const next: LaneState = {
      ...cur,
      ...patch,
      laneId,
      stateSinceMs: patch.state !== undefined && patch.state !== cur.state ? this.clock.now() : cur.stateSinceMs,
    };
    return this.states.put(next);
  }

  private jobGuard(runtime: LaneRuntime, laneId: string, force: boolean | undefined): () => Promise<void> {
    return async () => {
      const ev: JobEvidence = await runtime.jobEvidence(laneId);
      if (ev.jobRunning && !force) {
        throw new RejectError(RejectReason.JOB_RUNNING, `lane ${laneId} is running a job (Runner.Worker pid ${ev.workerPids.join(", ")}); drain it first or force`, {
          details: { laneId, workerPids: [...ev.workerPids] },
        });
      }
    };
  }

  private attention(reason: AttentionReason, record: LaneRecord, extra: { restarts?: number } = {}): string {
    return recoveryNote(reason, {
      laneId: record.laneId,
      backend: record.backend,
      laneDir: this.opts.dirs.dir(record.laneId),
      runtimeName: record.runtimeName,
      ...(extra.restarts !== undefined ? { restarts: extra.restarts, windowMs: this.opts.health.windowMs } : {}),
    });
  }

  // -------------------------------------------------------------------------------------------- operations

  /** Create a lane: directory and signed `lane.json`, unit or container, registration, start. */
  async create(req: CreateLaneRequest): Promise<LaneObservation> {
    const laneId = validateLaneId(req.spec.laneId);
    return this.mutex.run(laneId, async () => {
      const action = "create";
      let record: LaneRecord;
      let runtime: LaneRuntime;
      let secret: Buffer;
      try {
        const backend = req.spec.backend === Backend.BACKEND_SYSTEMD ? "systemd" : req.spec.backend === Backend.BACKEND_CONTAINER ? "container" : undefined;
        if (!backend) throw new RejectError(RejectReason.NOT_ALLOWED_BACKEND, "the lane spec names no known backend");
        runtime = this.runtimeFor(backend);
        record = laneRecordFromSpec(req.spec, this.opts.hostId, (id) => runtime.runtimeName(id), this.clock.now());
        secret =
          record.mode === "persistent"
            ? validateSecret(req.registrationToken, "registration token", MAX_SECRET_BYTES)
            : validateSecret(req.jitConfig, "JIT config", MAX_SECRET_BYTES);
        await this.assertNoPendingOperation(laneId);
        if ((await this.opts.dirs.state(laneId)) !== "missing") {
          await this.opts.dirs.read(laneId);
          throw new RejectError(RejectReason.LANE_EXISTS, `lane ${laneId} exists already`, { details: { laneId } });
        }
        if ((await runtime.checkOwnership(laneId)) === "owned") {
          throw new RejectError(RejectReason.LANE_EXISTS, `${runtime.runtimeName(laneId)} exists already`, { details: { laneId } });
        }
        if (this.opts.maxLanes !== undefined && (await this.opts.dirs.listIds()).length >= this.opts.maxLanes) {
          throw new RejectError(RejectReason.MAX_LANES, `this host has reached its maximum of ${this.opts.maxLanes} lanes`);
        }
      } catch (err) {
        await this.rejected(action, req, laneId, err);
        throw err;
      }
      const details = { backend: record.backend, mode: record.mode, scope: record.scope, pool: record.pool };
      await this.writeAudit("planned", action, req, laneId, { details });
      await this.writeAudit("started", action, req, laneId);
      const base = { laneId, operationId: req.operationId ?? "", backend: record.backend, mode: record.mode, startedAtMs: this.clock.now() };
      const lane: RuntimeLane = { record, laneDir: this.opts.dirs.dir(laneId) };
      let childWrite: Promise<void> = Promise.resolve();
      const onChild = (pid: number): Promise<void> => {
        childWrite = readProcStat(pid).then((st) =>
          st ? this.journal.write({ ...base, op: "create", step: "runtime", child: { pid, startTime: st.startTime } }, "child") : undefined,
        );
        return childWrite;
      };
      await this.journal.write({ ...base, op: "create", step: "begin" });
      try {
        await this.opts.dirs.create(record);
        await this.journal.write({ ...base, op: "create", step: "dir" });
        await this.states.put({ ...initialLaneState(laneId, this.clock.now()), state: "creating" });
        await runtime.create(lane);
        await this.journal.write({ ...base, op: "create", step: "runtime" });
        if (record.mode === "persistent") await runtime.configure(lane, secret, onChild);
        else await runtime.armJit(lane, secret);
        await childWrite.catch(() => undefined);
        await this.journal.write({ ...base, op: "create", step: "configured" });
      } catch (err) {
        await childWrite.catch(() => undefined);
        // Nothing is registered (configure failed or never ran): undo everything this operation created.
        const rollback = await this.rollbackCreate(laneId, runtime).then(
          () => "rolled back",
          (e: unknown) => `rollback failed: ${errorMessage(e)}`,
        );
        await this.journal.clear(laneId);
        await this.finalAudit(err instanceof RejectError ? "rejected" : "failed", action, req, laneId, {
          reasonCode: errorCode(err),
          message: `${errorMessage(err)}; ${rollback}`,
        });
        throw err;
      }
      try {
        await runtime.start(laneId);
        await this.journal.write({ ...base, op: "create", step: "started" });
        const settings = record.mode === "persistent" ? await runtime.runnerSettings(lane).catch(() => undefined) : undefined;
        await this.setState(laneId, {
          desired: "running",
          state: "running",
          health: "healthy",
          runnerId: settings?.agentId ?? 0,
          runnerName: settings?.agentName ?? record.laneId,
        });
        await this.journal.clear(laneId);
        await this.finalAudit("succeeded", action, req, laneId, { details: { runnerId: settings?.agentId ?? 0 } });
      } catch (err) {
        // The runner is registered: keep the lane (no orphaned registration) and say what to do.
        await this.setState(laneId, {
          desired: "stopped",
          state: "needs-attention",
          attentionReason: "START_FAILED",
          recoveryNote: this.attention("START_FAILED", record),
        }).catch(() => undefined);
        await this.journal.clear(laneId);
        await this.finalAudit("failed", action, req, laneId, { reasonCode: errorCode(err), message: errorMessage(err) });
        throw err;
      }
      this.records.set(laneId, record);
      return this.observe(laneId, { evidence: false });
    });
  }

  private async rollbackCreate(laneId: string, runtime: LaneRuntime): Promise<void> {
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

  /** Start a stopped lane and keep it running (clears a needs-attention state). */
  async start(req: LaneRequest): Promise<LaneObservation> {
    return this.simpleOp("start", req, async (o) => {
      if (!o.runtimeExists) throw new RejectError(RejectReason.LANE_NOT_FOUND, `${o.record.runtimeName} does not exist`);
      await this.setState(req.laneId, { desired: "running", attentionReason: "", recoveryNote: "", restarts: [], nextRestartAtMs: 0, health: "unknown" });
      await o.runtime.start(req.laneId);
      await this.setState(req.laneId, { state: "running" });
    });
  }

  /** Stop a lane and keep it stopped. Refused with `JOB_RUNNING` while a job runs, unless forced. */
  async stop(req: StopLaneRequest): Promise<LaneObservation> {
    return this.simpleOp(
      "stop",
      req,
      async (o) => {
        if (!o.runtimeExists) throw new RejectError(RejectReason.LANE_NOT_FOUND, `${o.record.runtimeName} does not exist`);
        const prev = await this.state(req.laneId);
        // Desired first, so the health loop never restarts what is being stopped, even after a crash here.
        await this.setState(req.laneId, { desired: "stopped" });
        try {
          await o.runtime.stop(req.laneId, this.jobGuard(o.runtime, req.laneId, req.force));
        } catch (err) {
          await this.setState(req.laneId, { desired: prev.desired });
          throw err;
        }
        await this.setState(req.laneId, { state: "stopped", health: "unknown" });
      },
      { forced: req.force === true },
    );
  }

  /** Restart a lane (clears restart history and a needs-attention state). Refused while a job runs unless forced. */
  async restart(req: StopLaneRequest): Promise<LaneObservation> {
    return this.simpleOp(
      "restart",
      req,
      async (o) => {
        if (!o.runtimeExists) throw new RejectError(RejectReason.LANE_NOT_FOUND, `${o.record.runtimeName} does not exist`);
        await o.runtime.restart(req.laneId, this.jobGuard(o.runtime, req.laneId, req.force));
        await this.setState(req.laneId, {
          desired: "running",
          state: "running",
          health: "unknown",
          attentionReason: "",
          recoveryNote: "",
          restarts: [],
          nextRestartAtMs: 0,
        });
      },
      { forced: req.force === true },
    );
  }

  /** Mark a lane draining (reported in inventory; an ephemeral lane is not re-armed). */
  async drain(req: LaneRequest): Promise<LaneObservation> {
    return this.simpleOp("drain", req, async () => {
      await this.setState(req.laneId, { draining: true });
    });
  }

  /** Clear the draining mark. */
  async undrain(req: LaneRequest): Promise<LaneObservation> {
    return this.simpleOp("undrain", req, async () => {
      await this.setState(req.laneId, { draining: false });
    });
  }

  /** Put a hold on a lane (same file the local `lanekeeper-agent hold` writes). */
  async hold(req: HoldLaneRequest): Promise<LaneObservation> {
    return this.simpleOp(
      "hold",
      req,
      async () => {
        const reason = cleanHoldReason(req.reason);
        await writeHold(this.opts.stateDir, { laneId: req.laneId, reason, atMs: this.clock.now(), by: req.by ?? "intent" });
        await this.setState(req.laneId, { auditedHold: reason });
      },
      { allowHeld: true },
    );
  }

  /** Release a hold. */
  async release(req: LaneRequest): Promise<LaneObservation> {
    return this.simpleOp(
      "release",
      req,
      async () => {
        await removeHold(this.opts.stateDir, req.laneId);
        await this.setState(req.laneId, { auditedHold: null });
      },
      { allowHeld: true },
    );
  }

  /** Give an idle ephemeral lane a fresh JIT config and start it. */
  async arm(req: ArmLaneRequest): Promise<LaneObservation> {
    return this.simpleOp("arm", req, async (o) => {
      if (o.record.mode !== "ephemeral") throw new RejectError(RejectReason.NOT_ALLOWED_ACTION, `lane ${req.laneId} is persistent; only ephemeral lanes are armed`);
      const st = await this.state(req.laneId);
      if (st.draining) throw new RejectError(RejectReason.NOT_ALLOWED_ACTION, `lane ${req.laneId} is draining; it is not re-armed`);
      const jit = validateSecret(req.jitConfig, "JIT config", MAX_SECRET_BYTES);
      const status = await o.runtime.inspect(req.laneId);
      if (status.activity === "running" || status.activity === "starting") {
        throw new RejectError(RejectReason.NOT_ALLOWED_ACTION, `lane ${req.laneId} is still running its runner; arm it when it is idle`);
      }
      const base = { laneId: req.laneId, operationId: req.operationId ?? "", backend: o.record.backend, mode: o.record.mode, startedAtMs: this.clock.now() };
      await this.journal.write({ ...base, op: "arm", step: "begin" });
      try {
        await o.runtime.armJit(o.lane, jit);
        await this.journal.write({ ...base, op: "arm", step: "armed" });
        await o.runtime.start(req.laneId);
        await this.journal.write({ ...base, op: "arm", step: "started" });
        await this.setState(req.laneId, { desired: "running", state: "running", health: "unknown", attentionReason: "", recoveryNote: "" });
      } catch (err) {
        await o.runtime.clearSecrets(req.laneId).catch(() => undefined);
        throw err;
      } finally {
        await this.journal.clear(req.laneId);
      }
    });
  }

  /**
   * Remove a lane: stop (refused while a job runs unless forced), deregister with the remove token, delete the
   * unit or container and the directory.
   */
  async remove(req: RemoveLaneRequest): Promise<RemoveLaneResult> {
    const laneId = validateLaneId(req.laneId);
    return this.mutex.run(laneId, async () => {
      const action = "remove";
      let o: OwnedLane;
      try {
        o = await this.owned(laneId);
        await this.assertNotHeld(laneId);
        await this.assertNoPendingOperation(laneId);
        if (req.removeToken !== undefined) validateSecret(req.removeToken, "remove token", MAX_SECRET_BYTES);
      } catch (err) {
        await this.rejected(action, req, laneId, err);
        throw err;
      }
      await this.writeAudit("planned", action, req, laneId, { details: { forced: req.force === true, withToken: req.removeToken !== undefined } });
      await this.writeAudit("started", action, req, laneId);
      const base = { laneId, operationId: req.operationId ?? "", backend: o.record.backend, mode: o.record.mode, startedAtMs: this.clock.now() };
      const prev = await this.state(laneId);
      let deregistration: RemoveLaneResult["deregistration"] = "skipped";
      let step = "begin";
      await this.journal.write({ ...base, op: "remove", step: "begin" });
      try {
        await this.setState(laneId, { desired: "stopped", state: "removing" });
        if (o.runtimeExists) await o.runtime.stop(laneId, this.jobGuard(o.runtime, laneId, req.force));
        await this.journal.write({ ...base, op: "remove", step: (step = "stopped") });
        if (req.removeToken !== undefined) {
          let childWrite: Promise<void> = Promise.resolve();
          deregistration = o.runtimeExists
            ? await o.runtime.deregister(o.lane, req.removeToken, (pid) => {
                childWrite = readProcStat(pid).then((st) =>
                  st ? this.journal.write({ ...base, op: "remove", step: "stopped", child: { pid, startTime: st.startTime } }, "child") : undefined,
                );
                return childWrite;
              })
            : "not-configured";
          await childWrite.catch(() => undefined);
        }
        await this.journal.write({ ...base, op: "remove", step: (step = "deregistered") });
        await o.runtime.remove(laneId);
        await this.journal.write({ ...base, op: "remove", step: (step = "runtime-removed") });
        await this.opts.dirs.remove(laneId);
        await this.journal.write({ ...base, op: "remove", step: (step = "dir-removed") });
        await this.forget(laneId);
        await this.journal.clear(laneId);
        await this.finalAudit("succeeded", action, req, laneId, { details: { deregistration } });
        return { laneId, deregistration };
      } catch (err) {
        await this.journal.clear(laneId).catch(() => undefined);
        if (step === "begin") {
          // Nothing was stopped (a job runs, or the stop failed): the lane is as it was.
          await this.setState(laneId, { desired: prev.desired, state: prev.state }).catch(() => undefined);
        } else if (step === "stopped") {
          await this.setState(laneId, {
            state: "needs-attention",
            attentionReason: "REMOVE_INCOMPLETE",
            recoveryNote: this.attention("REMOVE_INCOMPLETE", o.record),
          }).catch(() => undefined);
        }
        await this.finalAudit(err instanceof RejectError ? "rejected" : "failed", action, req, laneId, {
          reasonCode: errorCode(err),
          message: `${errorMessage(err)} (after step ${step})`,
        });
        throw err;
      }
    });
  }

  private async forget(laneId: string): Promise<void> {
    await this.states.delete(laneId);
    await removeHold(this.opts.stateDir, laneId).catch(() => undefined);
    this.records.delete(laneId);
  }

  /**
   * The shape of most operations: ownership and hold checks (refusals audited as `rejected`), then `planned`,
   * `started`, the action, and a terminal record.
   */
  private async simpleOp(
    action: string,
    req: LaneRequest,
    act: (o: OwnedLane) => Promise<void>,
    flags: { allowHeld?: boolean; forced?: boolean } = {},
  ): Promise<LaneObservation> {
    const laneId = validateLaneId(req.laneId);
    return this.mutex.run(laneId, async () => {
      let o: OwnedLane;
      try {
        o = await this.owned(laneId);
        if (!flags.allowHeld) await this.assertNotHeld(laneId);
        await this.assertNoPendingOperation(laneId);
      } catch (err) {
        await this.rejected(action, req, laneId, err);
        throw err;
      }
      await this.writeAudit("planned", action, req, laneId, flags.forced ? { details: { forced: true } } : {});
      await this.writeAudit("started", action, req, laneId);
      try {
        await act(o);
      } catch (err) {
        await this.finalAudit(err instanceof RejectError ? "rejected" : "failed", action, req, laneId, {
          reasonCode: errorCode(err),
          message: errorMessage(err),
        });
        throw err;
      }
      await this.finalAudit("succeeded", action, req, laneId);
      return this.observe(laneId, { evidence: false });
    });
  }

  // ---------------------------------------------------------------------------------------- observation

  /** What the agent knows about one lane, with local job evidence. */
  async inspect(laneId: string): Promise<LaneObservation> {
    validateLaneId(laneId);
    return this.observe(laneId, { evidence: true });
  }

  /** Every managed lane (verified `lane.json`), optionally with job evidence (a `/proc` scan per lane). */
  async list(opts: { evidence?: boolean } = {}): Promise<LaneObservation[]> {
    const ids = await this.opts.dirs.listIds();
    const out: LaneObservation[] = [];
    const byBackend = new Map<BackendName, string[]>();
    const records = new Map<string, LaneRecord>();
    for (const id of ids) {
      const rec = await this.cachedRecord(id);
      if (!rec) continue;
      records.set(id, rec);
      byBackend.set(rec.backend, [...(byBackend.get(rec.backend) ?? []), id]);
    }
    const statuses = new Map<string, RuntimeStatus>();
    for (const [backend, laneIds] of byBackend) {
      const rt = this.opts.runtimes[backend];
      if (!rt) continue;
      const got = await rt.inspectMany(laneIds).catch(() => new Map<string, RuntimeStatus>());
      for (const [k, v] of got) statuses.set(k, v);
    }
    const holds = await listHolds(this.opts.stateDir);
    for (const id of ids) {
      const rec = records.get(id);
      if (!rec) continue;
      out.push(await this.buildObservation(rec, statuses.get(id), holds.get(id), opts.evidence === true));
    }
    return out;
  }

  private async cachedRecord(laneId: string): Promise<LaneRecord | undefined> {
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

  private async observe(laneId: string, opts: { evidence: boolean }): Promise<LaneObservation> {
    const record = await this.opts.dirs.read(laneId);
    const rt = this.runtimeFor(record.backend);
    const status = await rt.inspect(laneId);
    return this.buildObservation(record, status, await readHold(this.opts.stateDir, laneId), opts.evidence);
  }

  private async buildObservation(record: LaneRecord, status: RuntimeStatus | undefined, hold: LaneHold | undefined, evidence: boolean): Promise<LaneObservation> {
    const st = await this.state(record.laneId).catch(() => initialLaneState(record.laneId, 0));
    const rt = this.opts.runtimes[record.backend];
    let jobRunning = false;
    if (evidence && rt && (status?.activity === "running" || status?.activity === "stopping")) {
      jobRunning = await rt.jobEvidence(record.laneId).then(
        (e) => e.jobRunning,
        () => false,
      );
    }
    const pending = await this.journal.get(record.laneId).catch(() => undefined);
    let state: LaneStateEnum = STATE_TO_ENUM[st.state];
    if (pending?.op === "create") state = LaneStateEnum.LANE_STATE_CREATING;
    else if (pending?.op === "remove") state = LaneStateEnum.LANE_STATE_REMOVING;
    else if (st.state !== "needs-attention" && st.state !== "idle-unarmed" && status) {
      if (status.activity === "running") state = LaneStateEnum.LANE_STATE_RUNNING;
      else if (status.activity === "missing") state = LaneStateEnum.LANE_STATE_FAILED;
      else if (st.desired === "running" && (status.activity === "stopped" || status.activity === "failed")) state = LaneStateEnum.LANE_STATE_FAILED;
      else if (status.activity === "stopped") state = LaneStateEnum.LANE_STATE_STOPPED;
    }
    return {
      laneId: record.laneId,
      scope: record.scope,
      pool: record.pool,
      backend: backendEnum(record.backend),
      mode: modeEnum(record.mode),
      runtimeName: record.runtimeName,
      state,
      health: HEALTH_TO_ENUM[st.health],
      jobRunning,
      runnerId: st.runnerId,
      labels: [...record.labels],
      held: hold !== undefined,
      holdReason: hold?.reason ?? "",
      draining: st.draining,
      restartsInWindow: pruneRestarts(st.restarts, this.clock.now(), this.opts.health.windowMs).length,
      attentionReason: st.attentionReason,
      recoveryNote: st.recoveryNote,
      runnerVersion: record.runnerVersion,
      image: record.image,
      stateSinceMs: st.stateSinceMs,
      lastExitCode: status?.exitCode ?? st.lastExitCode,
      runnerName: st.runnerName || record.laneId,
    };
  }

  // -------------------------------------------------------------------------------------------- health

  /**
   * One pass of the health loop over every lane: audit local holds once, wipe used secrets, restart dead runners
   * with backoff, and stop restarting (needs-attention) on a crash loop, a deleted registration or a vanished
   * unit. Lanes with an operation in flight are skipped this pass.
   */
  async superviseOnce(): Promise<void> {
    const ids = await this.opts.dirs.listIds();
    const byBackend = new Map<BackendName, LaneRecord[]>();
    for (const id of ids) {
      const rec = await this.cachedRecord(id);
      if (rec) byBackend.set(rec.backend, [...(byBackend.get(rec.backend) ?? []), rec]);
    }
    const holds = await listHolds(this.opts.stateDir);
    const work: Promise<void>[] = [];
    for (const [backend, recs] of byBackend) {
      const rt = this.opts.runtimes[backend];
      if (!rt) continue;
      let statuses: Map<string, RuntimeStatus>;
      try {
        statuses = await rt.inspectMany(recs.map((r) => r.laneId));
      } catch (err) {
        this.log.warn({ backend, err: errorMessage(err) }, "health: cannot inspect lanes");
        continue;
      }
      for (const rec of recs) {
        if (this.mutex.busy(rec.laneId)) continue;
        const status = statuses.get(rec.laneId);
        if (!status) continue;
        work.push(
          this.mutex
            .run(rec.laneId, () => this.superviseLane(rec, rt, status, holds.get(rec.laneId)))
            .catch((err: unknown) => this.log.warn({ laneId: rec.laneId, err: errorMessage(err) }, "health: lane check failed")),
        );
      }
    }
    await Promise.all(work);
  }

  private async superviseLane(rec: LaneRecord, rt: LaneRuntime, status: RuntimeStatus, hold: LaneHold | undefined): Promise<void> {
    const laneId = rec.laneId;
    if (await this.journal.get(laneId)) return;
    let st = await this.state(laneId);
    const holdReason = hold ? hold.reason : null;
    if (holdReason !== st.auditedHold) {
      // A local hold or release placed with the CLI: audit it once, from the single audit writer.
      await this.writeAudit("succeeded", holdReason !== null ? "hold" : "release", { operationId: "local" }, laneId, {
        ...(holdReason ? { message: `local hold: ${holdReason}` } : { message: "local hold released" }),
        details: { by: hold?.by ?? "local-operator" },
      });
      st = await this.setState(laneId, { auditedHold: holdReason });
    }
    const lane: RuntimeLane = { record: rec, laneDir: this.opts.dirs.dir(laneId) };
    if (status.activity === "running" && rec.mode === "ephemeral" && (await this.opts.dirs.envHasContent(laneId).catch(() => false))) {
      // The JIT config is needed only until the runner wrote .runner; then it must not stay on disk.
      if (await rt.runnerSettings(lane).catch(() => undefined)) await rt.clearSecrets(laneId);
    }
    if (st.desired !== "running" || hold || st.state === "needs-attention") {
      const observed: LaneStateName = st.state === "needs-attention" ? "needs-attention" : status.activity === "running" ? "running" : "stopped";
      if (observed !== st.state && st.state !== "removing") await this.setState(laneId, { state: observed });
      return;
    }
    if (st.state === "idle-unarmed" && status.activity !== "running") return;
    const now = this.clock.now();
    const down = status.activity !== "running";
    const decision = decideHealth({
      state: st,
      mode: rec.mode,
      activity: status.activity,
      nowMs: now,
      policy: this.opts.health,
      console: down ? await rt.consoleTail(lane).catch(() => "") : "",
      runnerConfigured: down
        ? await rt.runnerSettings(lane).then(
            (s) => s !== undefined,
            () => undefined,
          )
        : true,
    });
    const exit = status.exitCode !== undefined ? { lastExitCode: status.exitCode } : {};
    switch (decision.kind) {
      case "healthy":
        if (st.state !== "running" || st.health !== "healthy") await this.setState(laneId, { state: "running", health: "healthy", nextRestartAtMs: 0 });
        return;
      case "wait":
        return;
      case "schedule":
        await this.setState(laneId, { state: "failed", health: "restarting", nextRestartAtMs: decision.atMs, ...exit });
        return;
      case "idle-unarmed":
        await this.setState(laneId, { state: "idle-unarmed", health: "healthy", ...exit });
        return;
      case "attention": {
        const restarts = pruneRestarts(st.restarts, now, this.opts.health.windowMs);
        await this.setState(laneId, {
          state: "needs-attention",
          health: decision.health,
          attentionReason: decision.reason,
          recoveryNote: this.attention(decision.reason, rec, { restarts: restarts.length }),
          nextRestartAtMs: 0,
          ...exit,
        });
        await this.finalAudit("failed", "health", { operationId: "health" }, laneId, {
          reasonCode: decision.reason,
          message: `lane needs attention: ${decision.reason}`,
        });
        this.log.warn({ laneId, reason: decision.reason }, "lane needs attention");
        return;
      }
      case "restart": {
        // Re-verify lane.json right before acting; the runtime re-checks its own marker in start().
        await this.opts.dirs.read(laneId, { backend: rec.backend, runtimeName: rec.runtimeName });
        const ctx = { operationId: "health" };
        await this.writeAudit("planned", "health-restart", ctx, laneId, { details: { lastExitCode: status.exitCode ?? -1 } });
        await this.writeAudit("started", "health-restart", ctx, laneId);
        const restarts = [...pruneRestarts(st.restarts, now, this.opts.health.windowMs), now];
        await this.setState(laneId, { restarts, health: "restarting", nextRestartAtMs: 0, ...exit });
        try {
          await rt.start(laneId);
        } catch (err) {
          await this.finalAudit("failed", "health-restart", ctx, laneId, { reasonCode: errorCode(err), message: errorMessage(err) });
          await this.setState(laneId, { state: "failed" });
          return;
        }
        await this.setState(laneId, { state: "running" });
        await this.finalAudit("succeeded", "health-restart", ctx, laneId, { details: { restartsInWindow: restarts.length } });
        this.log.info({ laneId, restartsInWindow: restarts.length }, "health restart");
        return;
      }
    }
  }

  // ------------------------------------------------------------------------------------------- recovery

  /**
   * Finish or roll back every operation a crash interrupted. Rules: nothing registered yet → roll back (delete
   * unit/container and directory); registered → roll forward without any secret (start the lane); a remove
   * interrupted before deregistration → keep the lane stopped and mark it needs-attention (the remove token is
   * never stored); after deregistration → finish deleting. A `config.sh` still running from the dead agent is
   * killed first.
   */
  async recover(): Promise<RecoveryAction[]> {
    const done: RecoveryAction[] = [];
    for (const laneId of await this.journal.pending()) {
      const entry = await this.journal.get(laneId).catch(() => undefined);
      if (!entry) {
        await this.journal.clear(laneId);
        continue;
      }
      const ctx = { operationId: entry.operationId };
      await this.writeAudit("planned", `recover-${entry.op}`, ctx, laneId, { details: { step: entry.step } });
      await this.writeAudit("started", `recover-${entry.op}`, ctx, laneId);
      const res = await this.mutex.run(laneId, () => this.recoverOne(entry)).catch(
        (err: unknown): RecoveryAction => ({
          laneId,
          op: entry.op,
          step: entry.step,
          outcome: "needs-attention",
          message: `recovery of the interrupted ${entry.op} failed: ${errorMessage(err)}; the journal entry is kept for the next start`,
        }),
      );
      done.push(res);
      await this.finalAudit(res.outcome === "needs-attention" ? "failed" : "succeeded", `recover-${entry.op}`, ctx, laneId, {
        reasonCode: res.outcome === "needs-attention" ? (entry.op === "create" ? "CREATE_INCOMPLETE" : "REMOVE_INCOMPLETE") : "",
        message: res.message,
        details: { step: entry.step, outcome: res.outcome },
      });
      this.log.warn({ laneId, op: entry.op, step: entry.step, outcome: res.outcome }, "recovered interrupted operation");
    }
    return done;
  }

  private async killStrayChild(entry: JournalEntry): Promise<void> {
    if (!entry.child) return;
    if (await isSameProcess(entry.child.pid, entry.child.startTime)) {
      try {
        process.kill(entry.child.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
      for (let i = 0; i < 50 && (await isSameProcess(entry.child.pid, entry.child.startTime)); i++) await new Promise((r) => setTimeout(r, 20));
    }
  }

  private async recoverOne(entry: JournalEntry): Promise<RecoveryAction> {
    const laneId = entry.laneId;
    const runtime = this.runtimeFor(entry.backend);
    const act = (outcome: RecoveryAction["outcome"], message: string): RecoveryAction => ({ laneId, op: entry.op, step: entry.step, outcome, message });
    await this.killStrayChild(entry);
    const record = await this.opts.dirs.read(laneId).catch(() => undefined);
    const lane: RuntimeLane | undefined = record ? { record, laneDir: this.opts.dirs.dir(laneId) } : undefined;
    const registered = lane ? (await runtime.runnerSettings(lane).catch(() => undefined)) !== undefined : false;

    if (entry.op === "create") {
      const runtimeOwned = (await runtime.checkOwnership(laneId).catch(() => "foreign" as const)) === "owned";
      const canRollForward = record && runtimeOwned && (registered || (entry.mode === "ephemeral" && entry.step !== "begin" && entry.step !== "dir"));
      if (entry.mode === "persistent" ? registered && record && runtimeOwned : canRollForward && (entry.step === "configured" || entry.step === "started")) {
        try {
          await runtime.start(laneId);
          const settings = await runtime.runnerSettings(lane as RuntimeLane).catch(() => undefined);
          await this.setState(laneId, { desired: "running", state: "running", health: "unknown", runnerId: settings?.agentId ?? 0, runnerName: settings?.agentName ?? laneId });
          await this.journal.clear(laneId);
          return act("rolled-forward", `create of ${laneId} was interrupted after step ${entry.step}; the runner is registered, so the lane was started`);
        } catch (err) {
          if (record) {
            await this.setState(laneId, {
              desired: "stopped",
              state: "needs-attention",
              attentionReason: "CREATE_INCOMPLETE",
              recoveryNote: this.attention("CREATE_INCOMPLETE", record),
            });
          }
          await this.journal.clear(laneId);
          return act("needs-attention", `create of ${laneId} was interrupted and could not be finished: ${errorMessage(err)}`);
        }
      }
      if (registered && record) {
        // Registered but the unit/container is gone or not ours: keep the directory and say so.
        await this.setState(laneId, { desired: "stopped", state: "needs-attention", attentionReason: "CREATE_INCOMPLETE", recoveryNote: this.attention("CREATE_INCOMPLETE", record) });
        await this.journal.clear(laneId);
        return act("needs-attention", `create of ${laneId} was interrupted after registration; kept for the operator`);
      }
      await this.rollbackCreate(laneId, runtime);
      await this.journal.clear(laneId);
      if (entry.child) {
        return act(
          "rolled-back",
          `create of ${laneId} was interrupted while config.sh ran (killed); everything it created was removed. If GitHub shows a runner named ${laneId} without a lane, ` +
            "it is an orphaned registration: `lanekeeper apply` deletes it",
        );
      }
      return act("rolled-back", `create of ${laneId} was interrupted after step ${entry.step} before any registration; everything it created was removed`);
    }

    if (entry.op === "remove") {
      const deregistered = entry.step === "deregistered" || entry.step === "runtime-removed" || entry.step === "dir-removed";
      // config.sh remove deletes .runner once GitHub deleted the registration: if it is gone, deregistration happened.
      if (deregistered || (entry.step === "stopped" && entry.child !== undefined && !registered && record !== undefined)) {
        if ((await runtime.checkOwnership(laneId).catch(() => "foreign" as const)) === "owned") await runtime.remove(laneId);
        if (record) await this.opts.dirs.remove(laneId);
        await this.forget(laneId);
        await this.journal.clear(laneId);
        return act("rolled-forward", `remove of ${laneId} was interrupted after step ${entry.step}; the deletion was finished`);
      }
      if (!record) {
        await this.forget(laneId);
        await this.journal.clear(laneId);
        return act("rolled-forward", `remove of ${laneId} was interrupted; its directory is gone`);
      }
      if (!registered && entry.step === "stopped") {
        // Nothing to deregister (never configured): finishing needs no token.
        if ((await runtime.checkOwnership(laneId).catch(() => "foreign" as const)) === "owned") await runtime.remove(laneId);
        await this.opts.dirs.remove(laneId);
        await this.forget(laneId);
        await this.journal.clear(laneId);
        return act("rolled-forward", `remove of ${laneId} was interrupted; the runner was not registered, so the deletion was finished`);
      }
      if (entry.step === "begin") {
        const status = await runtime.inspect(laneId).catch(() => undefined);
        if (status?.activity === "running") {
          // Nothing was stopped yet: the lane is intact and keeps running; the coordinator retries the remove.
          await this.setState(laneId, { desired: "running", state: "running" });
          await this.journal.clear(laneId);
          return act("rolled-back", `remove of ${laneId} was interrupted before anything changed; the lane keeps running`);
        }
        // It may have been stopped before the crash; keep it stopped: a remove was asked for.
        await this.setState(laneId, { desired: "stopped", state: "needs-attention", attentionReason: "REMOVE_INCOMPLETE", recoveryNote: this.attention("REMOVE_INCOMPLETE", record) });
        await this.journal.clear(laneId);
        return act("needs-attention", `remove of ${laneId} was interrupted before deregistration; the lane is kept stopped`);
      }
      await this.setState(laneId, { desired: "stopped", state: "needs-attention", attentionReason: "REMOVE_INCOMPLETE", recoveryNote: this.attention("REMOVE_INCOMPLETE", record) });
      await this.journal.clear(laneId);
      return act("needs-attention", `remove of ${laneId} was interrupted before deregistration; the lane is kept stopped`);
    }

    // arm: a JIT config may sit in the env file; wipe it, and leave the lane idle for a fresh one.
    await runtime.clearSecrets(laneId).catch(() => undefined);
    if (entry.step === "started" && lane) {
      await this.setState(laneId, { desired: "running", state: "running" });
      await this.journal.clear(laneId);
      return act("rolled-forward", `arm of ${laneId} had started the runner`);
    }
    await this.setState(laneId, { state: "idle-unarmed" });
    await this.journal.clear(laneId);
    return act("rolled-back", `arm of ${laneId} was interrupted; the JIT config was wiped and the lane waits for a fresh one`);
  }
}
