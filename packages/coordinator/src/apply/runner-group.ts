import type { RunnerGroup } from "../github/github-types.js";

/**
 * The organization runner group a lane registers in, out of the organization's groups: the one the policy's
 * `scopes.<org:…>.runnerGroup` names, matched case-insensitively as GitHub does (group names are unique regardless
 * of case, and `config.sh --runnergroup`, which persistent lanes use, matches them that way); without a name, the
 * organization's default group (flagged `default`, whatever an admin renamed it to). Undefined when there is none.
 */
export function pickRunnerGroup(groups: readonly RunnerGroup[], want: string | undefined): RunnerGroup | undefined {
  if (want === undefined) return groups.find((g) => g.default) ?? groups.find((g) => g.name.toLowerCase() === "default");
  const lower = want.toLowerCase();
  return groups.find((g) => g.name.toLowerCase() === lower);
}
