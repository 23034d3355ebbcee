import { describe, expect, it } from "vitest";
import { cliErrorReport, COMMON_EXIT_CODES, renderCliError, usageError, type CliErrorPolicy } from "./cli-error.js";
import { ConfigError, LanekeeperError, RejectError, RejectReason, UsageError } from "./errors.js";

const policy: CliErrorPolicy = {
  exitCodeFor: (err) => (err instanceof UsageError ? COMMON_EXIT_CODES.USAGE : err instanceof LanekeeperError ? 7 : COMMON_EXIT_CODES.FAILURE),
  hintFor: (exitCode) => `generic advice for ${exitCode}`,
};

describe("cliErrorReport", () => {
  it("takes a lanekeeper error's code and message, and the exit code's advice when it has no hint", () => {
    expect(cliErrorReport(new RejectError(RejectReason.LANE_HELD, "lane l1 is held"), policy)).toEqual({
      code: "LANE_HELD",
      message: "lane l1 is held",
      hint: "generic advice for 7",
      exitCode: 7,
    });
  });

  it("prefers the error's own hint", () => {
    const err = new LanekeeperError("KEY_INVALID", "bad key", { hint: "run keys generate" });
    expect(cliErrorReport(err, policy).hint).toBe("run keys generate");
  });

  it("reports anything else as INTERNAL, marked unexpected", () => {
    expect(cliErrorReport(new TypeError("x is undefined"), policy)).toEqual({
      code: "INTERNAL",
      message: "unexpected error: x is undefined",
      hint: "generic advice for 1",
      exitCode: 1,
    });
  });

  it("turns commander's message into a USAGE error that points at --help", () => {
    const report = cliErrorReport(usageError("error: unknown option '--nope'\n", "tool --help"), policy);
    expect(report).toEqual({ code: "USAGE", message: "unknown option '--nope'", hint: "see tool --help", exitCode: 2 });
  });
});

describe("renderCliError", () => {
  const report = { code: "HOST_NOT_FOUND", message: "host h9 is not enrolled", hint: "check the host id", exitCode: 6 };

  it("prints one error line with the code and one hint line, on stderr only", () => {
    expect(renderCliError(report, false)).toEqual({
      stdout: "",
      stderr: "error: host h9 is not enrolled (HOST_NOT_FOUND)\nhint: check the host id\n",
    });
  });

  it("keeps the lines of a multi-line message between the error line and the hint", () => {
    const err = new ConfigError("policy p.yaml", [
      { path: "hosts.h1.capacity", message: "must be an integer" },
      { path: "", message: "BOM" },
    ]);
    const text = renderCliError(cliErrorReport(err, policy), false);
    expect(text.stderr).toBe(
      "error: policy p.yaml is invalid (CONFIG_INVALID)\n  hosts.h1.capacity: must be an integer\n  (document): BOM\nhint: generic advice for 7\n",
    );
  });

  it("prints one line of JSON on stdout only with --json", () => {
    const text = renderCliError(report, true);
    expect(text.stderr).toBe("");
    expect(text.stdout.endsWith("\n")).toBe(true);
    expect(text.stdout.trimEnd().includes("\n")).toBe(false);
    expect(JSON.parse(text.stdout)).toEqual({ error: report });
  });
});
