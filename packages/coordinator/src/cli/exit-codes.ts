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
