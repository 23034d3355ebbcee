import { describe, expect, it } from "vitest";
import { RejectReason } from "@lanekeeper/shared";
import { parseUnitFile, renderLaneUnit, unitMarkerKeys, type LaneUnitParams } from "./systemd-unit.js";
import { parseShowOutput } from "./systemd-runtime.js";

const params: LaneUnitParams = {
  laneId: "l1",
  hostId: "h1",
  marker: "abc_-",
  description: "lanekeeper lane l1 (acme/api p1)",
  user: "lanekeeper-runner",
  runnerDir: "/var/lib/lanekeeper-lanes/l1/runner",
  envFile: "/var/lib/lanekeeper-lanes/l1/lane.env",
  logFile: "/var/lib/lanekeeper-lanes/l1/runner.log",
  allowRoot: false,
  cpuMillis: 1500,
  memoryBytes: 1073741824,
};

describe("lane unit file", () => {
  it("renders markers, Restart=no, limits and an env file, and parses back", () => {
    const text = renderLaneUnit(params);
    const unit = parseUnitFile(text);
    expect(unitMarkerKeys(unit)).toEqual({ lane: "l1", host: "h1", marker: "abc_-", duplicated: false });
    expect(unit.get("Service.Restart")).toEqual(["no"]);
    expect(unit.get("Service.CPUQuota")).toEqual(["150%"]);
    expect(unit.get("Service.MemoryMax")).toEqual(["1073741824"]);
    expect(unit.get("Service.ExecStart")).toEqual(["/var/lib/lanekeeper-lanes/l1/runner/run.sh"]);
    expect(unit.get("Service.EnvironmentFile")).toEqual(["/var/lib/lanekeeper-lanes/l1/lane.env"]);
    expect(text).not.toMatch(/RUNNER_ALLOW_RUNASROOT/);
  });

  it("refuses values that could break the file's syntax", () => {
    for (const patch of [{ runnerDir: "/x\nExecStartPre=/bin/evil" }, { description: "a\nb" }, { user: "root\n" }, { envFile: "relative" }, { marker: "a b" }]) {
      expect(() => renderLaneUnit({ ...params, ...patch })).toThrow(expect.objectContaining({ reason: RejectReason.INVALID_NAME }));
    }
  });

  it("reports repeated marker keys", () => {
    const unit = parseUnitFile("[Unit]\nX-Lanekeeper-Lane=a\nX-Lanekeeper-Lane=b\n");
    expect(unitMarkerKeys(unit).duplicated).toBe(true);
  });

  it("parses systemctl show blocks", () => {
    const blocks = parseShowOutput("Id=a.service\nActiveState=active\n\nId=b.service\nActiveState=inactive\nX=y=z\n");
    expect(blocks).toEqual([
      { Id: "a.service", ActiveState: "active" },
      { Id: "b.service", ActiveState: "inactive", X: "y=z" },
    ]);
  });
});
