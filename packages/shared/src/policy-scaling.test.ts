import { describe, expect, it } from "vitest";
import { onePoolPolicyYaml, policyIssues } from "@lanekeeper/testing";
import { parsePolicy } from "./policy.js";
import { lastCronStartMs, parseDurationString } from "./scaling-schedule.js";

/** A policy whose only lanes entry ends with `lane` (YAML lines indented under the entry). */
const policy = (lane: string): string => onePoolPolicyYaml({ lane });
const issuesOf = policyIssues;

describe("scaling policy", () => {
  it("parses scaling with its defaults", () => {
    const p = parsePolicy(policy(`    scaling:
      min: 1
      max: 4
      schedules:
        - { name: office, cron: "0 8 * * 1-5", duration: 10h, min: 3 }
`));
    const lane = p.lanes[0];
    expect(lane?.count).toBeUndefined();
    expect(lane?.scaling).toEqual({
      min: 1,
      max: 4,
      idle: 0,
      scaleDownAfter: "5m",
      schedules: [{ name: "office", cron: "0 8 * * 1-5", duration: "10h", timezone: "UTC", min: 3 }],
    });
  });

  it("keeps the fixed count form", () => {
    expect(parsePolicy(policy("    count: 2\n")).lanes[0]?.count).toBe(2);
  });

  it.each([
    ["neither count nor scaling", "", "lanes[0]: set either count (a fixed number of lanes) or scaling (min/max lanes following the job queue)"],
    ["both count and scaling", "    count: 2\n    scaling: { min: 0, max: 2 }\n", "lanes[0]: set count or scaling, not both"],
    ["max below min", "    scaling: { min: 3, max: 2 }\n", "lanes[0].scaling.max: max (2) is below min (3)"],
    ["max beyond capacity", "    scaling: { min: 0, max: 7 }\n", "lanes[0].scaling.max: 7 lanes do not fit: the listed opted-in hosts have a total capacity of 6"],
    ["idle above max", "    scaling: { min: 0, max: 2, idle: 3 }\n", "lanes[0].scaling.idle: idle (3) is above max (2): at most max lanes ever exist"],
    ["a negative min", "    scaling: { min: -1, max: 2 }\n", "lanes[0].scaling.min: Too small: expected number to be >=0"],
    ["a bad scaleDownAfter", "    scaling: { min: 0, max: 2, scaleDownAfter: 5 minutes }\n", "lanes[0].scaling.scaleDownAfter: must be a duration such as 90s, 5m, 10h or 1h30m"],
    [
      "a bad cron",
      '    scaling: { min: 0, max: 2, schedules: [{ name: a, cron: "0 8 * *", duration: 1h, min: 1 }] }\n',
      'lanes[0].scaling.schedules[0].cron: must be a 5-field cron expression (minute hour day-of-month month day-of-week), e.g. "0 8 * * 1-5"',
    ],
    [
      "a 6-field cron",
      '    scaling: { min: 0, max: 2, schedules: [{ name: a, cron: "0 0 8 * * 1-5", duration: 1h, min: 1 }] }\n',
      'lanes[0].scaling.schedules[0].cron: must be a 5-field cron expression (minute hour day-of-month month day-of-week), e.g. "0 8 * * 1-5"',
    ],
    [
      "an out-of-range cron field",
      '    scaling: { min: 0, max: 2, schedules: [{ name: a, cron: "0 25 * * *", duration: 1h, min: 1 }] }\n',
      "lanes[0].scaling.schedules[0].cron: is not a valid cron expression",
    ],
    [
      "an unknown time zone",
      '    scaling: { min: 0, max: 2, schedules: [{ name: a, cron: "0 8 * * *", duration: 1h, timezone: Mars/Olympus, min: 1 }] }\n',
      'lanes[0].scaling.schedules[0].timezone: unknown time zone "Mars/Olympus"; use an IANA name such as Europe/Berlin or UTC',
    ],
    [
      "a bad duration",
      '    scaling: { min: 0, max: 2, schedules: [{ name: a, cron: "0 8 * * *", duration: ten hours, min: 1 }] }\n',
      "lanes[0].scaling.schedules[0].duration: must be a duration such as 90s, 5m, 10h or 1h30m",
    ],
    [
      "a zero duration",
      '    scaling: { min: 0, max: 2, schedules: [{ name: a, cron: "0 8 * * *", duration: 0s, min: 1 }] }\n',
      "lanes[0].scaling.schedules[0].duration: must be longer than 0",
    ],
    [
      "a schedule min above max",
      '    scaling: { min: 0, max: 2, schedules: [{ name: a, cron: "0 8 * * *", duration: 1h, min: 3 }] }\n',
      "lanes[0].scaling.schedules[0].min: min (3) is above the group's max (2)",
    ],
    [
      "a schedule idle above max",
      '    scaling: { min: 0, max: 2, schedules: [{ name: a, cron: "0 8 * * *", duration: 1h, min: 1, idle: 3 }] }\n',
      "lanes[0].scaling.schedules[0].idle: idle (3) is above the group's max (2)",
    ],
    [
      "two schedules of one name",
      '    scaling: { min: 0, max: 2, schedules: [{ name: a, cron: "0 8 * * *", duration: 1h, min: 1 }, { name: a, cron: "0 9 * * *", duration: 1h, min: 1 }] }\n',
      "lanes[0].scaling.schedules[1].name: schedules[0] has the same name",
    ],
    ["an unknown scaling key", "    scaling: { min: 0, max: 2, burst: 3 }\n", "lanes[0].scaling.burst: unknown key"],
  ])("refuses %s", (_what, lane, expected) => {
    const issues = issuesOf(policy(lane));
    expect(issues.some((i) => i.startsWith(expected)), issues.join("\n")).toBe(true);
  });
});

describe("scaling time arithmetic", () => {
  it("parses durations", () => {
    expect(parseDurationString("90s")).toBe(90_000);
    expect(parseDurationString("1h30m")).toBe(5_400_000);
    expect(() => parseDurationString("5")).toThrow(/duration/);
    expect(() => parseDurationString("")).toThrow(/duration/);
  });

  it("finds the latest window start at or before now, in the time zone", () => {
    const at = (iso: string): number => Date.parse(iso);
    // 08:00 in Berlin is 07:00 UTC in winter.
    expect(lastCronStartMs("0 8 * * 1-5", "Europe/Berlin", at("2026-12-04T07:00:00Z"))).toBe(at("2026-12-04T07:00:00Z"));
    expect(lastCronStartMs("0 8 * * 1-5", "Europe/Berlin", at("2026-12-04T06:59:59.999Z"))).toBe(at("2026-12-03T07:00:00Z"));
    // Saturday: the latest start is Friday's.
    expect(lastCronStartMs("0 8 * * 1-5", "Europe/Berlin", at("2026-12-05T12:00:00Z"))).toBe(at("2026-12-04T07:00:00Z"));
    // Summer time: 08:00 in Berlin is 06:00 UTC.
    expect(lastCronStartMs("0 8 * * *", "Europe/Berlin", at("2026-07-01T06:30:00Z"))).toBe(at("2026-07-01T06:00:00Z"));
  });
});
