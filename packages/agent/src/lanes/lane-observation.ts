/**
 * What the agent reports about its lanes: the `LaneObservation` of one lane or of all of them, built from the
 * signed `lane.json`, the runtime's status, the agent's lane state, holds, a pending journal entry and, when asked,
 * local job evidence (a live `Runner.Worker`).
 */
import { Health, LaneState as LaneStateEnum, type LaneObservation, validateLaneId } from "@lanekeeper/shared";
import { pruneRestarts } from "./health-policy.js";
import type { LaneCore } from "./lane-core.js";
import { listHolds, readHold, type LaneHold } from "./lane-holds.js";
import { backendEnum, modeEnum, type BackendName, type LaneRecord } from "./lane-marker.js";
import type { RuntimeStatus } from "../runtimes/lane-runtime.js";
import { initialLaneState, type HealthName, type LaneStateName } from "./lane-state.js";

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

/** Builds lane observations. */
export class LaneObserver {
  constructor(private readonly core: LaneCore) {}

  /** What the agent knows about one lane, with local job evidence. */
  async inspect(laneId: string): Promise<LaneObservation> {
    validateLaneId(laneId);
    return this.observe(laneId, { evidence: true });
  }

  /** Every managed lane (verified `lane.json`), optionally with job evidence (a `/proc` scan per lane). */
  async list(opts: { evidence?: boolean } = {}): Promise<LaneObservation[]> {
    const ids = await this.core.opts.dirs.listIds();
    const out: LaneObservation[] = [];
    const byBackend = new Map<BackendName, string[]>();
    const records = new Map<string, LaneRecord>();
    for (const id of ids) {
      const rec = await this.core.cachedRecord(id);
      if (!rec) continue;
      records.set(id, rec);
      byBackend.set(rec.backend, [...(byBackend.get(rec.backend) ?? []), id]);
    }
    const statuses = new Map<string, RuntimeStatus>();
    for (const [backend, laneIds] of byBackend) {
      const rt = this.core.opts.runtimes[backend];
      if (!rt) continue;
      const got = await rt.inspectMany(laneIds).catch(() => new Map<string, RuntimeStatus>());
      for (const [k, v] of got) statuses.set(k, v);
    }
    const holds = await listHolds(this.core.opts.stateDir);
    for (const id of ids) {
      const rec = records.get(id);
      if (!rec) continue;
      out.push(await this.build(rec, statuses.get(id), holds.get(id), opts.evidence === true));
    }
    return out;
  }

  /** One lane, re-reading (and re-verifying) its `lane.json`. */
  async observe(laneId: string, opts: { evidence: boolean }): Promise<LaneObservation> {
    const record = await this.core.opts.dirs.read(laneId);
    const rt = this.core.runtimeFor(record.backend);
    const status = await rt.inspect(laneId);
    return this.build(record, status, await readHold(this.core.opts.stateDir, laneId), opts.evidence);
  }

  private async build(record: LaneRecord, status: RuntimeStatus | undefined, hold: LaneHold | undefined, evidence: boolean): Promise<LaneObservation> {
    const st = await this.core.state(record.laneId).catch(() => initialLaneState(record.laneId, 0));
    const rt = this.core.opts.runtimes[record.backend];
    let jobRunning = false;
    if (evidence && rt && (status?.activity === "running" || status?.activity === "stopping")) {
      jobRunning = await rt.jobEvidence(record.laneId).then(
        (e) => e.jobRunning,
        () => false,
      );
    }
    const pending = await this.core.journal.get(record.laneId).catch(() => undefined);
    let state: LaneStateEnum = STATE_TO_ENUM[st.state];
    if (pending?.op === "create") state = LaneStateEnum.LANE_STATE_CREATING;
    else if (pending?.op === "remove") state = LaneStateEnum.LANE_STATE_REMOVING;
    else if (st.state !== "needs-attention" && st.state !== "idle-unarmed" && status) {
      if (status.activity === "running") state = LaneStateEnum.LANE_STATE_RUNNING;
      else if (status.activity === "missing") state = LaneStateEnum.LANE_STATE_FAILED;
      else if (st.desired === "running" && (status.activity === "stopped" || status.activity === "failed")) {
        // An ephemeral runner that finished its one job exits and deletes its .runner: it is idle, waiting for a
        // fresh JIT config, also before the supervisor's next pass records that. Reported as failed in between, the
        // coordinator (poked by that very exit) would plan a restart that can never come online.
        const finishedEphemeral =
          record.mode === "ephemeral" && rt !== undefined && (await rt.runnerSettings({ record, laneDir: this.core.opts.dirs.dir(record.laneId) }).catch(() => null)) === undefined;
        state = finishedEphemeral ? LaneStateEnum.LANE_STATE_IDLE_UNARMED : LaneStateEnum.LANE_STATE_FAILED;
      }
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
      restartsInWindow: pruneRestarts(st.restarts, this.core.clock.now(), this.core.opts.health.windowMs).length,
      attentionReason: st.attentionReason,
      recoveryNote: st.recoveryNote,
      runnerVersion: record.runnerVersion,
      image: record.image,
      stateSinceMs: st.stateSinceMs,
      lastExitCode: status?.exitCode ?? st.lastExitCode,
      runnerName: st.runnerName || record.laneId,
    };
  }
}
