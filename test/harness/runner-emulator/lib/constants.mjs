// Facts of the real runner (actions/runner 2.336.0) that the emulator reproduces, and the test-only knobs.
// Reference: shared/reference/github-runner-contract.md sections 2 and 4.

import os from "node:os";

/** `src/runnerversion` of the emulated release. */
export const RUNNER_VERSION = "2.336.0";

/** Printed by `--commit`; any 40-hex string, the emulator has no real commit. */
export const RUNNER_COMMIT = "258d6c85000000000000000000000000000000e1";

/** `Constants.Runner.ReturnCode` (contract 2.4). */
export const ReturnCode = Object.freeze({
  Success: 0,
  TerminatedError: 1,
  RetryableError: 2,
  RunnerUpdating: 3,
  RunOnceRunnerUpdating: 4,
  SessionConflict: 5,
});

/** `TaskResult`; the worker exits with 100 + result, as `TaskResultUtil.TranslateToReturnCode` does. */
export const TaskResult = Object.freeze({
  Succeeded: 0,
  SucceededWithIssues: 1,
  Failed: 2,
  Canceled: 3,
  Skipped: 4,
  Abandoned: 5,
});

/** Worker exit code base (`TaskResultUtil.ReturnCodeOffset`). */
export const WORKER_RETURN_CODE_OFFSET = 100;

/** Job conclusion sent to the emulator for each result name. */
export const CONCLUSION_OF_RESULT = Object.freeze({
  Succeeded: "success",
  SucceededWithIssues: "success",
  Failed: "failure",
  Canceled: "cancelled",
  Skipped: "skipped",
  Abandoned: "failure",
});

/** Result name printed in "Job … completed with result: X" for each conclusion from a job spec. */
export const RESULT_OF_CONCLUSION = Object.freeze({
  success: "Succeeded",
  failure: "Failed",
  cancelled: "Canceled",
  skipped: "Skipped",
});

/** `VarUtil.OS` on Linux. */
export const OS_LABEL = "Linux";

/** `VarUtil.OSArchitecture` for the running machine. */
export function archLabel() {
  switch (os.arch()) {
    case "x64":
      return "X64";
    case "ia32":
      return "X86";
    case "arm":
      return "ARM";
    case "arm64":
      return "ARM64";
    default:
      return os.arch().toUpperCase();
  }
}

/** The prefix of environment variables that may carry any command-line argument. */
export const ENV_INPUT_PREFIX = "ACTIONS_RUNNER_INPUT_";

/** `Constants.Path.WorkDirectory`. */
export const DEFAULT_WORK_FOLDER = "_work";

/** Message shown when a session cannot be created because the registration is gone (`MessageListener`). */
export const REGISTRATION_DELETED_MESSAGE =
  "Failed to create a session. The runner registration has been deleted from the server, please re-configure. " +
  "Runner registrations are automatically deleted for runners that have not connected to the service recently.";

function intFromEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : fallback;
}

/**
 * Timing knobs. The defaults are the real runner's; tests shorten them through `LK_RUNNER_*` variables
 * (documented in test/harness/README.md, "Runner emulator"). They are read when the process starts.
 */
export function timing() {
  return Object.freeze({
    /** Long-poll `wait_ms`; GitHub's polls stay open 50 s. */
    pollWaitMs: intFromEnv("LK_RUNNER_POLL_MS", 50_000),
    /** Pause after a failed poll; the real runner backs off 15–30 s. */
    pollRetryMs: intFromEnv("LK_RUNNER_POLL_RETRY_MS", 15_000),
    /** `_sessionCreationRetryInterval`. */
    sessionRetryMs: intFromEnv("LK_RUNNER_SESSION_RETRY_MS", 30_000),
    /** `_sessionConflictRetryLimit`. */
    sessionConflictLimitMs: intFromEnv("LK_RUNNER_SESSION_CONFLICT_LIMIT_MS", 240_000),
    /** How long a cancelled worker may take before the listener kills it. */
    workerCancelTimeoutMs: intFromEnv("LK_RUNNER_WORKER_CANCEL_TIMEOUT_MS", 30_000),
    /** Timeout of one ordinary (non-poll) request. */
    requestTimeoutMs: intFromEnv("LK_RUNNER_REQUEST_TIMEOUT_MS", 30_000),
  });
}
