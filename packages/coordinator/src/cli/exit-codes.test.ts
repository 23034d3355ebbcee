import { readFileSync } from "node:fs";
import { COMMON_EXIT_CODES, ConfigError, LanekeeperError, REJECT_REASONS, RejectError, RejectReason, SHARED_OWN_ERROR_CODES } from "@lanekeeper/shared";
import { CommanderError } from "commander";
import { describe, expect, it } from "vitest";
import { agentReasonCode, ApplyRefusedError, StepFailure } from "../apply/apply-errors.js";
import { DispatchError } from "../dispatch/dispatcher.js";
import { RESULT_REJECT_REASONS, ResultRejectedError, ResultRejectReason } from "../dispatch/result-verifier.js";
import { COORDINATOR_OWN_ERROR_CODES, type CoordinatorErrorCode } from "../error-codes.js";
import { GitHubAuthError, GitHubCredentialError, GitHubRateLimitReserveError } from "../github/github-errors.js";
import { LaneStoreCorruptError } from "../lane-store-kv/kv-lane-store.js";
import { LaneStoreConflictError } from "../observe/lane-store.js";
import { CliError } from "./cli-errors.js";
import { EXIT_BY_CODE, ExitCode, exitCodeFor, exitCodeForObservedCode, hintFor } from "./exit-codes.js";

const ALL_CODES: readonly string[] = [...REJECT_REASONS, ...SHARED_OWN_ERROR_CODES, ...RESULT_REJECT_REASONS, ...COORDINATOR_OWN_ERROR_CODES];
const EXIT_VALUES = Object.values(ExitCode).filter((v): v is ExitCode => typeof v === "number");

describe("exitCodeFor", () => {
  it.each([
    [new ConfigError("policy", [{ path: "a", message: "b" }]), ExitCode.CONFIG],
    [new CliError("POLICY_UNREADABLE", "x"), ExitCode.CONFIG],
    [new GitHubAuthError({ operation: "listRunners", status: 401 }), ExitCode.GITHUB_AUTH],
    [new GitHubCredentialError("x"), ExitCode.GITHUB_AUTH],
    [new GitHubRateLimitReserveError("listRunners", 1, 2, 3), ExitCode.GITHUB_UNAVAILABLE],
    [new CliError("HOST_EXISTS", "x"), ExitCode.INPUT],
    [new RejectError(RejectReason.INVALID_NAME, "x"), ExitCode.INPUT],
    [new ApplyRefusedError("LANE_NOT_FOUND", "x"), ExitCode.INPUT],
    [new CommanderError(1, "commander.unknownOption", "x"), ExitCode.USAGE],
    [new LanekeeperError<string>("SOMETHING_ELSE", "x"), ExitCode.FAILURE],
    [new Error("boom"), ExitCode.FAILURE],
  ])("%o → %i", (err, code) => {
    expect(exitCodeFor(err)).toBe(code);
  });

  // These four fell through to exit 1 before the table was exhaustive.
  it.each([
    [new LaneStoreCorruptError("lane-a", "bad JSON"), ExitCode.LANE_STORE_CORRUPT, 12],
    [new LaneStoreConflictError("lane-a", "revision moved"), ExitCode.CONFLICT, 13],
    [new DispatchError("DISPATCH_UNKNOWN_HOST", "host h9 is not enrolled"), ExitCode.INPUT, 6],
    [new DispatchError("DISPATCH_BAD_RESULT", "signature"), ExitCode.BAD_REPLY, 15],
    [new DispatchError("DISPATCH_TIMEOUT", "no answer"), ExitCode.HOST_UNREACHABLE, 14],
    [new DispatchError("DISPATCH_NO_RESPONDERS", "nobody"), ExitCode.HOST_UNREACHABLE, 14],
    [new ApplyRefusedError("NOT_LEADER", "x"), ExitCode.CONFLICT, 13],
  ])("%o → %i (%i)", (err, code, n) => {
    expect(exitCodeFor(err)).toBe(code);
    expect(code).toBe(n);
  });

  it("treats a refused reply as BAD_REPLY whatever its reason", () => {
    expect(exitCodeFor(new ResultRejectedError(RejectReason.BAD_SIGNATURE, "x"))).toBe(ExitCode.BAD_REPLY);
    expect(exitCodeFor(new ResultRejectedError(ResultRejectReason.DIGEST_MISMATCH, "x"))).toBe(ExitCode.BAD_REPLY);
  });

  it("maps a step failure by its code, and one with a code only the agent knows to ACTION_FAILED", () => {
    expect(exitCodeFor(new StepFailure("DRAIN_DEADLINE", "x"))).toBe(ExitCode.NEEDS_ATTENTION);
    expect(exitCodeFor(new StepFailure("VERIFY_GONE_TIMEOUT", "x"))).toBe(ExitCode.ACTION_FAILED);
    expect(exitCodeFor(new StepFailure(agentReasonCode("RUNTIME_FAILED"), "x"))).toBe(ExitCode.ACTION_FAILED);
  });

  it("maps a scope's observation code by the table, and an unknown one to GITHUB_UNAVAILABLE", () => {
    expect(exitCodeForObservedCode("GITHUB_AUTH")).toBe(ExitCode.GITHUB_AUTH);
    expect(exitCodeForObservedCode("SOMETHING_NEW")).toBe(ExitCode.GITHUB_UNAVAILABLE);
  });
});

describe("EXIT_BY_CODE", () => {
  it("maps every coordinator error code, and nothing else, to a failing exit code", () => {
    expect(Object.keys(EXIT_BY_CODE).sort()).toEqual([...new Set(ALL_CODES)].sort());
    for (const code of ALL_CODES) {
      const exit = EXIT_BY_CODE[code as CoordinatorErrorCode];
      expect(EXIT_VALUES, code).toContain(exit);
      expect(exit, code).not.toBe(ExitCode.OK);
    }
  });

  it("uses distinct numbers, and 0 to 3 mean what they mean in lanekeeper-agent", () => {
    expect(new Set(EXIT_VALUES).size).toBe(EXIT_VALUES.length);
    for (const [k, v] of Object.entries(COMMON_EXIT_CODES)) expect(ExitCode[k as keyof typeof ExitCode]).toBe(v);
  });

  it("has a hint for every failing exit code, and every exit code is documented in docs/coordinator.md", () => {
    const doc = readFileSync(new URL("../../../../docs/coordinator.md", import.meta.url), "utf8");
    for (const v of EXIT_VALUES) {
      const name = ExitCode[v];
      expect(doc, `exit ${v}`).toMatch(new RegExp(`^\\| ${v} \\| ${name} \\|`, "m"));
      if (v !== ExitCode.OK) expect(hintFor(v).length, name).toBeGreaterThan(0);
    }
  });
});
