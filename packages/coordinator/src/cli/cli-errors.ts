import { LanekeeperError, type LanekeeperErrorOptions } from "@lanekeeper/shared";
import type { CoordinatorErrorCode } from "../error-codes.js";

/** Stable codes of errors the CLI itself raises (see `exit-codes.ts` for their exit codes). */
export type CliErrorCode =
  | "POLICY_UNREADABLE"
  | "POLICY_WRITE_FAILED"
  | "RECORDS_INVALID"
  | "ENROLLMENT_INVALID"
  | "HOST_EXISTS"
  | "HOST_NOT_FOUND"
  | "HOST_IN_USE"
  | "COMMAND_TIMEOUT";

/** A CLI failure with a stable code and a message that says what to do next. */
export class CliError extends LanekeeperError<CoordinatorErrorCode> {
  constructor(code: CliErrorCode, message: string, options: LanekeeperErrorOptions = {}) {
    super(code, message, options);
  }
}

/** A coordinator command hit its `--timeout`: something it waited on (named in the message) never answered. */
export class CommandTimeoutError extends CliError {
  constructor(message: string, options: LanekeeperErrorOptions = {}) {
    super("COMMAND_TIMEOUT", message, options);
  }
}
