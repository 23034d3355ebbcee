// Human output on stderr is never interleaved with raw JSON log lines: the real `lanekeeper` binary, planning
// against the GitHub emulator while it refuses every request with a secondary rate limit (so the GitHub client
// logs its throttling), renders its log lines for a person, or appends them as JSON to LANEKEEPER_LOG_FILE.
// Uses the built packages (npm run build).
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { generateSealingKey, generateSigningKey } from "@lanekeeper/shared";
import { startGitHubEmulator, type GitHubEmulator } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const BIN = new URL("../../packages/coordinator/bin/lanekeeper.js", import.meta.url).pathname;
const TOKEN_ENV = "LK_TEST_GH_TOKEN";
const run = promisify(execFile);

let emu: GitHubEmulator;
let dir: string;

async function lanekeeper(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const base = { PATH: process.env.PATH ?? "/usr/bin:/bin", [TOKEN_ENV]: emu.token };
  try {
    const r = await run(process.execPath, [BIN, ...args], { timeout: 60_000, cwd: dir, env: { ...base, ...env } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

beforeAll(async () => {
  emu = await startGitHubEmulator({ repos: ["acme/api"] });
  dir = await mkdtemp(join(tmpdir(), "lk-cli-log-"));
  const key = (k: Buffer): string => k.toString("base64");
  await writeFile(
    join(dir, "lanekeeper.yaml"),
    `github:\n  apiUrl: ${emu.apiUrl}\n  webUrl: ${emu.url}\n  auth: { tokenEnv: ${TOKEN_ENV} }\n` +
      // No coordinator key here: plan falls back to GitHub alone, which is what this test drives.
      `coordinator:\n  keyFile: ${join(dir, "absent.key")}\n  natsUrl: nats://127.0.0.1:1\n` +
      `hosts:\n  build01:\n    enrolled: { identityKey: ${key(generateSigningKey().publicKey)}, sealingKey: ${key(generateSealingKey().publicKey)} }\n    optIn: true\n    capacity: 2\n` +
      "scopes:\n  acme/api: { optIn: true }\n" +
      "pools:\n  linux:\n    labels: [linux]\n    backend: systemd\n    runnerVersion: 2.330.0\n" +
      "lanes:\n  - { scope: acme/api, pool: linux, count: 1, hosts: [build01] }\n",
  );
  await emu.control.setFaults({ rateLimit: { secondary: true, retryAfterS: 1 } });
});

afterAll(async () => {
  await emu?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

const jsonLines = (text: string): string[] => text.split("\n").filter((l) => l.trimStart().startsWith("{"));

describe("the coordinator CLI's log lines on stderr", () => {
  it("are rendered for a person, never raw JSON, while GitHub throttles", async () => {
    const r = await lanekeeper(["plan"], {});
    expect(r.stderr).toMatch(/^warn: GitHub secondary rate limit hit \(kind=secondary, method=GET, route=\S+, retryAfterSeconds=1, /m);
    expect(jsonLines(r.stderr)).toEqual([]);
    expect(r.stderr).not.toContain(emu.token);
  });

  it("go to LANEKEEPER_LOG_FILE as JSON lines instead, leaving stderr to the command", async () => {
    const r = await lanekeeper(["plan"], { LANEKEEPER_LOG_FILE: "lanekeeper.log" });
    expect(r.stderr).not.toContain("rate limit hit");
    expect(jsonLines(r.stderr)).toEqual([]);
    const lines = (await readFile(join(dir, "lanekeeper.log"), "utf8")).trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toContainEqual(expect.objectContaining({ level: 40, component: "lanekeeper", msg: "GitHub secondary rate limit hit", kind: "secondary" }));
  });

  it("stay JSON with --json, where stderr is for machines", async () => {
    const r = await lanekeeper(["plan", "--json"], {});
    expect(r.stderr).not.toMatch(/^warn: /m);
    const logs = jsonLines(r.stderr).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logs).toContainEqual(expect.objectContaining({ level: 40, msg: "GitHub secondary rate limit hit" }));
  });
});
