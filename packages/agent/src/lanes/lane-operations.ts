/**
 * The lane operations of one host: create, start, stop, restart, remove, drain/undrain, hold/release and arm.
 * Each takes a typed request, runs serialized per lane, re-checks all host-side ownership markers (signed
 * `lane.json`, unit keys or container labels, no symlinks) right before it acts, writes `planned`, `started` and a
 * terminal record to the audit chain, and journals multi-step work (create, remove, arm) so {@link LaneRecovery}
 * can finish or roll back what a crash interrupted.
 *
 * Secrets (registration token, JIT config, remove token) arrive as plaintext Buffers; they go only into a child's
 * environment, a 0600 env file or a 0600 file copied into a container, and never into logs, audit records,
 * argv, results or the journal. The caller owns the Buffers (and should wipe them).
 */
import { Backend, type LaneObservation, type LaneSpec, RejectError, RejectReason, validateLaneId } from "@lanekeeper/shared";
import { errorCode, errorMessage, type LaneCore, type OperationContext, type OwnedLane } from "./lane-core.js";
import { cleanHoldReason, removeHold, writeHold } from "./lane-holds.js";
import type { LaneRecord } from "./lane-marker.js";
import type { LaneObserver } from "./lane-observation.js";
import type { DeregisterOutcome, LaneRuntime, RuntimeLane } from "../runtimes/lane-runtime.js";
import { laneRecordFromSpec, validateSecret } from "./lane-spec.js";
import { initialLaneState } from "./lane-state.js";
import { MAX_SECRET_BYTES } from "../limits.js";

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

/** The mutating lane operations. */
export class LaneOperations {
  constructor(
    private readonly core: LaneCore,
    private readonly observer: LaneObserver,
  ) {}

  /** Create a lane: directory and signed `lane.json`, unit or container, registration, start. */
  async create(req: CreateLaneRequest): Promise<LaneObservation> {
    const laneId = validateLaneId(req.spec.laneId);
    return this.core.mutex.run(laneId, async () => {
      const action = "create";
      let record: LaneRecord;
      let runtime: LaneRuntime;
      let secret: Buffer;
      try {
        const backend = req.spec.backend === Backend.BACKEND_SYSTEMD ? "systemd" : req.spec.backend === Backend.BACKEND_CONTAINER ? "container" : undefined;
        if (!backend) throw new RejectError(RejectReason.NOT_ALLOWED_BACKEND, "the lane spec names no known backend");
        runtime = this.core.runtimeFor(backend);
        record = laneRecordFromSpec(req.spec, this.core.opts.hostId, (id) => runtime.runtimeName(id), this.core.clock.now());
        secret =
          record.mode === "persistent"
            ? validateSecret(req.registrationToken, "registration token", MAX_SECRET_BYTES)
            : validateSecret(req.jitConfig, "JIT config", MAX_SECRET_BYTES);
        await this.core.assertNoPendingOperation(laneId);
        if ((await this.core.opts.dirs.state(laneId)) !== "missing") {
          await this.core.opts.dirs.read(laneId);
          throw new RejectError(RejectReason.LANE_EXISTS, `lane ${laneId} exists already`, { details: { laneId } });
        }
        if ((await runtime.checkOwnership(laneId)) === "owned") {
          throw new RejectError(RejectReason.LANE_EXISTS, `${runtime.runtimeName(laneId)} exists already`, { details: { laneId } });
        }
        if (this.core.opts.maxLanes !== undefined && (await this.core.opts.dirs.listIds()).length >= this.core.opts.maxLanes) {
          throw new RejectError(RejectReason.MAX_LANES, `this host has reached its maximum of ${this.core.opts.maxLanes} lanes`);
        }
      } catch (err) {
        await this.core.rejected(action, req, laneId, err);
        throw err;
      }
      const details = { backend: record.backend, mode: record.mode, scope: record.scope, pool: record.pool };
      await this.core.writeAudit("planned", action, req, laneId, { details });
      await this.core.writeAudit("started", action, req, laneId);
      const base = { laneId, operationId: req.operationId ?? "", backend: record.backend, mode: record.mode, startedAtMs: this.core.clock.now() };
      const lane: RuntimeLane = { record, laneDir: this.core.opts.dirs.dir(laneId), runnerDownload: req.spec.runnerDownload };
      let childWrite: Promise<void> = Promise.resolve();
      const onChild = (pid: number): Promise<void> => {
        childWrite = this.core.processes.startTime(pid).then((startTime) =>
          startTime !== undefined ? this.core.journal.write({ ...base, op: "create", step: "runtime", child: { pid, startTime } }, "child") : undefined,
        );
        return childWrite;
      };
      await this.core.journal.write({ ...base, op: "create", step: "begin" });
      try {
        await this.core.opts.dirs.create(record);
        await this.core.journal.write({ ...base, op: "create", step: "dir" });
        await this.core.states.put({ ...initialLaneState(laneId, this.core.clock.now()), state: "creating" });
        await runtime.create(lane);
        await this.core.journal.write({ ...base, op: "create", step: "runtime" });
        if (record.mode === "persistent") await runtime.configure(lane, secret, onChild);
        else await runtime.armJit(lane, secret);
        await childWrite.catch(() => undefined);
        await this.core.journal.write({ ...base, op: "create", step: "configured" });
      } catch (err) {
        await childWrite.catch(() => undefined);
        // Nothing is registered (configure failed or never ran): undo everything this operation created.
        const rollback = await this.core.rollbackCreate(laneId, runtime).then(
          () => "rolled back",
          (e: unknown) => `rollback failed: ${errorMessage(e)}`,
        );
        await this.core.journal.clear(laneId);
        await this.core.finalAudit(err instanceof RejectError ? "rejected" : "failed", action, req, laneId, {
          reasonCode: errorCode(err),
          message: `${errorMessage(err)}; ${rollback}`,
        });
        throw err;
      }
      try {
        await runtime.start(laneId);
        await this.core.journal.write({ ...base, op: "create", step: "started" });
        const settings = record.mode === "persistent" ? await runtime.runnerSettings(lane).catch(() => undefined) : undefined;
        await this.core.setState(laneId, {
          desired: "running",
          state: "running",
          health: "healthy",
          runnerId: settings?.agentId ?? 0,
          runnerName: settings?.agentName ?? record.laneId,
        });
        await this.core.journal.clear(laneId);
        await this.core.finalAudit("succeeded", action, req, laneId, { details: { runnerId: settings?.agentId ?? 0 } });
      } catch (err) {
        // The runner is registered: keep the lane (no orphaned registration) and say what to do.
        await this.core.setState(laneId, {
          desired: "stopped",
          state: "needs-attention",
          attentionReason: "START_FAILED",
          recoveryNote: this.core.attention("START_FAILED", record),
        }).catch(() => undefined);
        await this.core.journal.clear(laneId);
        await this.core.finalAudit("failed", action, req, laneId, { reasonCode: errorCode(err), message: errorMessage(err) });
        throw err;
      }
      this.core.records.set(laneId, record);
      return this.observer.observe(laneId, { evidence: false });
    });
  }

  /** Start a stopped lane and keep it running (clears a needs-attention state). */
  async start(req: LaneRequest): Promise<LaneObservation> {
    return this.simpleOp("start", req, async (o) => {
      if (!o.runtimeExists) throw new RejectError(RejectReason.LANE_NOT_FOUND, `${o.record.runtimeName} does not exist`);
      await this.core.setState(req.laneId, { desired: "running", attentionReason: "", recoveryNote: "", restarts: [], nextRestartAtMs: 0, health: "unknown" });
      await o.runtime.start(req.laneId);
      await this.core.setState(req.laneId, { state: "running" });
    });
  }

  /** Stop a lane and keep it stopped. Refused with `JOB_RUNNING` while a job runs, unless forced. */
  async stop(req: StopLaneRequest): Promise<LaneObservation> {
    return this.simpleOp(
      "stop",
      req,
      async (o) => {
        if (!o.runtimeExists) throw new RejectError(RejectReason.LANE_NOT_FOUND, `${o.record.runtimeName} does not exist`);
        const prev = await this.core.state(req.laneId);
        // Desired first, so the health loop never restarts what is being stopped, even after a crash here.
        await this.core.setState(req.laneId, { desired: "stopped" });
        try {
          await o.runtime.stop(req.laneId, this.core.jobGuard(o.runtime, req.laneId, req.force));
        } catch (err) {
          await this.core.setState(req.laneId, { desired: prev.desired });
          throw err;
        }
        await this.core.setState(req.laneId, { state: "stopped", health: "unknown" });
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
        await o.runtime.restart(req.laneId, this.core.jobGuard(o.runtime, req.laneId, req.force));
        await this.core.setState(req.laneId, {
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
      await this.core.setState(req.laneId, { draining: true });
    });
  }

  /** Clear the draining mark. */
  async undrain(req: LaneRequest): Promise<LaneObservation> {
    return this.simpleOp("undrain", req, async () => {
      await this.core.setState(req.laneId, { draining: false });
    });
  }

  /** Put a hold on a lane (same file the local `lanekeeper-agent hold` writes). */
  async hold(req: HoldLaneRequest): Promise<LaneObservation> {
    return this.simpleOp(
      "hold",
      req,
      async () => {
        const reason = cleanHoldReason(req.reason);
        await writeHold(this.core.opts.stateDir, { laneId: req.laneId, reason, atMs: this.core.clock.now(), by: req.by ?? "intent" });
        await this.core.setState(req.laneId, { auditedHold: reason });
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
        await removeHold(this.core.opts.stateDir, req.laneId);
        await this.core.setState(req.laneId, { auditedHold: null });
      },
      { allowHeld: true },
    );
  }

  /** Give an idle ephemeral lane a fresh JIT config and start it. */
  async arm(req: ArmLaneRequest): Promise<LaneObservation> {
    return this.simpleOp("arm", req, async (o) => {
      if (o.record.mode !== "ephemeral") throw new RejectError(RejectReason.NOT_ALLOWED_ACTION, `lane ${req.laneId} is persistent; only ephemeral lanes are armed`);
      const st = await this.core.state(req.laneId);
      if (st.draining) throw new RejectError(RejectReason.NOT_ALLOWED_ACTION, `lane ${req.laneId} is draining; it is not re-armed`);
      const jit = validateSecret(req.jitConfig, "JIT config", MAX_SECRET_BYTES);
      const status = await o.runtime.inspect(req.laneId);
      if (status.activity === "running" || status.activity === "starting") {
        throw new RejectError(RejectReason.NOT_ALLOWED_ACTION, `lane ${req.laneId} is still running its runner; arm it when it is idle`);
      }
      const base = { laneId: req.laneId, operationId: req.operationId ?? "", backend: o.record.backend, mode: o.record.mode, startedAtMs: this.core.clock.now() };
      await this.core.journal.write({ ...base, op: "arm", step: "begin" });
      try {
        await o.runtime.armJit(o.lane, jit);
        await this.core.journal.write({ ...base, op: "arm", step: "armed" });
        await o.runtime.start(req.laneId);
        await this.core.journal.write({ ...base, op: "arm", step: "started" });
        await this.core.setState(req.laneId, { desired: "running", state: "running", health: "unknown", attentionReason: "", recoveryNote: "" });
      } catch (err) {
        await o.runtime.clearSecrets(req.laneId).catch(() => undefined);
        throw err;
      } finally {
        await this.core.journal.clear(req.laneId);
      }
    });
  }

  /**
   * Remove a lane: stop (refused while a job runs unless forced), deregister with the remove token, delete the
   * unit or container and the directory.
   */
  async remove(req: RemoveLaneRequest): Promise<RemoveLaneResult> {
    const laneId = validateLaneId(req.laneId);
    return this.core.mutex.run(laneId, async () => {
      const action = "remove";
      let o: OwnedLane;
      try {
        o = await this.core.owned(laneId);
        await this.core.assertNotHeld(laneId);
        await this.core.assertNoPendingOperation(laneId);
        if (req.removeToken !== undefined) validateSecret(req.removeToken, "remove token", MAX_SECRET_BYTES);
      } catch (err) {
        await this.core.rejected(action, req, laneId, err);
        throw err;
      }
      await this.core.writeAudit("planned", action, req, laneId, { details: { forced: req.force === true, withToken: req.removeToken !== undefined } });
      await this.core.writeAudit("started", action, req, laneId);
      const base = { laneId, operationId: req.operationId ?? "", backend: o.record.backend, mode: o.record.mode, startedAtMs: this.core.clock.now() };
      const prev = await this.core.state(laneId);
      let deregistration: RemoveLaneResult["deregistration"] = "skipped";
      let step = "begin";
      await this.core.journal.write({ ...base, op: "remove", step: "begin" });
      try {
        await this.core.setState(laneId, { desired: "stopped", state: "removing" });
        if (o.runtimeExists) await o.runtime.stop(laneId, this.core.jobGuard(o.runtime, laneId, req.force));
        await this.core.journal.write({ ...base, op: "remove", step: (step = "stopped") });
        if (req.removeToken !== undefined) {
          let childWrite: Promise<void> = Promise.resolve();
          deregistration = o.runtimeExists
            ? await o.runtime.deregister(o.lane, req.removeToken, (pid) => {
                childWrite = this.core.processes.startTime(pid).then((startTime) =>
                  startTime !== undefined
                    ? this.core.journal.write({ ...base, op: "remove", step: "stopped", child: { pid, startTime } }, "child")
                    : undefined,
                );
                return childWrite;
              })
            : "not-configured";
          await childWrite.catch(() => undefined);
        }
        await this.core.journal.write({ ...base, op: "remove", step: (step = "deregistered") });
        await o.runtime.remove(laneId);
        await this.core.journal.write({ ...base, op: "remove", step: (step = "runtime-removed") });
        await this.core.opts.dirs.remove(laneId);
        await this.core.journal.write({ ...base, op: "remove", step: (step = "dir-removed") });
        await this.core.forget(laneId);
        await this.core.journal.clear(laneId);
        await this.core.finalAudit("succeeded", action, req, laneId, { details: { deregistration } });
        await this.core.pruneRunners();
        return { laneId, deregistration };
      } catch (err) {
        await this.core.journal.clear(laneId).catch(() => undefined);
        if (step === "begin") {
          // Nothing was stopped (a job runs, or the stop failed): the lane is as it was.
          await this.core.setState(laneId, { desired: prev.desired, state: prev.state }).catch(() => undefined);
        } else if (step === "stopped") {
          await this.core.setState(laneId, {
            state: "needs-attention",
            attentionReason: "REMOVE_INCOMPLETE",
            recoveryNote: this.core.attention("REMOVE_INCOMPLETE", o.record),
          }).catch(() => undefined);
        }
        await this.core.finalAudit(err instanceof RejectError ? "rejected" : "failed", action, req, laneId, {
          reasonCode: errorCode(err),
          message: `${errorMessage(err)} (after step ${step})`,
        });
        throw err;
      }
    });
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
    return this.core.mutex.run(laneId, async () => {
      let o: OwnedLane;
      try {
        o = await this.core.owned(laneId);
        if (!flags.allowHeld) await this.core.assertNotHeld(laneId);
        await this.core.assertNoPendingOperation(laneId);
      } catch (err) {
        await this.core.rejected(action, req, laneId, err);
        throw err;
      }
      await this.core.writeAudit("planned", action, req, laneId, flags.forced ? { details: { forced: true } } : {});
      await this.core.writeAudit("started", action, req, laneId);
      try {
        await act(o);
      } catch (err) {
        await this.core.finalAudit(err instanceof RejectError ? "rejected" : "failed", action, req, laneId, {
          reasonCode: errorCode(err),
          message: errorMessage(err),
        });
        throw err;
      }
      await this.core.finalAudit("succeeded", action, req, laneId);
      return this.observer.observe(laneId, { evidence: false });
    });
  }
}
