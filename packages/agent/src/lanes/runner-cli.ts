/**
 * The runner's command line as lanekeeper uses it (contract 2.2): the `config.sh` arguments of a lane, built
 * only from validated record fields, and the mapping of the runner's known failure lines to stable hints. The
 * registration token never appears here: it travels in `ACTIONS_RUNNER_INPUT_TOKEN`.
 */
import type { LaneRecord } from "./lane-marker.js";

/**
 * Arguments after `config.sh` for a persistent lane. Never `--replace`: it would take over a same-named runner.
 * Always `--disableupdate`: lanekeeper chooses and upgrades the runner version.
 */
export function configureArgs(r: LaneRecord): string[] {
  return [
    "--unattended",
    "--url",
    r.githubUrl,
    "--name",
    r.laneId,
    "--labels",
    r.labels.join(","),
    "--no-default-labels",
    // The version is policy: the runner must not replace its own files under a running service.
    "--disableupdate",
    "--work",
    "_work",
    ...(r.runnerGroup !== "" ? ["--runnergroup", r.runnerGroup] : []),
  ];
}

/** Environment variable the runner reads the registration or remove token from (and then deletes). */
export const TOKEN_ENV = "ACTIONS_RUNNER_INPUT_TOKEN";
/** Environment variable the runner reads a JIT config from. */
export const JIT_ENV = "ACTIONS_RUNNER_INPUT_JITCONFIG";

/** Known runner failures, matched on the runner's own fixed texts (contract 2.2, 2.3, 2.4). */
const KNOWN_FAILURES: readonly (readonly [RegExp, string, string])[] = [
  [/A runner exists with the same name/i, "RUNNER_NAME_TAKEN", "a runner with this lane's name is already registered in the scope"],
  [/Could not find any self-hosted runner group named/i, "RUNNER_GROUP_UNKNOWN", "the runner group does not exist in the organization"],
  [/already configured/i, "RUNNER_ALREADY_CONFIGURED", "the lane's runner is configured already"],
  [/still running a job/i, "JOB_RUNNING", "the runner is running a job, so GitHub refuses to delete it"],
  [/registration has been deleted/i, "REGISTRATION_DELETED", "the runner's registration was deleted on GitHub"],
  [/\b401\b|Unauthorized|token.*(expired|invalid)|invalid.*token/i, "TOKEN_REJECTED", "GitHub rejected the token (expired or wrong scope)"],
  [/\b404\b|Not Found/i, "SCOPE_NOT_FOUND", "the repository or organization URL is not known to GitHub"],
  [/Must not run with sudo|Must not run interactively with sudo/i, "RUNNER_REFUSES_ROOT", "the runner refuses to run as root"],
];

/**
 * A stable code and a fixed human text for a failed `config.sh`, from its output. The raw output is never
 * returned: it could echo something sensitive. Given the lane's record, a missing runner group is named, with its
 * organization and the policy key that chose it (both validated record fields, never text from the output), so
 * the operator knows what to create or fix.
 */
export function classifyRunnerFailure(output: string, lane?: Pick<LaneRecord, "scope" | "runnerGroup">): { code: string; text: string } {
  for (const [re, code, text] of KNOWN_FAILURES) {
    if (!re.test(output)) continue;
    if (code === "RUNNER_GROUP_UNKNOWN" && lane !== undefined && lane.runnerGroup !== "") {
      const org = lane.scope.startsWith("org:") ? lane.scope.slice("org:".length) : lane.scope;
      return {
        code,
        text:
          `the runner group "${lane.runnerGroup}" does not exist in the organization ${org}: ` +
          `create it on GitHub, or name an existing group in the policy's scopes.${lane.scope}.runnerGroup`,
      };
    }
    return { code, text };
  }
  return { code: "RUNNER_CONFIG_UNKNOWN", text: "config.sh failed; see the runner's _diag logs in the lane directory" };
}
