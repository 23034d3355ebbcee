import { makePolicy, hostPolicy } from "@lanekeeper/testing";
import { describe, expect, it } from "vitest";
import { parseRunnerApplications } from "../github/runner-parse.js";
import { observeRunnerReleases, runnerReleaseFromDownloads } from "./runner-releases.js";

const app = (slug: string, v: string, sha?: string): Record<string, unknown> => ({
  os: slug.split("-")[0],
  architecture: slug.split("-")[1],
  download_url: `https://github.com/actions/runner/releases/download/v${v}/actions-runner-${slug}-${v}.tar.gz`,
  filename: `actions-runner-${slug}-${v}.tar.gz`,
  ...(sha === undefined ? {} : { sha256_checksum: sha }),
});

describe("GitHub's current runner release", () => {
  it("is the version every archive's file name carries, with the checksums GitHub sent", () => {
    const apps = parseRunnerApplications([app("linux-x64", "2.337.0", "A".repeat(64)), app("linux-arm64", "2.337.0"), app("osx-x64", "2.337.0")], "t");
    const r = runnerReleaseFromDownloads(apps);
    expect(r).toMatchObject({ status: "ok", latest: "2.337.0" });
    expect(r.status === "ok" && r.downloads.map((d) => d.sha256)).toEqual(["a".repeat(64), undefined, undefined]);
  });

  it("is not trusted when the archives disagree or name no version", () => {
    expect(runnerReleaseFromDownloads(parseRunnerApplications([app("linux-x64", "2.337.0"), app("linux-arm64", "2.338.0")], "t"))).toMatchObject({
      status: "error",
      code: "RUNNER_RELEASE_INCONSISTENT",
    });
    expect(runnerReleaseFromDownloads([])).toMatchObject({ status: "error", code: "RUNNER_RELEASE_INCONSISTENT" });
    expect(() => parseRunnerApplications({ not: "an array" }, "t")).toThrow(/malformed/);
  });

  it("is read once, from an opted-in scope with systemd lanes, and a failure is an observation, not a throw", async () => {
    const policy = makePolicy({
      hosts: { h1: hostPolicy(1, true, 4) },
      scopes: { "acme/web": { optIn: false }, "acme/api": { optIn: true } },
      pools: { linux: { labels: ["linux"], backend: "systemd", mode: "persistent", runnerVersion: "latest" } },
      lanes: [
        { scope: "acme/web", pool: "linux", count: 1, hosts: ["h1"] },
        { scope: "acme/api", pool: "linux", count: 1, hosts: ["h1"] },
      ],
    });
    const asked: string[] = [];
    const ok = await observeRunnerReleases({ listRunnerDownloads: (s) => (asked.push(s), Promise.resolve(parseRunnerApplications([app("linux-x64", "2.337.0")], "t"))) }, policy);
    expect(asked).toEqual(["acme/api"]);
    expect(ok).toMatchObject({ status: "ok", latest: "2.337.0" });
    const failed = await observeRunnerReleases({ listRunnerDownloads: () => Promise.reject(Object.assign(new Error("boom"), { code: "GITHUB_API" })) }, policy);
    expect(failed).toEqual({ status: "error", code: "GITHUB_API", message: "boom" });
    expect(await observeRunnerReleases({ listRunnerDownloads: () => Promise.reject(new Error("never asked")) }, makePolicy())).toBeUndefined();
  });
});
