import { describe, expect, it } from "vitest";
import { parseAgentConfig } from "./agent-config.js";
import { isRejectError, RejectReason } from "./errors.js";
import { checkDownloadUrl, checkRunnerDownloadFields, DEFAULT_RUNNER_DOWNLOAD_ORIGINS, runnerArchiveFilename, runnerArchOf } from "./runner-download.js";

const reasonOf = (f: () => unknown): RejectReason | undefined => {
  try {
    f();
  } catch (err) {
    if (isRejectError(err)) return err.reason;
    throw err;
  }
  return undefined;
};

describe("runner downloads", () => {
  it("names archives the way GitHub does", () => {
    expect(runnerArchiveFilename("x64", "2.330.0")).toBe("actions-runner-linux-x64-2.330.0.tar.gz");
    expect(runnerArchOf("arm64")).toBe("arm64");
    expect(runnerArchOf("ia32")).toBeUndefined();
  });

  it("caps the wire fields", () => {
    const ok = { url: "https://github.com/a.tar.gz", sha256: "0".repeat(64), sizeBytes: 0 };
    expect(reasonOf(() => checkRunnerDownloadFields("d", ok))).toBeUndefined();
    expect(reasonOf(() => checkRunnerDownloadFields("d", { ...ok, sha256: "F".repeat(64) }))).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(reasonOf(() => checkRunnerDownloadFields("d", { ...ok, sizeBytes: -1 }))).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(reasonOf(() => checkRunnerDownloadFields("d", { ...ok, url: "" }))).toBe(RejectReason.PAYLOAD_MALFORMED);
  });

  it("allows only exact origins", () => {
    const origins = DEFAULT_RUNNER_DOWNLOAD_ORIGINS;
    expect(checkDownloadUrl("https://github.com/actions/runner/releases/download/v2.330.0/x.tar.gz", origins)).toMatch(/^https/);
    for (const bad of ["https://github.com.evil/x", "https://GITHUB.com/x", "https://github.com:443/x", "https://a@github.com/x", "https://github.com/x?y"]) {
      expect(reasonOf(() => checkDownloadUrl(bad, origins)), bad).toBe(RejectReason.DOWNLOAD_ORIGIN_NOT_ALLOWED);
    }
  });

  it("the agent config: defaults, mirror, caps and the cache outside runnerDistPath", () => {
    const base = "hostId: build01\nnats: { url: nats://127.0.0.1:4222 }\n";
    const c = parseAgentConfig(base);
    expect(c.runnerDownloads).toMatchObject({ origins: [...DEFAULT_RUNNER_DOWNLOAD_ORIGINS], allowInsecureHttpOrigins: [], cacheDir: "/var/lib/lanekeeper/runner-cache" });
    const m = parseAgentConfig(`${base}runnerDownloads: { mirrorDir: /srv/runners, mirrorUrlPrefix: "https://mirror.example/runners/" }\n`);
    expect(m.runnerDownloads.mirrorDir).toBe("/srv/runners");
    expect(() => parseAgentConfig(`${base}runnerDownloads: { mirrorUrlPrefix: "https://u:p@mirror.example/r/" }\n`)).toThrow(/credentials/);
    expect(() => parseAgentConfig(`${base}runnerDownloads: { mirrorUrlPrefix: "https://mirror.example/r" }\n`)).toThrow(/ending in \//);
    expect(() => parseAgentConfig(`${base}runnerDownloads: { origins: ["http://evil.example"] }\n`)).toThrow(/https/);
    expect(() => parseAgentConfig(`${base}runnerDownloads: { cacheDir: /opt/lanekeeper/runners/cache }\n`)).toThrow(/runnerDistPath/);
    expect(() => parseAgentConfig(`${base}runnerDownloads: { unknown: 1 }\n`)).toThrow();
  });
});
