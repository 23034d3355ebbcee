import { describe, expect, it } from "vitest";
import { onePoolPolicyYaml, policyIssues } from "@lanekeeper/testing";
import { parsePolicy, resolvePoolUpgrade } from "./policy.js";
import { cronWindowAt, formatInTimeZone, nextCronStartMs } from "./scaling-schedule.js";

/** A policy whose one pool has `upgrade` (YAML flow text). */
const policy = (upgrade: string): string => onePoolPolicyYaml({ pool: `    upgrade: ${upgrade}\n`, lane: "    count: 2\n" });
const issuesOf = policyIssues;

describe("pools.<p>.upgrade.window", () => {
  it("parses a window with its time zone defaulting to UTC, and resolvePoolUpgrade carries it", () => {
    const p = parsePolicy(policy('{ maxUnavailable: 2, window: { name: nightly, cron: "0 22 * * 1-5", duration: 4h } }'));
    expect(resolvePoolUpgrade(p.pools.linux!)).toEqual({
      maxUnavailable: 2,
      maxVersionLag: 1,
      window: { name: "nightly", cron: "0 22 * * 1-5", duration: "4h", timezone: "UTC" },
    });
    const q = parsePolicy(policy('{ window: { name: "weekend Berlin", cron: "0 6 * * 6", duration: 1d12h, timezone: Europe/Berlin } }'));
    expect(q.pools.linux!.upgrade?.window?.timezone).toBe("Europe/Berlin");
    expect(resolvePoolUpgrade(parsePolicy(policy("{ maxUnavailable: 1 }")).pools.linux!).window).toBeUndefined();
  });

  it.each([
    ["a 6-field cron", '{ window: { name: w, cron: "0 0 22 * * *", duration: 4h } }', 'pools.linux.upgrade.window.cron: must be a 5-field cron expression (minute hour day-of-month month day-of-week), e.g. "0 8 * * 1-5"'],
    ["a cron out of range", '{ window: { name: w, cron: "0 25 * * *", duration: 4h } }', "pools.linux.upgrade.window.cron: is not a valid cron expression"],
    ["an unknown time zone", '{ window: { name: w, cron: "0 22 * * *", duration: 4h, timezone: Mars/Olympus } }', 'pools.linux.upgrade.window.timezone: unknown time zone "Mars/Olympus"; use an IANA name such as Europe/Berlin or UTC'],
    ["a duration without a unit", '{ window: { name: w, cron: "0 22 * * *", duration: "4" } }', "pools.linux.upgrade.window.duration: must be a duration such as 90s, 5m, 10h or 1h30m"],
    ["a zero duration", '{ window: { name: w, cron: "0 22 * * *", duration: 0s } }', "pools.linux.upgrade.window.duration: must be longer than 0"],
    ["a missing name", '{ window: { cron: "0 22 * * *", duration: 4h } }', "pools.linux.upgrade.window.name:"],
    ["a bad name", '{ window: { name: "-x", cron: "0 22 * * *", duration: 4h } }', "pools.linux.upgrade.window.name: must be 1-63 letters, digits, spaces, '.', '_' or '-'"],
    ["an unknown key", '{ window: { name: w, cron: "0 22 * * *", duration: 4h, days: 3 } }', "pools.linux.upgrade.window.days: unknown key"],
  ])("refuses %s", (_what, upgrade, expected) => {
    const issues = issuesOf(policy(upgrade));
    expect(issues.some((i) => i.startsWith(expected)), issues.join("\n")).toBe(true);
  });
});

describe("cron windows", () => {
  const at = (iso: string): number => Date.parse(iso);
  const nightly = { cron: "0 22 * * *", duration: "4h", timezone: "Europe/Berlin" };

  it("is open from a start for the duration (end excluded), and says when it opens next", () => {
    expect(cronWindowAt(nightly, at("2026-12-05T21:00:00Z"))).toEqual({ open: true, startMs: at("2026-12-05T21:00:00Z"), endMs: at("2026-12-06T01:00:00Z") });
    expect(cronWindowAt(nightly, at("2026-12-06T00:59:59.999Z")).open).toBe(true);
    expect(cronWindowAt(nightly, at("2026-12-06T01:00:00Z"))).toEqual({ open: false, opensAtMs: at("2026-12-06T21:00:00Z") });
    expect(cronWindowAt(nightly, at("2026-12-05T20:59:59Z"))).toEqual({ open: false, opensAtMs: at("2026-12-05T21:00:00Z") });
    expect(nextCronStartMs("0 22 * * *", "UTC", at("2026-12-05T22:00:00Z"))).toBe(at("2026-12-06T22:00:00Z"));
  });

  it("formats an instant in the window's zone with its UTC instant", () => {
    expect(formatInTimeZone(at("2026-12-05T21:00:00Z"), "Europe/Berlin")).toBe("2026-12-05 22:00 Europe/Berlin (2026-12-05T21:00:00Z)");
    expect(formatInTimeZone(at("2026-07-01T00:05:00Z"), "America/New_York")).toBe("2026-06-30 20:05 America/New_York (2026-07-01T00:05:00Z)");
  });
});
