/**
 * The one place that maps error codes to `lanekeeper-agent` exit codes (documented in docs/agent.md). Scripts
 * may rely on these numbers. {@link EXIT_BY_CODE} is a `Record` over {@link AgentErrorCode}: a new code does not
 * compile until it is given an exit code here.
 */
import { COMMON_EXIT_CODES, LanekeeperError, rejectReasonsExitingWith } from "@lanekeeper/shared";
import type { AgentErrorCode } from "./errors.js";

/** Exit codes of `lanekeeper-agent`. 0 to 3 mean the same in `lanekeeper` ({@link COMMON_EXIT_CODES}). */
export const EXIT = Object.freeze({
  ...COMMON_EXIT_CODES,
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
  /** Not initialised, already initialised, or a key or trust file problem. */
  KEYS: 9,
  /** A runtime (systemd, container engine), runner command or state file failed. */
  RUNTIME: 10,
} as const);

/** An exit code of `lanekeeper-agent`. */
export type AgentExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The exit code of every error code the agent can raise. */
export const EXIT_BY_CODE: Readonly<Record<AgentErrorCode, AgentExitCode>> = Object.freeze({
  ...rejectReasonsExitingWith(EXIT.REFUSED),
  LANE_NOT_FOUND: EXIT.LANE_NOT_FOUND,
  USAGE: EXIT.USAGE,
  INTERNAL: EXIT.FAILURE,
  CONFIG_INVALID: EXIT.CONFIG,
  // Path and URL checks of config fields; they surface as CONFIG_INVALID issues, unless called directly.
  INVALID_PATH: EXIT.CONFIG,
  INVALID_URL: EXIT.CONFIG,
  // The agent writes enrollment bundles and never reads one: failing to is a bug.
  ENROLLMENT_INVALID: EXIT.FAILURE,
  AGENT_LOCKED: EXIT.LOCKED,
  STATE_STORE_FAILED: EXIT.LOCKED,
  STATUS_UNAVAILABLE: EXIT.STATUS_UNAVAILABLE,
  AUDIT_FAILED: EXIT.AUDIT,
  AUDIT_CHAIN_BROKEN: EXIT.AUDIT,
  NOT_INITIALIZED: EXIT.KEYS,
  ALREADY_INITIALIZED: EXIT.KEYS,
  KEY_INVALID: EXIT.KEYS,
  TRUST_FILE_INVALID: EXIT.KEYS,
  TRUST_ROLLBACK: EXIT.KEYS,
  RUNTIME_FAILED: EXIT.RUNTIME,
  COMMAND_TIMEOUT: EXIT.RUNTIME,
  RUNNER_CONFIGURE_FAILED: EXIT.RUNTIME,
  RUNNER_REMOVE_FAILED: EXIT.RUNTIME,
  RUNNER_DOWNLOAD_FAILED: EXIT.RUNTIME,
  RUNNER_CHECKSUM_MISMATCH: EXIT.RUNTIME,
  RUNNER_ARCHIVE_TOO_LARGE: EXIT.RUNTIME,
  RUNNER_ARCHIVE_UNSAFE: EXIT.RUNTIME,
  STATE_INVALID: EXIT.RUNTIME,
});

/** What to do next, by exit code, for errors that carry no hint of their own. */
const HINT: Readonly<Record<AgentExitCode, string>> = {
  [EXIT.OK]: "",
  [EXIT.FAILURE]: "this is a bug or an unexpected environment problem; the agent's journal (journalctl -u lanekeeper-agent) has details",
  [EXIT.USAGE]: "see lanekeeper-agent --help",
  [EXIT.CONFIG]: "fix the config file named above (see docs/agent.md for every setting) and run again",
  [EXIT.LOCKED]: "another lanekeeper-agent is running with this state directory; stop it (systemctl stop lanekeeper-agent) first",
  [EXIT.STATUS_UNAVAILABLE]: "is the agent running? check systemctl status lanekeeper-agent",
  [EXIT.AUDIT]: "keep the audit log as evidence and investigate before trusting this host's history",
  [EXIT.LANE_NOT_FOUND]: "lanekeeper-agent status lists the lanes on this host",
  [EXIT.REFUSED]: "the agent refused on purpose; the message says why",
  [EXIT.KEYS]: "run lanekeeper-agent init on a new host, or restore the key and trust files",
  [EXIT.RUNTIME]: "check the runtime (systemd or the container engine) and the lane's logs, then retry",
};

/** Whether `code` is a code of the agent's table (a `LanekeeperError` from elsewhere might carry another). */
function isAgentErrorCode(code: string): code is AgentErrorCode {
  return Object.hasOwn(EXIT_BY_CODE, code);
}

/** The exit code for an error: by its code; anything that is not a lanekeeper error is a `FAILURE`. */
export function exitCodeFor(err: unknown): AgentExitCode {
  if (err instanceof LanekeeperError && isAgentErrorCode(err.code)) return EXIT_BY_CODE[err.code];
  return EXIT.FAILURE;
}

/** Generic advice for an exit code, for errors without a hint of their own. */
export function hintFor(exitCode: number): string {
  return Object.hasOwn(HINT, exitCode) ? HINT[exitCode as AgentExitCode] : HINT[EXIT.FAILURE];
}
