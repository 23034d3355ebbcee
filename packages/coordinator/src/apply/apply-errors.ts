import { LanekeeperError } from "@lanekeeper/shared";

/**
 * A step of an action failed. `code` is stable: the agent's reason code (`JOB_RUNNING`, `NOT_ALLOWED_SCOPE`, ...),
 * a GitHub error code (`GITHUB_API`, `GITHUB_RATE_LIMITED`, ...), a dispatch code (`DISPATCH_TIMEOUT`), or one of
 * the engine's own: `GUARD_FAILED`, `DRAIN_DEADLINE`, `VERIFY_ONLINE_TIMEOUT`, `VERIFY_GONE_TIMEOUT`,
 * `REGISTRATION_MISMATCH`, `RECORD_MISSING`.
 */
export class StepFailure extends LanekeeperError {
  constructor(code: string, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(code, message, options);
  }
}

/** `apply` was asked to do something it cannot: refuse before touching anything. */
export class ApplyRefusedError extends LanekeeperError {
  constructor(code: "APPLY_NOT_CONFIRMED" | "LANE_NOT_FOUND" | "LANE_NOT_MANAGED" | "DEADLINE_INVALID" | "APPLY_FAILED" | "NOT_LEADER", message: string) {
    super(code, message);
  }
}
