import { ConfigError, LanekeeperError, RejectError, RejectReason } from "@lanekeeper/shared";
import { CommanderError } from "commander";
import { describe, expect, it } from "vitest";
import { GitHubAuthError, GitHubRateLimitReserveError } from "../github/github-errors.js";
import { CliError } from "./cli-errors.js";
import { ExitCode, exitCodeFor } from "./exit-codes.js";

describe("exitCodeFor", () => {
  it.each([
    [new ConfigError("policy", [{ path: "a", message: "b" }]), ExitCode.CONFIG],
    [new CliError("POLICY_UNREADABLE", "x"), ExitCode.CONFIG],
    [new GitHubAuthError({ operation: "listRunners", status: 401 }), ExitCode.GITHUB_AUTH],
    [new LanekeeperError("GITHUB_CREDENTIAL", "x"), ExitCode.GITHUB_AUTH],
    [new GitHubRateLimitReserveError("listRunners", 1, 2, 3), ExitCode.GITHUB_UNAVAILABLE],
    [new CliError("HOST_EXISTS", "x"), ExitCode.INPUT],
    [new RejectError(RejectReason.INVALID_NAME, "x"), ExitCode.INPUT],
    [new CommanderError(1, "commander.unknownOption", "x"), ExitCode.USAGE],
    [new LanekeeperError("SOMETHING_ELSE", "x"), ExitCode.FAILURE],
    [new Error("boom"), ExitCode.FAILURE],
  ])("%o → %i", (err, code) => {
    expect(exitCodeFor(err)).toBe(code);
  });
});
