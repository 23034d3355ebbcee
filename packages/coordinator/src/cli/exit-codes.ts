import { LanekeeperError, rejectReasonsExitingWith } from "@lanekeeper/shared";
import { StepFailure } from "../apply/apply-errors.js";
import { ResultRejectedError } from "../dispatch/result-verifier.js";
import type { CoordinatorErrorCode } from "../error-codes.js";

/**
 * Exit codes of `lanekeeper`, documented in docs/coordinator.md. Every error maps to one here, in
 * {@link exitCodeFor}, and nowhere else. 0 to 3 mean the same in `lanekeeper-agent` (shared `COMMON_EXIT_CODES`;
 * literal here so that `ExitCode` stays a union enum and `Record<ExitCode, …>` tables stay exhaustive).
 */
export enum ExitCode {
  /** Success (for `plan`: the plan was made from complete observations). */
  OK = 0,
  /** An unexpected failure (a bug, or an error without a code). */
  FAILURE = 1,
  /** Bad command line: unknown command or option, missing argument. */
  USAGE = 2,
  /** The policy file cannot be read, parsed or written. */
  CONFIG = 3,
  /** The GitHub credential is missing or refused. */
  GITHUB_AUTH = 4,
  /** GitHub could not be observed completely (API errors, rate limit); `plan` still prints what it could. */
  GITHUB_UNAVAILABLE = 5,
  /** A bad input file or argument: enrollment bundle, records file, unknown or duplicate host. */
  INPUT = 6,
  /** `apply` / `lanes`: an action failed or was skipped; each lane is in a safe state with a recovery note. */
  ACTION_FAILED = 7,
  /** `apply` / `lanes`: a lane was left `needs-attention` (a drain deadline, a rolled-back upgrade); nothing was killed. */
  NEEDS_ATTENTION = 8,
  /** NATS or JetStream (lane store, sequences, audit stream) could not be reached. */
  NATS_UNAVAILABLE = 9,
  /** `audit verify`: the chain is broken (the output names the first broken line). */
  AUDIT_BROKEN = 10,
  /** `apply`: everything planned was done, but no host can take the lanes a group still wants (see the warnings). */
  NOT_CONVERGED = 11,
  /** A lane record in the lane store cannot be read; nothing acts on that lane until an operator looks at it. */
  LANE_STORE_CORRUPT = 12,
  /** Another coordinator holds the leader lock, or changed the lane store under this command: re-plan and retry. */
  CONFLICT = 13,
  /** A host did not answer an intent in time, or nothing listens on its subject (agent down or not connected). */
  HOST_UNREACHABLE = 14,
  /** A host's reply failed verification (signature, key, host, digest or sequence); it was not acted on. */
  BAD_REPLY = 15,
  /** The command hit its `--timeout`: NATS or GitHub accepted the connection but never answered (the error names which). */
  TIMEOUT = 16,
  /**
   * `plan`: the plan was printed, but from a degraded view (NATS unreachable, coordinator key unreadable, an opted-in
   * host's inventory missing or stale); a loud line names what is missing. Never "the fleet matches the policy".
   */
  DEGRADED = 17,
  /** `apply <plan-file>`: the saved plan no longer holds (a guard fails now, the policy changed, it expired); nothing was done. */
  PLAN_STALE = 18,
}

/**
 * `plan --detailed-exitcode`, as terraform's: 0 no changes, 2 changes present, both on a complete view. Every
 * other outcome keeps its {@link ExitCode} (a degraded view is 17, GitHub partly unreadable 4 or 5), except a
 * command-line error, which exits 1 instead of 2 so that 2 always means "changes present".
 */
export const DetailedExitCode = Object.freeze({ NO_CHANGES: 0, CHANGES: 2, USAGE: 1 } as const);

/** What `plan` knows when it chooses its exit code. */
export interface PlanOutcome {
  /** Scopes GitHub could not list, with the error code of each. */
  readonly scopesUnavailable: readonly { readonly code: string }[];
  /** Whether anything else is missing from the view (see `observe/view-gaps.ts`). */
  readonly degraded: boolean;
  /** Actions in the plan. */
  readonly actions: number;
}

/**
 * The exit code of `plan`: a scope GitHub refused or could not list (4, 5) first, as before; then a degraded view
 * (17); then, with `--detailed-exitcode`, 2 when the plan has actions, else 0.
 */
export function planExitCode(p: PlanOutcome, detailed: boolean): number {
  let code = ExitCode.OK;
  for (const s of p.scopesUnavailable) {
    const c = exitCodeForObservedCode(s.code);
    if (c === ExitCode.GITHUB_AUTH || code === ExitCode.OK) code = c;
  }
  if (code !== ExitCode.OK) return code;
  if (p.degraded) return ExitCode.DEGRADED;
  if (!detailed) return ExitCode.OK;
  return p.actions > 0 ? DetailedExitCode.CHANGES : DetailedExitCode.NO_CHANGES;
}

/** The exit code of a failed command line: with `--detailed-exitcode`, USAGE (2) becomes 1 (2 means changes). */
export function exitCodeForArgv(code: ExitCode, argv: readonly string[]): number {
  return code === ExitCode.USAGE && argv.includes("--detailed-exitcode") ? DetailedExitCode.USAGE : code;
}

/** The exit code of every coordinator error code. A new code does not compile until it has a line here. */
export const EXIT_BY_CODE: Readonly<Record<CoordinatorErrorCode, ExitCode>> = Object.freeze({
  ...rejectReasonsExitingWith(ExitCode.INPUT),
  USAGE: ExitCode.USAGE,
  INTERNAL: ExitCode.FAILURE,
  // policy and config
  CONFIG_INVALID: ExitCode.CONFIG,
  INVALID_PATH: ExitCode.CONFIG,
  INVALID_URL: ExitCode.CONFIG,
  POLICY_UNREADABLE: ExitCode.CONFIG,
  POLICY_RELOAD_INVALID: ExitCode.CONFIG,
  POLICY_RESTART_NEEDED: ExitCode.CONFIG,
  POLICY_WRITE_FAILED: ExitCode.CONFIG,
  COORDINATOR_KEY: ExitCode.CONFIG,
  WEBHOOK_CONFIG: ExitCode.CONFIG,
  // GitHub
  GITHUB_CREDENTIAL: ExitCode.GITHUB_AUTH,
  GITHUB_AUTH: ExitCode.GITHUB_AUTH,
  GITHUB_FORBIDDEN: ExitCode.GITHUB_AUTH,
  GITHUB_API: ExitCode.GITHUB_UNAVAILABLE,
  GITHUB_MALFORMED: ExitCode.GITHUB_UNAVAILABLE,
  GITHUB_NOT_FOUND: ExitCode.GITHUB_UNAVAILABLE,
  GITHUB_RATE_LIMITED: ExitCode.GITHUB_UNAVAILABLE,
  GITHUB_RATE_LIMIT_RESERVED: ExitCode.GITHUB_UNAVAILABLE,
  CREATE_BUDGET_EXHAUSTED: ExitCode.GITHUB_UNAVAILABLE,
  GITHUB_UNREACHABLE: ExitCode.GITHUB_UNAVAILABLE,
  GITHUB_CONFLICT: ExitCode.ACTION_FAILED,
  GITHUB_RUNNER_BUSY: ExitCode.ACTION_FAILED,
  // input files and arguments
  RECORDS_INVALID: ExitCode.INPUT,
  ENROLLMENT_INVALID: ExitCode.INPUT,
  HOST_EXISTS: ExitCode.INPUT,
  HOST_NOT_FOUND: ExitCode.INPUT,
  HOST_IN_USE: ExitCode.INPUT,
  KEY_INVALID: ExitCode.INPUT,
  KEY_FILE_EXISTS: ExitCode.INPUT,
  KEY_ROTATION_INVALID: ExitCode.INPUT,
  LANE_NOT_FOUND: ExitCode.INPUT,
  LANE_NOT_MANAGED: ExitCode.INPUT,
  DISPATCH_UNKNOWN_HOST: ExitCode.INPUT,
  DISPATCH_OPTIONS_INVALID: ExitCode.INPUT,
  APPLY_NOT_CONFIRMED: ExitCode.USAGE,
  FORCE_NOT_CONFIRMED: ExitCode.USAGE,
  DEADLINE_INVALID: ExitCode.USAGE,
  // actions
  APPLY_FAILED: ExitCode.ACTION_FAILED,
  KEYSET_PUSH_FAILED: ExitCode.ACTION_FAILED,
  GUARD_FAILED: ExitCode.ACTION_FAILED,
  LABELS_DIFFER: ExitCode.ACTION_FAILED,
  RECORD_MISSING: ExitCode.ACTION_FAILED,
  RUNNER_GROUP_NOT_FOUND: ExitCode.ACTION_FAILED,
  REGISTRATION_MISMATCH: ExitCode.ACTION_FAILED,
  VERIFY_ONLINE_TIMEOUT: ExitCode.ACTION_FAILED,
  UPGRADE_VERIFY_TIMEOUT: ExitCode.ACTION_FAILED,
  UPGRADE_NOT_STARTING: ExitCode.ACTION_FAILED,
  UPGRADE_ROLLED_BACK: ExitCode.ACTION_FAILED,
  UPGRADE_ROLLBACK_FAILED: ExitCode.ACTION_FAILED,
  VERIFY_GONE_TIMEOUT: ExitCode.ACTION_FAILED,
  AGENT_REJECTED: ExitCode.ACTION_FAILED,
  AGENT_FAILED: ExitCode.ACTION_FAILED,
  OPERATION_LEASE_LOST: ExitCode.ACTION_FAILED,
  OPERATION_IN_FLIGHT: ExitCode.CONFLICT,
  NEEDS_ATTENTION: ExitCode.NEEDS_ATTENTION,
  DRAIN_DEADLINE: ExitCode.NEEDS_ATTENTION,
  NOT_CONVERGED: ExitCode.NOT_CONVERGED,
  // NATS and the lane store
  NATS_UNAVAILABLE: ExitCode.NATS_UNAVAILABLE,
  LANE_STORE_UNAVAILABLE: ExitCode.NATS_UNAVAILABLE,
  AUDIT_STREAM_UNAVAILABLE: ExitCode.NATS_UNAVAILABLE,
  SEQUENCE_ALLOCATION_FAILED: ExitCode.NATS_UNAVAILABLE,
  JETSTREAM_REPLICAS_MISMATCH: ExitCode.CONFIG,
  FENCING_TOKEN_STALE: ExitCode.CONFLICT,
  JOB_STORE_UNAVAILABLE: ExitCode.NATS_UNAVAILABLE,
  LANE_STORE_CORRUPT: ExitCode.LANE_STORE_CORRUPT,
  LANE_STORE_CONFLICT: ExitCode.CONFLICT,
  NOT_LEADER: ExitCode.CONFLICT,
  // dispatch
  DISPATCH_TIMEOUT: ExitCode.HOST_UNREACHABLE,
  DISPATCH_NO_RESPONDERS: ExitCode.HOST_UNREACHABLE,
  DISPATCH_BAD_RESULT: ExitCode.BAD_REPLY,
  RESULT_UNKNOWN_INTENT: ExitCode.BAD_REPLY,
  RESULT_ALREADY_PROCESSED: ExitCode.BAD_REPLY,
  RESULT_WRONG_HOST: ExitCode.BAD_REPLY,
  RESULT_DIGEST_MISMATCH: ExitCode.BAD_REPLY,
  RESULT_SEQUENCE_MISMATCH: ExitCode.BAD_REPLY,
  COMMAND_TIMEOUT: ExitCode.TIMEOUT,
  // smoke
  SMOKE_OPTIONS_INVALID: ExitCode.USAGE,
  SMOKE_SCOPE_NOT_OPTED_IN: ExitCode.INPUT,
  SMOKE_HOST_NOT_OPTED_IN: ExitCode.INPUT,
  SMOKE_HOST_NOT_ALLOWED: ExitCode.INPUT,
  SMOKE_HOST_FULL: ExitCode.INPUT,
  SMOKE_HOST_UNHEARD: ExitCode.HOST_UNREACHABLE,
  SMOKE_FAILED: ExitCode.ACTION_FAILED,
  SMOKE_INTERRUPTED: ExitCode.ACTION_FAILED,
  // plan and saved plans
  PLAN_DEGRADED: ExitCode.DEGRADED,
  PLAN_STALE: ExitCode.PLAN_STALE,
  PLAN_INVALID: ExitCode.INPUT,
  // audit
  AUDIT_BROKEN: ExitCode.AUDIT_BROKEN,
  AUDIT_FAILED: ExitCode.AUDIT_BROKEN,
});

/** What to do next, by exit code, for errors that carry no hint of their own. */
const HINT: Readonly<Record<ExitCode, string>> = {
  [ExitCode.OK]: "",
  [ExitCode.FAILURE]: "this is a bug or an unexpected environment problem; run again with LANEKEEPER_LOG_LEVEL=debug for details",
  [ExitCode.USAGE]: "see lanekeeper --help",
  [ExitCode.CONFIG]: "fix the policy file named above (see docs/coordinator.md) and run again",
  [ExitCode.GITHUB_AUTH]: "check the GitHub token or App installation named in the policy and its permissions",
  [ExitCode.GITHUB_UNAVAILABLE]: "GitHub could not be read completely; retry later (lanekeeper status shows the rate limit)",
  [ExitCode.INPUT]: "check the host id, lane id or file named above",
  [ExitCode.ACTION_FAILED]: "each lane is in a safe state; follow the recovery note, then run lanekeeper plan again",
  [ExitCode.NEEDS_ATTENTION]: "the lane is needs-attention and nothing was killed; see lanekeeper status",
  [ExitCode.NATS_UNAVAILABLE]: "check that NATS is reachable with the coordinator's credentials from the policy",
  [ExitCode.AUDIT_BROKEN]: "keep the audit chain as evidence and investigate before trusting it",
  [ExitCode.NOT_CONVERGED]: "no host can take more lanes: opt a host in, raise its capacity or widen the allowlists",
  [ExitCode.LANE_STORE_CORRUPT]: "inspect the named lane record in the lane store; lanekeeper does not act on that lane until it is fixed",
  [ExitCode.CONFLICT]: "another coordinator is acting; run lanekeeper plan again and retry",
  [ExitCode.HOST_UNREACHABLE]: "check that lanekeeper-agent runs on the host and is connected to NATS (lanekeeper-agent status there)",
  [ExitCode.TIMEOUT]: "check that the NATS server and GitHub API named above answer from this machine, or raise --timeout",
  [ExitCode.DEGRADED]: "the plan rests on an incomplete view (the DEGRADED lines say what is missing); fix that and run lanekeeper plan again",
  [ExitCode.PLAN_STALE]: "nothing was changed; run lanekeeper plan --out <file> again, review it, and apply the new file",
  [ExitCode.BAD_REPLY]: "the host's keys or trust file may be out of date, or someone else answers for it; compare with lanekeeper hosts list",
};

/** Whether `code` is a coordinator error code (codes reported by agents or read from records may not be). */
export function isCoordinatorErrorCode(code: string): code is CoordinatorErrorCode {
  return Object.hasOwn(EXIT_BY_CODE, code);
}

/**
 * The exit code of an error: by its stable code; commander's usage errors are `USAGE`. A step that failed with a
 * reason code only the agent knows is `ACTION_FAILED`; a refused reply is `BAD_REPLY` whatever its reason.
 */
export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof ResultRejectedError) return ExitCode.BAD_REPLY;
  if (err instanceof LanekeeperError) {
    if (isCoordinatorErrorCode(err.code)) return EXIT_BY_CODE[err.code];
    return err instanceof StepFailure ? ExitCode.ACTION_FAILED : ExitCode.FAILURE;
  }
  if (err instanceof Error && err.name === "CommanderError") return ExitCode.USAGE;
  return ExitCode.FAILURE;
}

/** The exit code of an outcome the CLI exits on without an exception (`NEEDS_ATTENTION`, `AUDIT_BROKEN`, ...). */
export function exitCodeForCode(code: CoordinatorErrorCode): ExitCode {
  return EXIT_BY_CODE[code];
}

/** The exit code of an error code seen in an observation (e.g. a scope that could not be listed). */
export function exitCodeForObservedCode(code: string): ExitCode {
  return isCoordinatorErrorCode(code) ? EXIT_BY_CODE[code] : ExitCode.GITHUB_UNAVAILABLE;
}

/** Generic advice for an exit code, for errors without a hint of their own. */
export function hintFor(exitCode: number): string {
  return Object.hasOwn(HINT, exitCode) ? HINT[exitCode as ExitCode] : HINT[ExitCode.FAILURE];
}
