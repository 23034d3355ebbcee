/**
 * The coordinator's error codes: one union, so a misspelt code in a `throw` does not compile and the CLI's
 * exit-code table (`cli/exit-codes.ts`, a `Record` over this union) must give every code a deliberate exit code.
 */
import type { SharedErrorCode } from "@lanekeeper/shared";
import type { ResultRejectReason } from "./dispatch/result-verifier.js";

/** Codes of errors (and of the outcomes the CLI exits on) that the coordinator itself raises. */
export const COORDINATOR_OWN_ERROR_CODES = Object.freeze([
  // Policy, input files and arguments (cli/)
  "POLICY_UNREADABLE",
  "POLICY_WRITE_FAILED",
  // serve's policy reload (serve/policy-reload.ts): the running policy was kept
  "POLICY_RELOAD_INVALID",
  "POLICY_RESTART_NEEDED",
  "RECORDS_INVALID",
  "HOST_EXISTS",
  "HOST_NOT_FOUND",
  "HOST_IN_USE",
  "KEY_FILE_EXISTS",
  "KEY_ROTATION_INVALID",
  "COORDINATOR_KEY",
  "COMMAND_TIMEOUT",
  // GitHub (github/)
  "GITHUB_CREDENTIAL",
  "GITHUB_AUTH",
  "GITHUB_FORBIDDEN",
  "GITHUB_API",
  "GITHUB_MALFORMED",
  "GITHUB_NOT_FOUND",
  "GITHUB_CONFLICT",
  "GITHUB_RUNNER_BUSY",
  "GITHUB_RATE_LIMITED",
  "GITHUB_RATE_LIMIT_RESERVED",
  "CREATE_BUDGET_EXHAUSTED",
  "GITHUB_UNREACHABLE",
  // NATS, JetStream and the lane store
  "NATS_UNAVAILABLE",
  "LANE_STORE_UNAVAILABLE",
  "LANE_STORE_CORRUPT",
  "LANE_STORE_CONFLICT",
  "AUDIT_STREAM_UNAVAILABLE",
  "SEQUENCE_ALLOCATION_FAILED",
  "JETSTREAM_REPLICAS_MISMATCH",
  "FENCING_TOKEN_STALE",
  // Demand (demand/): the job store, the webhook endpoint
  "JOB_STORE_UNAVAILABLE",
  "WEBHOOK_CONFIG",
  // Dispatch (dispatch/)
  "DISPATCH_TIMEOUT",
  "DISPATCH_NO_RESPONDERS",
  "DISPATCH_UNKNOWN_HOST",
  "DISPATCH_BAD_RESULT",
  "DISPATCH_OPTIONS_INVALID",
  "KEYSET_PUSH_FAILED",
  // apply and lanes: refusals before anything is done (apply/apply-errors.ts)
  "APPLY_NOT_CONFIRMED",
  "FORCE_NOT_CONFIRMED",
  "LANE_NOT_MANAGED",
  "DEADLINE_INVALID",
  "NOT_LEADER",
  // saved plans (plan/saved-plan.ts): a plan file that cannot be read, or no longer holds
  "PLAN_INVALID",
  "PLAN_STALE",
  // apply: a step of an action failed (StepFailure)
  "GUARD_FAILED",
  "LABELS_DIFFER",
  "RECORD_MISSING",
  "RUNNER_GROUP_NOT_FOUND",
  "DRAIN_DEADLINE",
  "REGISTRATION_MISMATCH",
  "VERIFY_ONLINE_TIMEOUT",
  "VERIFY_GONE_TIMEOUT",
  "UPGRADE_VERIFY_TIMEOUT",
  "UPGRADE_NOT_STARTING",
  "UPGRADE_ROLLED_BACK",
  "UPGRADE_ROLLBACK_FAILED",
  "AGENT_REJECTED",
  "AGENT_FAILED",
  "OPERATION_LEASE_LOST",
  "OPERATION_IN_FLIGHT",
  // lanekeeper smoke (smoke/): refusals before anything is done, then how a run ended
  "SMOKE_OPTIONS_INVALID",
  "SMOKE_SCOPE_NOT_OPTED_IN",
  "SMOKE_HOST_NOT_OPTED_IN",
  "SMOKE_HOST_NOT_ALLOWED",
  "SMOKE_HOST_FULL",
  "SMOKE_HOST_UNHEARD",
  "SMOKE_FAILED",
  "SMOKE_INTERRUPTED",
  // Outcomes the CLI exits on without an exception
  "APPLY_FAILED",
  "NEEDS_ATTENTION",
  "NOT_CONVERGED",
  "AUDIT_BROKEN",
  "PLAN_DEGRADED",
] as const);

/**
 * Every code an error in the coordinator process can carry: shared's codes (with the {@link RejectReason}s),
 * the result refusals of `dispatch/result-verifier.ts` and the coordinator's own.
 */
export type CoordinatorErrorCode = SharedErrorCode | ResultRejectReason | (typeof COORDINATOR_OWN_ERROR_CODES)[number];
