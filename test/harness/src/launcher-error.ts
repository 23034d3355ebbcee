/**
 * Stable codes of {@link LauncherError}: tests and callers match on these, never on messages.
 */
export type LauncherErrorCode =
  | "LAUNCH_FAILED"
  | "START_TIMEOUT"
  | "STOP_TIMEOUT"
  | "COMMAND_FAILED"
  | "UNSUPPORTED_HOST"
  | "BAD_OPTIONS";

/**
 * A launcher (nats-server, systemd sandbox, podman service) could not start, stop or run something.
 *
 * These are failures of the test machine's infrastructure, not lanekeeper errors, so they stay out of
 * `@lanekeeper/shared`'s error taxonomy; the shape is the same: a stable `code`, a message that says what to
 * check, and the underlying `cause`.
 */
export class LauncherError extends Error {
  /** Stable code for matching in tests. */
  readonly code: LauncherErrorCode;

  constructor(code: LauncherErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LauncherError";
    this.code = code;
  }
}
