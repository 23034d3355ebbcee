import { describe, expect, it } from "vitest";
import { formatDuration, parseDuration } from "./duration.js";

describe("parseDuration", () => {
  it.each([
    ["1500", 1500],
    ["1500ms", 1500],
    ["3s", 3000],
    ["10m", 600_000],
    ["2h", 7_200_000],
    ["1d", 86_400_000],
    ["1h30m", 5_400_000],
  ])("%s → %i ms", (v, ms) => {
    expect(parseDuration(v)).toBe(ms);
  });

  it.each(["", "h", "2x", "1h 30m", "-3s", "3s2", "1.5h"])("refuses %j", (v) => {
    expect(() => parseDuration(v)).toThrow(/duration/);
  });
});

describe("formatDuration", () => {
  it.each([
    [850, "850ms"],
    [12_000, "12s"],
    [245_000, "4m05s"],
    [7_380_000, "2h03m"],
  ])("%i → %s", (ms, s) => {
    expect(formatDuration(ms)).toBe(s);
  });
});
