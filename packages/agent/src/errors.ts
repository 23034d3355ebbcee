/**
 * The agent's own error classes. Every one carries a stable `code`; the CLI maps codes to exit codes in
 * `exit-codes.ts` and the future intake maps them to result reason codes. Messages never contain secrets or raw
 * child-process output.
 */
import { LanekeeperError, type LanekeeperErrorOptions, type SharedErrorCode } from "@lanekeeper/shared";

/** Codes of errors raised by the agent itself (its classes below, the trust file and the intake state store). */
export const AGENT_OWN_ERROR_CODES = Object.freeze([
  "RUNTIME_FAILED",
  "RUNNER_CONFIGURE_FAILED",
  "RUNNER_REMOVE_FAILED",
  "COMMAND_TIMEOUT",
  "AGENT_LOCKED",
  "STATE_INVALID",
  "NOT_INITIALIZED",
  "ALREADY_INITIALIZED",
  "STATUS_UNAVAILABLE",
  "AUDIT_CHAIN_BROKEN",
  "TRUST_FILE_INVALID",
  "TRUST_ROLLBACK",
  "STATE_STORE_FAILED",
  "RUNNER_DOWNLOAD_FAILED",
  "RUNNER_CHECKSUM_MISMATCH",
  "RUNNER_ARCHIVE_TOO_LARGE",
  "RUNNER_ARCHIVE_UNSAFE",
] as const);

/** Every code an error in the agent process can carry: shared's codes and the agent's own. */
export type AgentErrorCode = SharedErrorCode | (typeof AGENT_OWN_ERROR_CODES)[number];

/** A runtime (systemd or container engine) call failed or timed out. */
export class RuntimeError extends LanekeeperError<AgentErrorCode> {
  constructor(message: string, options: LanekeeperErrorOptions = {}) {
    super("RUNTIME_FAILED", message, options);
  }
}

/** `config.sh` (configure or remove) failed: registration or deregistration did not happen. */
export class RunnerConfigError extends LanekeeperError<AgentErrorCode> {
  constructor(code: "RUNNER_CONFIGURE_FAILED" | "RUNNER_REMOVE_FAILED", message: string, options: LanekeeperErrorOptions = {}) {
    super(code, message, options);
  }
}

/** A child process exceeded its timeout and was killed. */
export class CommandTimeoutError extends LanekeeperError<AgentErrorCode> {
  constructor(message: string, options: LanekeeperErrorOptions = {}) {
    super("COMMAND_TIMEOUT", message, options);
  }
}

/** Another agent instance holds the state directory. */
export class AgentLockedError extends LanekeeperError<AgentErrorCode> {
  constructor(message: string, options: LanekeeperErrorOptions = {}) {
    super("AGENT_LOCKED", message, options);
  }
}

/** A state file (lane state, journal, hold, identity) is unreadable or invalid. */
export class AgentStateError extends LanekeeperError<AgentErrorCode> {
  constructor(message: string, options: LanekeeperErrorOptions = {}) {
    super("STATE_INVALID", message, options);
  }
}

/** The agent has not been initialised (`lanekeeper-agent init`), or would overwrite an existing identity. */
export class AgentInitError extends LanekeeperError<AgentErrorCode> {
  constructor(code: "NOT_INITIALIZED" | "ALREADY_INITIALIZED", message: string, options: LanekeeperErrorOptions = {}) {
    super(code, message, options);
  }
}

/** The status socket could not be reached or answered with an error. */
export class StatusUnavailableError extends LanekeeperError<AgentErrorCode> {
  constructor(message: string, options: LanekeeperErrorOptions = {}) {
    super("STATUS_UNAVAILABLE", message, options);
  }
}

/** The audit chain failed verification. */
export class AuditChainBrokenError extends LanekeeperError<AgentErrorCode> {
  constructor(message: string, options: LanekeeperErrorOptions = {}) {
    super("AUDIT_CHAIN_BROKEN", message, options);
  }
}

/** Codes of {@link RunnerDistError}. */
export type RunnerDistErrorCode = "RUNNER_DOWNLOAD_FAILED" | "RUNNER_CHECKSUM_MISMATCH" | "RUNNER_ARCHIVE_TOO_LARGE" | "RUNNER_ARCHIVE_UNSAFE";

/**
 * A runner release could not be made available: the download failed, its checksum or size is not the one the
 * intent named, or the archive holds an entry that could escape or poison the unpacked tree. Nothing is unpacked
 * from an archive that failed any check.
 */
export class RunnerDistError extends LanekeeperError<AgentErrorCode> {
  constructor(code: RunnerDistErrorCode, message: string, options: LanekeeperErrorOptions = {}) {
    super(code, message, options);
  }
}
