/**
 * Upgrading (or rolling back) the runner version of one systemd lane in place, for the coordinator's rolling
 * upgrade: only a lane that is drained or stopped and has no job running, re-checked at the instant of stopping;
 * the runner directory is swapped for the new release with the lane's registration (`.runner`, `.credentials`)
 * and work directory kept, `lane.json` is re-signed with the new version, and a lane that was running is started
 * again. A rollback is the same operation naming the previous version. Container lanes change image by being
 * replaced, not upgraded in place.
 */
import { RejectError, RejectReason, validateLaneId, validateRunnerVersion, type LaneObservation, type RunnerDownload } from "@lanekeeper/shared";
import { errorCode, errorMessage, type LaneCore, type OperationContext, type OwnedLane } from "./lane-core.js";
import type { LaneObserver } from "./lane-observation.js";
import type { LaneState } from "./lane-state.js";

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

/** The upgrade operation (shares the lane mutex, state, audit and prune of {@link LaneCore}). */
export class LaneUpgrader {
  constructor(
    private readonly core: LaneCore,
    private readonly observer: LaneObserver,
  ) {}

  async upgrade(req: UpgradeLaneRequest): Promise<LaneObservation> {
    const laneId = validateLaneId(req.laneId);
    return this.core.mutex.run(laneId, async () => {
      const action = "upgrade";
      let o: OwnedLane;
      let prev: LaneState;
      try {
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
        // Re-issued after a timeout, or already there: nothing to change.
        await this.core.finalAudit("succeeded", action, req, laneId, { details: { ...details, unchanged: true } });
        return this.observer.observe(laneId, { evidence: false });
      }
      const wasRunning = prev.desired === "running";
      let swapped = false;
      try {
        // Desired first, so the health loop does not restart the lane between the stop and the swap.
        await this.core.setState(laneId, { desired: "stopped" });
        if (o.runtimeExists && wasRunning) await o.runtime.stop(laneId, this.core.jobGuard(o.runtime, laneId, false));
        await o.runtime.swapRunner(o.lane, req.runnerVersion, req.runnerDownload);
        swapped = true;
        const record = { ...o.record, runnerVersion: req.runnerVersion };
        await this.core.opts.dirs.writeRecord(record);
        this.core.records.set(laneId, record);
        if (wasRunning) {
          await o.runtime.start(laneId);
          await this.core.setState(laneId, { desired: "running", state: "running", health: "unknown", restarts: [], nextRestartAtMs: 0 });
        } else {
          await this.core.setState(laneId, { state: "stopped" });
        }
      } catch (err) {
        // Before the swap the old runner is untouched: put the lane back as it was.
        if (!swapped) {
          await this.core.setState(laneId, { desired: prev.desired }).catch(() => undefined);
          if (wasRunning) await o.runtime.start(laneId).catch(() => undefined);
        }
        await this.core.finalAudit(err instanceof RejectError ? "rejected" : "failed", action, req, laneId, {
          reasonCode: errorCode(err),
          message: `${errorMessage(err)}; ${swapped ? "the new runner is in place but the lane did not start" : "the lane keeps its previous runner"}`,
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
}
