import { Backend, LaneMode, type LaneSpec } from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import { runnerDownloadFor } from "./runner-download.js";

const spec = (over: Partial<LaneSpec> = {}): LaneSpec => ({
  laneId: "l1",
  scope: "acme/api",
  pool: "p",
  backend: Backend.BACKEND_SYSTEMD,
  mode: LaneMode.LANE_MODE_PERSISTENT,
  labels: [],
  runnerGroup: "",
  githubUrl: "https://github.com/acme/api",
  runnerVersion: "2.330.0",
  image: "",
  limits: undefined,
  runnerDownload: undefined,
  ...over,
});
const app = (arch: string, version: string, sha?: string) => ({
  os: "linux",
  architecture: arch,
  filename: `actions-runner-linux-${arch}-${version}.tar.gz`,
  downloadUrl: `https://github.com/actions/runner/releases/download/v${version}/actions-runner-linux-${arch}-${version}.tar.gz`,
  sha256: sha,
});

describe("runnerDownloadFor", () => {
  const apps = [app("x64", "2.330.0", "a".repeat(64)), app("arm64", "2.330.0", "b".repeat(64)), app("x64", "2.331.0")];

  it("picks the pinned version for the host's architecture, with its checksum", () => {
    expect(runnerDownloadFor(spec(), apps, "x64")).toEqual({ url: apps[0]!.downloadUrl, sha256: "a".repeat(64), sizeBytes: 0 });
    expect(runnerDownloadFor(spec(), apps, "arm64")?.sha256).toBe("b".repeat(64));
    expect(runnerDownloadFor(spec(), apps, undefined)?.sha256).toBe("a".repeat(64));
  });

  it("sends none for an unlisted version, a missing or malformed checksum, or a container lane", () => {
    expect(runnerDownloadFor(spec({ runnerVersion: "2.329.0" }), apps, "x64")).toBeUndefined();
    expect(runnerDownloadFor(spec({ runnerVersion: "2.331.0" }), apps, "x64")).toBeUndefined();
    expect(runnerDownloadFor(spec(), [app("x64", "2.330.0", "xyz")], "x64")).toBeUndefined();
    expect(runnerDownloadFor(spec({ backend: Backend.BACKEND_CONTAINER, runnerVersion: "" }), apps, "x64")).toBeUndefined();
  });
});
