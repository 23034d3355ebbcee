import { LanekeeperError } from "@lanekeeper/shared";
import type { CoordinatorErrorCode } from "../error-codes.js";

/**
 * A reason code as an agent reported it in a result: usually a `RejectReason` or one of the agent's own error
 * codes, but the coordinator cannot know every code a (newer) agent may send, so it is carried as-is. The brand
 * keeps a misspelt literal from passing for one: only {@link agentReasonCode} makes it.
 */
export type AgentReasonCode = string & { readonly agentReasonCode: true };

/** Mark a reason code read from an agent's result. */
export function agentReasonCode(code: string): AgentReasonCode {
  return code as AgentReasonCode;
}

/**
 * A step of an action failed. `code` is stable: the agent's reason code (`JOB_RUNNING`, `NOT_ALLOWED_SCOPE`, ...),
 * a GitHub error code (`GITHUB_API`, `GITHUB_RATE_LIMITED`, ...), a dispatch code (`DISPATCH_TIMEOUT`), or one of
 * the engine's own: `GUARD_FAILED`, `DRAIN_DEADLINE`, `VERIFY_ONLINE_TIMEOUT`, `VERIFY_GONE_TIMEOUT`,
 * `REGISTRATION_MISMATCH`, `RECORD_MISSING`.
 */
export class StepFailure extends LanekeeperError<CoordinatorErrorCode | AgentReasonCode> {
  constructor(code: CoordinatorErrorCode | AgentReasonCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(code, message, options);
  }
}

/** `apply` was asked to do something it cannot: refuse before touching anything. */
export class ApplyRefusedError extends LanekeeperError<CoordinatorErrorCode> {
  constructor(code: "APPLY_NOT_CONFIRMED" | "FORCE_NOT_CONFIRMED" | "LANE_NOT_FOUND" | "LANE_NOT_MANAGED" | "DEADLINE_INVALID" | "APPLY_FAILED" | "NOT_LEADER" | "OPERATION_IN_FLIGHT", message: string) {
    super(code, message);
  }
}
