/**
 * The emulator's runner downloads follow GitHub's: the endpoint lists the current release only (a coordinator
 * resolving `runnerVersion: latest` refuses a list naming several versions), while older releases' archives stay
 * downloadable at their URLs.
 */
import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGitHubEmulator, type GitHubEmulator } from "../src/index.js";

let emu: GitHubEmulator;

beforeAll(async () => {
  emu = await startGitHubEmulator({ token: "t-admin", repos: ["acme/api"], orgs: [], offlineAfterMs: 30_000 });
});

afterAll(async () => {
  await emu?.stop();
});

async function downloads(): Promise<{ os: string; architecture: string; filename: string; download_url: string; sha256_checksum: string }[]> {
  const res = await fetch(`${emu.apiUrl}/repos/acme/api/actions/runners/downloads`, { headers: { authorization: "token t-admin" } });
  expect(res.status).toBe(200);
  return (await res.json()) as never;
}

describe("runner releases", () => {
  it("a published version replaces the listed one; the older archive is still served and matches its checksum", async () => {
    const before = await downloads();
    const old = before.find((d) => d.architecture === "x64")!;
    const versionOf = (f: string): string | undefined => /-(\d+\.\d+\.\d+)\.(tar\.gz|zip)$/.exec(f)?.[1];
    expect(new Set(before.map((d) => versionOf(d.filename)))).toEqual(new Set([versionOf(old.filename)]));

    await emu.control.publishRunnerVersion("2.999.0");
    const after = await downloads();
    // Every platform's entry names the new release, so `latest` resolves to it.
    expect(new Set(after.map((d) => versionOf(d.filename)))).toEqual(new Set(["2.999.0"]));
    expect(after.filter((d) => d.os === "linux" && d.sha256_checksum !== undefined).map((d) => d.filename).sort()).toEqual([
      "actions-runner-linux-arm64-2.999.0.tar.gz",
      "actions-runner-linux-x64-2.999.0.tar.gz",
    ]);

    const res = await fetch(old.download_url);
    expect(res.status).toBe(200);
    expect(createHash("sha256").update(Buffer.from(await res.arrayBuffer())).digest("hex")).toBe(old.sha256_checksum);
  });

  it("a broken release is a real archive whose listener exits 1 at once", async () => {
    await emu.control.publishRunnerVersion("3.0.0", { broken: true });
    const d = (await downloads()).find((x) => x.filename === "actions-runner-linux-x64-3.0.0.tar.gz")!;
    const tar = gunzipSync(Buffer.from(await (await fetch(d.download_url)).arrayBuffer())).toString("latin1");
    expect(tar).toContain("./bin/Runner.Listener");
    expect(tar).toContain("Runner.Listener: broken release' >&2\nexit 1");
    expect(tar).toContain('RUNNER_VERSION = "3.0.0"');
  });
});
