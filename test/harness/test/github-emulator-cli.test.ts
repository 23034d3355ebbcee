/**
 * The `lk-github-emulator` command (built `dist/`, as `npm run build` leaves it) and `--state-file`
 * persistence across a restart.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Octokit } from "@octokit/rest";
import { afterAll, describe, expect, it } from "vitest";
import { makeTempDir, startGitHubEmulator, type GitHubEmulator } from "../src/index.js";
import { ProtocolRunner, rawRegister } from "./github-emulator-fixtures.js";

const BIN = fileURLToPath(new URL("../bin/lk-github-emulator.js", import.meta.url));
const DIST_CLI = fileURLToPath(new URL("../dist/github-emulator/cli.js", import.meta.url));
const children: ChildProcess[] = [];
const emulators: GitHubEmulator[] = [];
const dirs: string[] = [];

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await Promise.all(emulators.map((e) => e.stop()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** Runs the bin; resolves with its exit code and output. */
function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("lk-github-emulator", () => {
  it("needs the built dist/ (npm run build)", () => {
    expect(existsSync(DIST_CLI), `${DIST_CLI} is missing: run npm run build first`).toBe(true);
  });

  it("prints one ready line with its base URL, serves the REST API there, and exits 0 on SIGTERM", async () => {
    const child = spawn(process.execPath, [BIN, "--port", "0", "--token", "T", "--repo", "acme/api", "--org", "acme", "--offline-after-ms", "500"], { stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const line = await new Promise<string>((resolve, reject) => {
      let buf = "";
      child.stdout.on("data", (d: Buffer) => {
        buf += d.toString();
        if (buf.includes("\n")) resolve(buf.split("\n")[0] as string);
      });
      child.on("exit", (code) => reject(new Error(`exited ${code} before ready`)));
    });
    const match = /^lk-github-emulator ready (http:\/\/127\.0\.0\.1:\d+) api=(\S+)$/.exec(line);
    expect(match).not.toBeNull();
    const [, base, api] = match as unknown as [string, string, string];
    expect(api).toBe(`${base}/api/v3`);
    const octokit = new Octokit({ baseUrl: api, auth: "T" });
    expect((await octokit.actions.listSelfHostedRunnersForRepo({ owner: "acme", repo: "api" })).data).toEqual({ total_count: 0, runners: [] });
    expect((await octokit.actions.createRegistrationTokenForOrg({ org: "acme" })).status).toBe(201);
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  });

  it("--help exits 0; a missing --token or a bad --repo exits 2 with a message", async () => {
    const help = await run(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--offline-after-ms");
    const noToken = await run(["--port", "0"]);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain("--token is required");
    const badRepo = await run(["--token", "T", "--repo", "not-a-repo"]);
    expect(badRepo.code).toBe(2);
    expect(badRepo.stderr).toContain('repos[0]: expected owner/name, got "not-a-repo"');
  });
});

describe("--state-file", () => {
  it("keeps registrations, groups, tokens, sessions and jobs across a restart, without plaintext secrets", async () => {
    const dir = await makeTempDir("lk-ghemu-state-");
    dirs.push(dir);
    const stateFile = join(dir, "state.json");
    const first = await startGitHubEmulator({ token: "T", repos: ["acme/api"], orgs: ["acme"], stateFile, offlineAfterMs: 30_000 });
    emulators.push(first);
    const o1 = new Octokit({ baseUrl: first.apiUrl, auth: "T" });
    const regToken = (await o1.actions.createRegistrationTokenForRepo({ owner: "acme", repo: "api" })).data.token;
    const runner = await ProtocolRunner.register(first.url, regToken, { url: first.webUrl("acme/api"), name: "keeper", labels: ["k"] });
    expect(await runner.connect()).toBe(201);
    const group = await o1.request("POST /orgs/{org}/actions/runner-groups", { org: "acme", name: "kept-group" });
    const job = await first.control.createJob("acme/api", { labels: ["nobody"] });
    await first.stop();

    const text = await readFile(stateFile, "utf8");
    expect(text).not.toContain(regToken);
    expect(text).not.toContain(runner.credential);
    expect((await readdir(dir)).filter((f) => f.endsWith(".tmp"))).toEqual([]);

    const second = await startGitHubEmulator({ token: "T", repos: ["acme/api"], orgs: ["acme"], stateFile, offlineAfterMs: 30_000 });
    emulators.push(second);
    const o2 = new Octokit({ baseUrl: second.apiUrl, auth: "T" });
    const listed = await o2.actions.listSelfHostedRunnersForRepo({ owner: "acme", repo: "api" });
    expect(listed.data.runners.map((r) => [r.id, r.name, r.status])).toEqual([[runner.agentId, "keeper", "online"]]);
    expect((await o2.request("GET /orgs/{org}/actions/runner-groups/{runner_group_id}", { org: "acme", runner_group_id: group.data.id })).data.name).toBe("kept-group");
    expect((await second.control.getJob(job.id)).status).toBe("queued");
    // The session survived: the runner keeps polling on the new server; its credential still works.
    const moved = new ProtocolRunner(second.url, runner.agentId, runner.credential);
    moved.sessionId = runner.sessionId;
    expect((await moved.poll(50)).status).toBe(204);
    // The registration token too, and ids keep counting.
    const again = await rawRegister(second.url, regToken, { url: second.webUrl("acme/api"), name: "newer", labels: [] });
    expect(again.status).toBe(201);
    expect((again.body as { agentId: number }).agentId).toBeGreaterThan(runner.agentId);
  });
});
