import { readFileSync } from "node:fs";
import { COMMON_EXIT_CODES, ConfigError, LanekeeperError, REJECT_REASONS, RejectError, RejectReason, SHARED_OWN_ERROR_CODES } from "@lanekeeper/shared";
import { CommanderError } from "commander";
import { describe, expect, it } from "vitest";
import { agentReasonCode, ApplyRefusedError, StepFailure } from "../apply/apply-errors.js";
import { DispatchError } from "../dispatch/dispatcher.js";
import { RESULT_REJECT_REASONS, ResultRejectedError, ResultRejectReason } from "../dispatch/result-verifier.js";
import { COORDINATOR_OWN_ERROR_CODES, type CoordinatorErrorCode } from "../error-codes.js";
import { GitHubAuthError, GitHubCredentialError, GitHubForbiddenError, GitHubRateLimitReserveError } from "../github/github-errors.js";
import { LaneStoreCorruptError } from "../lane-store-kv/kv-lane-store.js";
import { LaneStoreConflictError } from "../observe/lane-store.js";
import { CliError } from "./cli-errors.js";
import { SavedPlanError } from "../plan/saved-plan.js";
import { DetailedExitCode, EXIT_BY_CODE, ExitCode, exitCodeFor, exitCodeForArgv, exitCodeForObservedCode, hintFor, planExitCode } from "./exit-codes.js";

const ALL_CODES: readonly string[] = [...REJECT_REASONS, ...SHARED_OWN_ERROR_CODES, ...RESULT_REJECT_REASONS, ...COORDINATOR_OWN_ERROR_CODES];
const EXIT_VALUES = Object.values(ExitCode).filter((v): v is ExitCode => typeof v === "number");

describe("exitCodeFor", () => {
  it.each([
    [new ConfigError("policy", [{ path: "a", message: "b" }]), ExitCode.CONFIG],
    [new CliError("POLICY_UNREADABLE", "x"), ExitCode.CONFIG],
    [new GitHubAuthError({ operation: "listRunners", status: 401 }), ExitCode.GITHUB_AUTH],
    [new GitHubForbiddenError({ operation: "listRunners", status: 403 }), ExitCode.GITHUB_AUTH],
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

describe("plan exit codes", () => {
  const complete = { scopesUnavailable: [], degraded: false };
  it("a degraded view is DEGRADED (17), never 0, with or without --detailed-exitcode, whatever the actions", () => {
    for (const detailed of [false, true]) {
      for (const actions of [0, 3]) expect(planExitCode({ ...complete, degraded: true, actions }, detailed)).toBe(17);
    }
    expect(ExitCode.DEGRADED).toBe(17);
  });

  it("GitHub partly unreadable keeps its code (4 over 5), before DEGRADED", () => {
    const scopes = [{ code: "GITHUB_NOT_FOUND" }, { code: "GITHUB_AUTH" }];
    expect(planExitCode({ scopesUnavailable: scopes, degraded: true, actions: 1 }, true)).toBe(ExitCode.GITHUB_AUTH);
    expect(planExitCode({ scopesUnavailable: [{ code: "GITHUB_RATE_LIMITED" }], degraded: true, actions: 0 }, false)).toBe(5);
  });

  it("--detailed-exitcode: 0 no changes, 2 changes; without it, 0 either way", () => {
    expect(planExitCode({ ...complete, actions: 0 }, true)).toBe(DetailedExitCode.NO_CHANGES);
    expect(planExitCode({ ...complete, actions: 2 }, true)).toBe(2);
    expect(planExitCode({ ...complete, actions: 2 }, false)).toBe(ExitCode.OK);
  });

  it("--detailed-exitcode turns a command-line error into 1, so 2 only ever means changes", () => {
    expect(exitCodeForArgv(ExitCode.USAGE, ["plan", "--detailed-exitcode", "--nope"])).toBe(1);
    expect(exitCodeForArgv(ExitCode.USAGE, ["plan", "--nope"])).toBe(ExitCode.USAGE);
    expect(exitCodeForArgv(ExitCode.CONFIG, ["plan", "--detailed-exitcode"])).toBe(ExitCode.CONFIG);
  });

  it("a stale saved plan is PLAN_STALE (18), an invalid one INPUT (6)", () => {
    expect(exitCodeFor(new SavedPlanError("PLAN_STALE", "GUARD_FAILED", "x", "plan.json"))).toBe(18);
    expect(exitCodeFor(new SavedPlanError("PLAN_INVALID", "MALFORMED", "x", "plan.json"))).toBe(ExitCode.INPUT);
  });
});
