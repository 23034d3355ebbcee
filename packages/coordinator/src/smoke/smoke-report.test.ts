import { describe, expect, it } from "vitest";
import { smokeReportToText, type SmokeReport } from "./smoke-report.js";

const base: SmokeReport = {
  ok: false,
  runId: "smoke-0a1b2c3d",
  scope: "acme/sandbox",
  hostId: "build01",
  pool: "linux-x64",
  backend: "systemd",
  laneId: "smoke-0a1b2c3d",
  label: "lanekeeper-smoke-0a1b2c3d",
  interrupted: true,
  steps: [
    { name: "preflight", status: "ok", elapsedMs: 400, detail: "opted in" },
    { name: "restart", status: "failed", elapsedMs: 5_000, code: "SMOKE_INTERRUPTED", detail: "interrupted (SIGINT)" },
    { name: "cleanup", status: "failed", elapsedMs: 600_000, code: "DRAIN_DEADLINE", detail: "a job is running" },
  ],
  leftovers: [{ what: "lane smoke-0a1b2c3d of acme/sandbox on build01 (a job still runs on it; nothing was killed)", command: "lanekeeper lanes remove smoke-0a1b2c3d" }],
  elapsedMs: 606_000,
};

describe("smoke report (human)", () => {
  it("prints every step with its timing, what is left with the command that finishes it, and the verdict", () => {
    const text = smokeReportToText(base);
    expect(text).toContain("✗ restart");
    expect(text).toContain("SMOKE_INTERRUPTED: interrupted (SIGINT)");
    expect(text).toContain("NOT CLEANED UP:");
    expect(text).toContain("finish with: lanekeeper lanes remove smoke-0a1b2c3d");
    expect(text.trimEnd().split("\n").at(-1)).toMatch(/^smoke INTERRUPTED in /);
    const clean = smokeReportToText({ ...base, ok: true, interrupted: false, leftovers: [], steps: [base.steps[0]!] });
    expect(clean).toContain("nothing of the smoke lane is left (registration, unit, record)");
    expect(clean).toMatch(/smoke PASSED in /);
  });
});
