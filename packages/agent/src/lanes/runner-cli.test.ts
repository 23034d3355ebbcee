import { describe, expect, it } from "vitest";
import { classifyRunnerFailure } from "./runner-cli.js";

// The runner's own line (actions/runner ConfigurationManager) when `--runnergroup` names no group of the org.
const GROUP_MISSING = 'Http response code: NotFound\nCould not find any self-hosted runner group named "builders".\n';

describe("classifyRunnerFailure", () => {
  it("names the missing runner group, its organization and the policy key that chose it", () => {
    const f = classifyRunnerFailure(GROUP_MISSING, { scope: "org:acme", runnerGroup: "builders" });
    expect(f.code).toBe("RUNNER_GROUP_UNKNOWN");
    expect(f.text).toBe(
      'the runner group "builders" does not exist in the organization acme: create it on GitHub, or name an existing group in the policy\'s scopes.org:acme.runnerGroup',
    );
  });

  it("never echoes the runner's output: the group named is the record's, whatever the output says", () => {
    const f = classifyRunnerFailure('Could not find any self-hosted runner group named "token=SECRET".', { scope: "org:acme", runnerGroup: "gpu" });
    expect(f.text).toContain('"gpu"');
    expect(f.text).not.toContain("SECRET");
  });

  it("keeps the fixed text without a lane record, and for the other known failures", () => {
    expect(classifyRunnerFailure(GROUP_MISSING)).toEqual({ code: "RUNNER_GROUP_UNKNOWN", text: "the runner group does not exist in the organization" });
    expect(classifyRunnerFailure("A runner exists with the same name lane-1.", { scope: "org:acme", runnerGroup: "builders" }).code).toBe("RUNNER_NAME_TAKEN");
    expect(classifyRunnerFailure("something else").code).toBe("RUNNER_CONFIG_UNKNOWN");
  });
});

describe("configureArgs", () => {
  it("always turns the runner's self-update off: the version is policy", async () => {
    const { configureArgs } = await import("./runner-cli.js");
    const args = configureArgs({ githubUrl: "https://github.com/acme/api", laneId: "l1", labels: ["lk-managed"], runnerGroup: "" } as never);
    expect(args).toContain("--disableupdate");
    expect(args).not.toContain("--replace");
  });
});
