/**
 * Upgrading (or rolling back) the runner version of one systemd lane in place, for the coordinator's rolling
 * upgrade: only a lane that is drained or stopped and has no job running, re-checked at the instant of stopping;
 * the runner directory is swapped for the new release with the lane's registration (`.runner`, `.credentials`)
 * and work directory kept, `lane.json` is re-signed with the new version, and a lane that was running is started
 * again. A rollback is the same operation naming the previous version. Container lanes change image by being
 * replaced, not upgraded in place.
 *
 * Crash safety: every step is journaled (`begin`, `stopped`, `staged`, `swapping`, `swapped`, `recorded`) and the
 * re-signed `lane.json` is the commit point; the old runner tree is kept as `runner.old/` until then. A crash or a
 * failure anywhere is settled by `upgrade-recovery.ts`: forward when `lane.json` names the new version, back to the
 * old tree otherwise, so the files always match the recorded version the coordinator plans rollbacks from.
 */
import { RejectError, RejectReason, validateLaneId, validateRunnerVersion, type LaneObservation, type RunnerDownload } from "@lanekeeper/shared";
import { errorCode, errorMessage, type LaneCore, type OperationContext, type OwnedLane } from "./lane-core.js";
import type { LaneObserver } from "./lane-observation.js";
import type { LaneRecovery } from "./lane-recovery.js";
import type { LaneState } from "./lane-state.js";
import { settleRunnerSwap, type UpgradeEntry } from "./upgrade-recovery.js";

/** Upgrade one lane's runner. */
export interface UpgradeLaneRequest extends OperationContext {
  readonly laneId: string;
  /** systemd lanes: the version to run. */
  readonly runnerVersion: string;
  /** Where to fetch it; absent = operator-staged `<runnerDist>/<version>/`. */
  readonly runnerDownload?: RunnerDownload | undefined;
  /** container lanes: the image (not upgraded in place by this agent). */
  readonly image?: string;
}

/** The upgrade operation (shares the lane mutex, state, audit, journal and prune of {@link LaneCore}). */
export class LaneUpgrader {
  constructor(
    private readonly core: LaneCore,
    private readonly observer: LaneObserver,
    private readonly recovery: LaneRecovery,
  ) {}

  async upgrade(req: UpgradeLaneRequest): Promise<LaneObservation> {
    const laneId = validateLaneId(req.laneId);
    return this.core.mutex.run(laneId, async () => {
      const action = "upgrade";
      let o: OwnedLane;
      let prev: LaneState;
      try {
        // An upgrade of this lane that was interrupted and not settled yet (its recovery at start failed): settle it
        // first, so this upgrade (a retry, or a rollback) starts from files and a lane.json that agree.
        const pending = await this.core.journal.get(laneId);
        if (pending?.op === "upgrade") await this.recovery.recoverEntry(pending);
        o = await this.core.owned(laneId);
        await this.core.assertNotHeld(laneId);
        await this.core.assertNoPendingOperation(laneId);
        if (o.record.backend !== "systemd" || o.runtime.swapRunner === undefined) {
          throw new RejectError(RejectReason.NOT_ALLOWED_BACKEND, "only systemd lanes are upgraded in place; replace a container lane with one of the new image");
        }
        validateRunnerVersion(req.runnerVersion);
        prev = await this.core.state(laneId);
        if (o.record.runnerVersion !== req.runnerVersion) {
          if (!prev.draining && prev.desired !== "stopped") {
            throw new RejectError(RejectReason.LANE_BUSY, `lane ${laneId} is neither draining nor stopped; drain it first`, { details: { laneId } });
          }
          if ((await o.runtime.jobEvidence(laneId)).jobRunning) {
            throw new RejectError(RejectReason.LANE_BUSY, `lane ${laneId} is running a job`, { details: { laneId } });
          }
        }
      } catch (err) {
        await this.core.rejected(action, req, laneId, err);
        throw err;
      }
      const from = o.record.runnerVersion;
      const details = { from, to: req.runnerVersion, download: req.runnerDownload !== undefined };
      await this.core.writeAudit("planned", action, req, laneId, { details });
      await this.core.writeAudit("started", action, req, laneId);
      if (from === req.runnerVersion) {
        // Re-issued after a timeout or a crash the agent rolled forward, or already there: nothing to change.
        await this.core.finalAudit("succeeded", action, req, laneId, { details: { ...details, unchanged: true } });
        return this.observer.observe(laneId, { evidence: false });
      }
      const wasRunning = prev.desired === "running";
      const swapRunner = o.runtime.swapRunner.bind(o.runtime);
      // Every step is journaled before the next one starts, so a crash anywhere is settled by `recoverUpgrade`.
      let entry: UpgradeEntry = {
        laneId,
        operationId: req.operationId ?? "",
        backend: o.record.backend,
        mode: o.record.mode,
        startedAtMs: this.core.clock.now(),
        op: "upgrade",
        step: "begin",
        from,
        to: req.runnerVersion,
        wasRunning,
      };
      const journal = async (step: UpgradeEntry["step"]): Promise<void> => {
        entry = { ...entry, step };
        await this.core.journal.write(entry);
      };
      let committed = false;
      try {
        await journal("begin");
        // Desired first, so the health loop does not restart the lane between the stop and the swap.
        await this.core.setState(laneId, { desired: "stopped" });
        if (o.runtimeExists && wasRunning) await o.runtime.stop(laneId, this.core.jobGuard(o.runtime, laneId, false));
        await journal("stopped");
        await swapRunner(o.lane, req.runnerVersion, req.runnerDownload, journal);
        // The commit point: from here on the lane runs the new version, whatever happens next.
        const record = { ...o.record, runnerVersion: req.runnerVersion };
        await this.core.opts.dirs.writeRecord(record);
        committed = true;
        this.core.records.set(laneId, record);
        await journal("recorded");
        await this.core.opts.dirs.discardSpareRunners(laneId);
        if (wasRunning) {
          await o.runtime.start(laneId);
          await this.core.setState(laneId, { desired: "running", state: "running", health: "unknown", restarts: [], nextRestartAtMs: 0 });
        } else {
          await this.core.setState(laneId, { state: "stopped" });
        }
        await this.core.journal.clear(laneId);
      } catch (err) {
        const restored = await this.settleFailed(entry, prev, wasRunning, committed);
        await this.core.finalAudit(err instanceof RejectError ? "rejected" : "failed", action, req, laneId, {
          reasonCode: errorCode(err),
          message: `${errorMessage(err)}; ${restored}`,
        });
        throw err;
      }
      await this.core.finalAudit("succeeded", action, req, laneId, { details });
      // The version the lane came from is its rollback target, and GitHub no longer lists it (the rollback intent
      // names no download): keep it until the next prune, however many lanes still run it.
      await this.core.pruneRunners(from === "" ? [] : [from]);
      return this.observer.observe(laneId, { evidence: false });
    });
  }

  /**
   * After a failure inside the upgrade (the agent still running): make the files agree with `lane.json` the way
   * crash recovery would, then put the lane back as it was. Returns what the lane is left with, for the audit.
   */
  private async settleFailed(entry: UpgradeEntry, prev: LaneState, wasRunning: boolean, committed: boolean): Promise<string> {
    const laneId = entry.laneId;
    let settled: Awaited<ReturnType<typeof settleRunnerSwap>> | undefined;
    try {
      settled = await settleRunnerSwap(this.core, entry);
    } catch (err) {
      this.core.log.error({ laneId, step: entry.step, err: errorMessage(err) }, "settling a failed upgrade failed; the journal entry is kept for the next start");
      return `the runner swap could not be settled (${errorMessage(err)}); the agent settles it at its next start or the next upgrade of this lane`;
    }
    if (settled.settlement === "files-lost") {
      const record = this.core.records.get(laneId);
      if (record) {
        await this.core.setState(laneId, { state: "needs-attention", attentionReason: "UPGRADE_INCOMPLETE", recoveryNote: this.core.attention("UPGRADE_INCOMPLETE", record) }).catch(() => undefined);
      }
      await this.core.journal.clear(laneId).catch(() => undefined);
      return "the lane's runner files are gone; it is kept stopped and needs attention";
    }
    await this.core.journal.clear(laneId).catch(() => undefined);
    if (committed || settled.settlement === "rolled-forward") return "the new runner is in place but the lane did not start";
    // The old runner is back in place: put the lane back as it was.
    await this.core.setState(laneId, { desired: prev.desired }).catch(() => undefined);
    if (wasRunning) await this.core.runtimeFor(entry.backend).start(laneId).catch(() => undefined);
    return "the lane keeps its previous runner";
  }
}
