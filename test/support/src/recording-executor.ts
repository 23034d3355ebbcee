import {
  Health,
  LaneMode,
  LaneObservation,
  LaneState,
  RejectError,
  RejectReason,
  type LaneSpec,
} from "@lanekeeper/shared";
import type {
  ExecutionContext,
  ExecutionOutcome,
  IntentAction,
  LaneExecutor,
  LaneInspection,
  LaneOwnership,
} from "@lanekeeper/agent";

/** One call the intake made on the executor. Secrets are not recorded, only whether one was handed over. */
export interface RecordedCall {
  readonly method: "inspect" | "managedLaneIds" | "execute";
  readonly laneId?: string;
  readonly kind?: IntentAction["kind"];
  readonly intentId?: string;
  /** For execute: whether a secret was handed over, and its length (never its value). */
  readonly secretBytes?: number;
}

interface FakeLane {
  ownership: LaneOwnership;
  held: boolean;
  holdReason: string;
  observation: LaneObservation;
}

/**
 * An in-memory {@link LaneExecutor} that records every call and models lane state (create, stop, hold, remove,
 * ...) without touching a runtime. Security tests use it to assert that no `execute` call happened; the
 * benchmark uses it as a no-op executor. It is not a lane runtime: lanes exist only in memory.
 */
export class RecordingExecutor implements LaneExecutor {
  /** Every call, in order. */
  readonly calls: RecordedCall[] = [];
  private readonly lanes = new Map<string, FakeLane>();
  /** Secrets handed to `execute`, for tests that check what the intake opened (kept only in memory). */
  readonly secrets: { laneId: string; kind: string; secret: Buffer }[] = [];
  /** Optional hook run inside `execute` (for example a delay, or a thrown error). */
  onExecute: ((action: IntentAction, ctx: ExecutionContext) => Promise<void> | void) | undefined;
  /** When true, only `execute` calls are recorded and secrets are not kept (the benchmark keeps memory flat). */
  quiet = false;

  /** `execute` calls only. */
  get executeCalls(): RecordedCall[] {
    return this.calls.filter((c) => c.method === "execute");
  }

  /** Put a lane into a given ownership state (for example an unmanaged unit with the lane's name). */
  setLane(laneId: string, ownership: LaneOwnership, fields: Partial<LaneObservation> = {}, held = false): void {
    this.lanes.set(laneId, {
      ownership,
      held,
      holdReason: "",
      observation: LaneObservation.fromPartial({
        laneId,
        state: LaneState.LANE_STATE_RUNNING,
        health: Health.HEALTH_HEALTHY,
        ...fields,
      }),
    });
  }

  /** The modelled lane, if any. */
  lane(laneId: string): LaneObservation | undefined {
    const l = this.lanes.get(laneId);
    return l === undefined ? undefined : { ...l.observation, held: l.held, holdReason: l.holdReason };
  }

  async inspect(laneId: string): Promise<LaneInspection> {
    await Promise.resolve();
    if (!this.quiet) this.calls.push({ method: "inspect", laneId });
    const l = this.lanes.get(laneId);
    if (l === undefined) return { ownership: "absent", held: false };
    if (l.ownership !== "owned") return { ownership: l.ownership, held: false };
    return { ownership: "owned", held: l.held, observed: this.lane(laneId) };
  }

  async managedLaneIds(): Promise<readonly string[]> {
    await Promise.resolve();
    if (!this.quiet) this.calls.push({ method: "managedLaneIds" });
    return [...this.lanes].filter(([, l]) => l.ownership === "owned").map(([id]) => id);
  }

  async execute(action: IntentAction, ctx: ExecutionContext): Promise<ExecutionOutcome> {
    const secret =
      action.kind === "create" ? action.registration : action.kind === "remove" ? action.removeToken : action.kind === "arm" ? action.jitConfig : undefined;
    this.calls.push({
      method: "execute",
      laneId: action.laneId,
      kind: action.kind,
      intentId: ctx.intentId,
      ...(secret === undefined ? {} : { secretBytes: secret.length }),
    });
    if (secret !== undefined && !this.quiet) this.secrets.push({ laneId: action.laneId, kind: action.kind, secret: Buffer.from(secret) });
    if (this.onExecute !== undefined) await this.onExecute(action, ctx);
    return { observed: this.apply(action) };
  }

  private apply(action: IntentAction): LaneObservation | undefined {
    const now = Date.now();
    if (action.kind === "create") {
      if (this.lanes.get(action.laneId) !== undefined) throw new RejectError(RejectReason.LANE_EXISTS, "lane exists");
      this.lanes.set(action.laneId, {
        ownership: "owned",
        held: false,
        holdReason: "",
        observation: observationFromSpec(action.spec, now),
      });
      return this.lane(action.laneId);
    }
    const l = this.lanes.get(action.laneId);
    if (l === undefined || l.ownership !== "owned") throw new RejectError(RejectReason.LANE_NOT_FOUND, "no such lane");
    const set = (state: LaneState): void => {
      l.observation = { ...l.observation, state, stateSinceMs: now };
    };
    switch (action.kind) {
      case "drain":
        l.observation = { ...l.observation, draining: true };
        break;
      case "undrain":
        l.observation = { ...l.observation, draining: false };
        break;
      case "start":
      case "restart":
        set(LaneState.LANE_STATE_RUNNING);
        break;
      case "stop":
        set(LaneState.LANE_STATE_STOPPED);
        break;
      case "remove":
        this.lanes.delete(action.laneId);
        return { ...l.observation, state: LaneState.LANE_STATE_REMOVING };
      case "hold":
        l.held = true;
        l.holdReason = action.reason;
        break;
      case "release":
        l.held = false;
        l.holdReason = "";
        break;
      case "arm":
        set(LaneState.LANE_STATE_RUNNING);
        break;
    }
    return this.lane(action.laneId);
  }
}

function observationFromSpec(spec: LaneSpec, now: number): LaneObservation {
  return LaneObservation.fromPartial({
    laneId: spec.laneId,
    scope: spec.scope,
    pool: spec.pool,
    backend: spec.backend,
    mode: spec.mode === LaneMode.LANE_MODE_UNSPECIFIED ? LaneMode.LANE_MODE_PERSISTENT : spec.mode,
    runtimeName: `lanekeeper-lane-${spec.laneId}`,
    state: LaneState.LANE_STATE_RUNNING,
    health: Health.HEALTH_HEALTHY,
    labels: [...spec.labels],
    runnerVersion: spec.runnerVersion,
    image: spec.image,
    stateSinceMs: now,
    runnerName: spec.laneId,
  });
}
