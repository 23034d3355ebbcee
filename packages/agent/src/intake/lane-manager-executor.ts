import { isRejectError, LaneMode, RejectReason, type LaneObservation } from "@lanekeeper/shared";
import type { LaneManager } from "../lanes/lane-manager.js";
import type { ExecutionContext, ExecutionOutcome, IntentAction, LaneExecutor, LaneInspection, LaneOwnership } from "./lane-executor.js";

/** How LaneManager's ownership refusals map onto the intake's view of a lane. */
const OWNERSHIP_BY_REASON: Partial<Record<RejectReason, LaneOwnership>> = {
  [RejectReason.LANE_NOT_FOUND]: "absent",
  [RejectReason.NOT_OWNED]: "unmanaged",
  [RejectReason.FOREIGN_HOST]: "foreign-host",
  [RejectReason.BAD_MARKER]: "bad-marker",
  [RejectReason.SYMLINK]: "symlink",
};

/**
 * The real {@link LaneExecutor}: the agent's {@link LaneManager}. `inspect` reads the lane's signed `lane.json`
 * and runtime markers (a missing lane directory is then double-checked against every configured runtime, so a
 * hand-made unit or container under a lane's name is reported as unmanaged, not absent); `execute` calls the
 * matching LaneManager operation, which re-checks ownership and local job evidence under its own lane lock,
 * audits `planned`/`started`/terminal and journals multi-step work.
 */
export class LaneManagerExecutor implements LaneExecutor {
  constructor(private readonly lanes: LaneManager) {}

  async inspect(laneId: string): Promise<LaneInspection> {
    let observed: LaneObservation;
    try {
      observed = await this.lanes.inspect(laneId);
    } catch (err) {
      const ownership = isRejectError(err) ? OWNERSHIP_BY_REASON[err.reason] : undefined;
      if (ownership === undefined) throw err;
      if (ownership === "absent") return { ownership: await this.runtimeOwnership(laneId), held: false };
      return { ownership, held: false };
    }
    return { ownership: "owned", held: observed.held, observed };
  }

  async managedLaneIds(): Promise<readonly string[]> {
    return (await this.lanes.list()).map((l) => l.laneId);
  }

  async execute(action: IntentAction, ctx: ExecutionContext): Promise<ExecutionOutcome> {
    const op = {
      intentId: ctx.intentId,
      ...(ctx.operationId === "" ? {} : { operationId: ctx.operationId }),
      ...(ctx.forcedBy === "" ? {} : { forcedBy: ctx.forcedBy }),
    };
    switch (action.kind) {
      case "create": {
        const persistent = action.spec.mode !== LaneMode.LANE_MODE_EPHEMERAL;
        return {
          observed: await this.lanes.create({
            ...op,
            spec: action.spec,
            ...(persistent ? { registrationToken: action.registration } : { jitConfig: action.registration }),
          }),
        };
      }
      case "start":
        return { observed: await this.lanes.start({ ...op, laneId: action.laneId }) };
      case "stop":
        return { observed: await this.lanes.stop({ ...op, laneId: action.laneId, force: action.force }) };
      case "restart":
        return { observed: await this.lanes.restart({ ...op, laneId: action.laneId, force: action.force }) };
      case "drain":
        return { observed: await this.lanes.drain({ ...op, laneId: action.laneId }) };
      case "undrain":
        return { observed: await this.lanes.undrain({ ...op, laneId: action.laneId }) };
      case "hold":
        return { observed: await this.lanes.hold({ ...op, laneId: action.laneId, reason: action.reason, by: "intent" }) };
      case "release":
        return { observed: await this.lanes.release({ ...op, laneId: action.laneId }) };
      case "arm":
        return { observed: await this.lanes.arm({ ...op, laneId: action.laneId, jitConfig: action.jitConfig }) };
      case "remove":
        await this.lanes.remove({
          ...op,
          laneId: action.laneId,
          force: action.force,
          ...(action.removeToken === undefined ? {} : { removeToken: action.removeToken }),
        });
        return {};
      case "upgrade":
        return {
          observed: await this.lanes.upgrade({
            ...op,
            laneId: action.laneId,
            runnerVersion: action.runnerVersion,
            runnerDownload: action.runnerDownload,
            image: action.image,
          }),
        };
    }
  }

  /**
   * The lane has no directory: is there a unit or container under its name anyway? Anything found there is
   * not ours to take over (a valid-looking marker without `lane.json` counts as a bad marker).
   */
  private async runtimeOwnership(laneId: string): Promise<LaneOwnership> {
    for (const rt of Object.values(this.lanes.runtimes)) {
      if (rt === undefined) continue;
      try {
        if ((await rt.checkOwnership(laneId)) === "owned") return "bad-marker";
      } catch (err) {
        const ownership = isRejectError(err) ? OWNERSHIP_BY_REASON[err.reason] : undefined;
        if (ownership === undefined) throw err;
        return ownership;
      }
    }
    return "absent";
  }
}
