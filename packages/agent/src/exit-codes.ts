/**
 * The one place that maps error codes to `lanekeeper-agent` exit codes (documented in docs/agent.md). Scripts
 * may rely on these numbers.
 */
import { LanekeeperError, RejectError, RejectReason } from "@lanekeeper/shared";

/** Exit codes of `lanekeeper-agent`. */
export const EXIT = Object.freeze({
  OK: 0,
  /** Unexpected error (a bug, or an environment problem with no better code). */
  FAILURE: 1,
  /** Bad command line (commander's own usage errors). */
  USAGE: 2,
  /** The config file is invalid or unreadable. */
  CONFIG: 3,
  /** Another agent holds the state directory. */
  LOCKED: 4,
  /** The status socket did not answer. */
  STATUS_UNAVAILABLE: 5,
  /** The audit chain does not verify, or the audit log cannot be written. */
  AUDIT: 6,
  /** The lane does not exist on this host. */
  LANE_NOT_FOUND: 7,
  /** The agent refused: not owned, foreign host, bad marker, symlink, invalid name, held, job running, ... */
  REFUSED: 8,
  /** Not initialised, already initialised, or a key file problem. */
  KEYS: 9,
  /** A runtime (systemd, container engine), runner command or state file failed. */
  RUNTIME: 10,
});

/** The exit code for an error. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof RejectError) return err.reason === RejectReason.LANE_NOT_FOUND ? EXIT.LANE_NOT_FOUND : EXIT.REFUSED;
  if (!(err instanceof LanekeeperError)) return EXIT.FAILURE;
  switch (err.code) {
    case "CONFIG_INVALID":
      return EXIT.CONFIG;
    case "AGENT_LOCKED":
    case "STATE_STORE_FAILED":
      return EXIT.LOCKED;
    case "STATUS_UNAVAILABLE":
      return EXIT.STATUS_UNAVAILABLE;
    case "AUDIT_FAILED":
    case "AUDIT_CHAIN_BROKEN":
      return EXIT.AUDIT;
    case "NOT_INITIALIZED":
    case "ALREADY_INITIALIZED":
    case "KEY_INVALID":
      return EXIT.KEYS;
    case "RUNTIME_FAILED":
    case "COMMAND_TIMEOUT":
    case "RUNNER_CONFIGURE_FAILED":
    case "RUNNER_REMOVE_FAILED":
    case "STATE_INVALID":
      return EXIT.RUNTIME;
    default:
      return EXIT.FAILURE;
  }
}
