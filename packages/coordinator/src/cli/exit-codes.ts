import { ConfigError, LanekeeperError, RejectError } from "@lanekeeper/shared";

/**
 * Exit codes of `lanekeeper`, documented in docs/coordinator.md. Every error maps to one here, in
 * {@link exitCodeFor}, and nowhere else.
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
  /** `apply` / `lanes`: a drain hit its deadline; the lane is `needs-attention` (nothing was killed). */
  NEEDS_ATTENTION = 8,
  /** NATS or JetStream (lane store, sequences, audit stream) could not be reached. */
  NATS_UNAVAILABLE = 9,
  /** `audit verify`: the chain is broken (the output names the first broken line). */
  AUDIT_BROKEN = 10,
  /** `apply`: everything planned was done, but no host can take the lanes a group still wants (see the warnings). */
  NOT_CONVERGED = 11,
}

const BY_CODE: Readonly<Record<string, ExitCode>> = {
  CONFIG_INVALID: ExitCode.CONFIG,
  POLICY_UNREADABLE: ExitCode.CONFIG,
  POLICY_WRITE_FAILED: ExitCode.CONFIG,
  GITHUB_CREDENTIAL: ExitCode.GITHUB_AUTH,
  GITHUB_AUTH: ExitCode.GITHUB_AUTH,
  GITHUB_API: ExitCode.GITHUB_UNAVAILABLE,
  GITHUB_MALFORMED: ExitCode.GITHUB_UNAVAILABLE,
  GITHUB_NOT_FOUND: ExitCode.GITHUB_UNAVAILABLE,
  GITHUB_RATE_LIMITED: ExitCode.GITHUB_UNAVAILABLE,
  GITHUB_RATE_LIMIT_RESERVED: ExitCode.GITHUB_UNAVAILABLE,
  RECORDS_INVALID: ExitCode.INPUT,
  ENROLLMENT_INVALID: ExitCode.INPUT,
  HOST_EXISTS: ExitCode.INPUT,
  HOST_NOT_FOUND: ExitCode.INPUT,
  HOST_IN_USE: ExitCode.INPUT,
  KEY_INVALID: ExitCode.INPUT,
  // apply, lanes, audit, keys, serve
  APPLY_NOT_CONFIRMED: ExitCode.USAGE,
  DEADLINE_INVALID: ExitCode.USAGE,
  LANE_NOT_FOUND: ExitCode.INPUT,
  LANE_NOT_MANAGED: ExitCode.INPUT,
  KEY_FILE_EXISTS: ExitCode.INPUT,
  KEY_ROTATION_INVALID: ExitCode.INPUT,
  COORDINATOR_KEY: ExitCode.CONFIG,
  APPLY_FAILED: ExitCode.ACTION_FAILED,
  KEYSET_PUSH_FAILED: ExitCode.ACTION_FAILED,
  NEEDS_ATTENTION: ExitCode.NEEDS_ATTENTION,
  NATS_UNAVAILABLE: ExitCode.NATS_UNAVAILABLE,
  LANE_STORE_UNAVAILABLE: ExitCode.NATS_UNAVAILABLE,
  AUDIT_STREAM_UNAVAILABLE: ExitCode.NATS_UNAVAILABLE,
  SEQUENCE_ALLOCATION_FAILED: ExitCode.NATS_UNAVAILABLE,
  AUDIT_BROKEN: ExitCode.AUDIT_BROKEN,
  AUDIT_FAILED: ExitCode.AUDIT_BROKEN,
  NOT_CONVERGED: ExitCode.NOT_CONVERGED,
};

/** The exit code of an error: by its stable code; commander's usage errors are `USAGE`. */
export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof ConfigError) return ExitCode.CONFIG;
  if (err instanceof RejectError) return ExitCode.INPUT;
  if (err instanceof LanekeeperError) return BY_CODE[err.code] ?? ExitCode.FAILURE;
  if (err instanceof Error && err.name === "CommanderError") return ExitCode.USAGE;
  return ExitCode.FAILURE;
}

/** The exit code of an error code seen in an observation (e.g. a scope that could not be listed). */
export function exitCodeForCode(code: string): ExitCode {
  return BY_CODE[code] ?? ExitCode.GITHUB_UNAVAILABLE;
}
