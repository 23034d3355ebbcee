import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { COMMON_EXIT_CODES, ConfigError, LanekeeperError, REJECT_REASONS, RejectError, RejectReason, SHARED_OWN_ERROR_CODES, usageError } from "@lanekeeper/shared";
import { AGENT_OWN_ERROR_CODES, type AgentErrorCode, AgentInitError, AgentLockedError, AuditChainBrokenError, StatusUnavailableError } from "./errors.js";
import { TrustError } from "./intake/agent-trust.js";
import { EXIT, EXIT_BY_CODE, exitCodeFor, hintFor } from "./exit-codes.js";

const ALL_CODES: readonly string[] = [...REJECT_REASONS, ...SHARED_OWN_ERROR_CODES, ...AGENT_OWN_ERROR_CODES];

describe("exitCodeFor", () => {
  it("maps every documented class of error to its code", () => {
    expect(exitCodeFor(new ConfigError("agent config", [{ path: "x", message: "y" }]))).toBe(EXIT.CONFIG);
    expect(exitCodeFor(new AgentLockedError("x"))).toBe(EXIT.LOCKED);
    expect(exitCodeFor(new StatusUnavailableError("x"))).toBe(EXIT.STATUS_UNAVAILABLE);
    expect(exitCodeFor(new RejectError(RejectReason.LANE_NOT_FOUND, "x"))).toBe(EXIT.LANE_NOT_FOUND);
    expect(exitCodeFor(new RejectError(RejectReason.JOB_RUNNING, "x"))).toBe(EXIT.REFUSED);
    expect(exitCodeFor(new AgentInitError("NOT_INITIALIZED", "x"))).toBe(EXIT.KEYS);
    expect(exitCodeFor(new AuditChainBrokenError("x"))).toBe(EXIT.AUDIT);
    expect(exitCodeFor(usageError("error: unknown option '--nope'", "lanekeeper-agent --help"))).toBe(EXIT.USAGE);
    expect(exitCodeFor(new Error("boom"))).toBe(EXIT.FAILURE);
  });

  it("gives the trust file's errors the key exit code instead of falling through to 1", () => {
    expect(exitCodeFor(new TrustError("TRUST_FILE_INVALID", "x"))).toBe(EXIT.KEYS);
    expect(exitCodeFor(new TrustError("TRUST_ROLLBACK", "x"))).toBe(EXIT.KEYS);
  });

  it("falls back to FAILURE for a code outside the agent's table", () => {
    expect(exitCodeFor(new LanekeeperError<string>("NOT_AN_AGENT_CODE", "x"))).toBe(EXIT.FAILURE);
  });

  it("uses distinct numbers, and 0 to 3 mean what they mean in lanekeeper", () => {
    const values = Object.values(EXIT);
    expect(new Set(values).size).toBe(values.length);
    for (const [k, v] of Object.entries(COMMON_EXIT_CODES)) expect(EXIT[k as keyof typeof EXIT]).toBe(v);
  });
});

describe("EXIT_BY_CODE", () => {
  it("maps every agent error code, and nothing else, to a documented exit code", () => {
    expect(Object.keys(EXIT_BY_CODE).sort()).toEqual([...new Set(ALL_CODES)].sort());
    const exits = new Set<number>(Object.values(EXIT));
    for (const code of ALL_CODES) expect(exits.has(EXIT_BY_CODE[code as AgentErrorCode]), code).toBe(true);
  });

  it("has no code mapped to success", () => {
    for (const code of ALL_CODES) expect(EXIT_BY_CODE[code as AgentErrorCode], code).not.toBe(EXIT.OK);
  });

  it("has a hint for every failing exit code, and every exit code is documented in docs/agent.md", () => {
    const doc = readFileSync(new URL("../../../docs/agent.md", import.meta.url), "utf8");
    for (const v of Object.values(EXIT)) {
      if (v === EXIT.OK) continue;
      expect(hintFor(v).length, String(v)).toBeGreaterThan(0);
      expect(doc, `exit ${v}`).toMatch(new RegExp(`^\\| ${v} \\|`, "m"));
    }
  });
});
