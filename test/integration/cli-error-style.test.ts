/**
 * Both built CLIs, `lanekeeper` and `lanekeeper-agent`, report failures in one style: a bad command line is exit
 * 2 with `error: … (USAGE)` and a `hint:` line on stderr; with `--json` the error is one JSON object on stdout.
 * Uses the built packages (npm run build); needs no NATS, GitHub or systemd.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const BINS = {
  lanekeeper: fileURLToPath(new URL("../../packages/coordinator/bin/lanekeeper.js", import.meta.url)),
  "lanekeeper-agent": fileURLToPath(new URL("../../packages/agent/bin/lanekeeper-agent.js", import.meta.url)),
} as const;
type Cli = keyof typeof BINS;

async function cli(which: Cli, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [BINS[which], ...args], { timeout: 60_000, env: { ...process.env, LANEKEEPER_POLICY: "" } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/** The error-and-hint pair, exactly two lines. */
const ONE_LINE_STYLE = /^error: [^\n]+ \(([A-Z_]+)\)\nhint: [^\n]+\n$/;

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lk-cli-errors-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe.each(["lanekeeper", "lanekeeper-agent"] as const)("%s", (which) => {
  it("exits 2 on an unknown option, with one error line naming USAGE and a hint to --help", async () => {
    const r = await cli(which, ["status", "--no-such-option"]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(ONE_LINE_STYLE);
    expect(r.stderr).toContain("--no-such-option");
    expect(r.stderr).toContain("(USAGE)");
    expect(r.stderr).toContain(`hint: see ${which} --help`);
  });

  it("exits 2 on an unknown command", async () => {
    const r = await cli(which, ["frobnicate"]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(ONE_LINE_STYLE);
  });

  it("prints a usage error as JSON on stdout with --json", async () => {
    const r = await cli(which, ["status", "--json", "--no-such-option"]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toBe("");
    const body = JSON.parse(r.stdout) as { error: { code: string; message: string; hint: string; exitCode: number } };
    expect(body.error.code).toBe("USAGE");
    expect(body.error.exitCode).toBe(2);
    expect(body.error.message).toContain("--no-such-option");
    expect(body.error.hint).toBe(`see ${which} --help`);
  });
});

describe("an unreadable config or policy", () => {
  it("is exit 3 in both CLIs, as JSON on stdout with --json", async () => {
    const missing = join(dir, "missing.yaml");
    const coord = await cli("lanekeeper", ["hosts", "list", "--policy", missing, "--json"]);
    const agent = await cli("lanekeeper-agent", ["audit", "verify", "--config", missing, "--json"]);
    for (const r of [coord, agent]) {
      expect(r.code, r.stderr).toBe(3);
      const body = JSON.parse(r.stdout) as { error: { code: string; message: string; hint: string; exitCode: number } };
      expect(body.error.exitCode).toBe(3);
      expect(body.error.message).toContain(missing);
      expect(body.error.hint.length).toBeGreaterThan(0);
    }
    expect((JSON.parse(coord.stdout) as { error: { code: string } }).error.code).toBe("POLICY_UNREADABLE");
    expect((JSON.parse(agent.stdout) as { error: { code: string } }).error.code).toBe("CONFIG_INVALID");
  });

  it("is the one error style on stderr without --json", async () => {
    const missing = join(dir, "missing.yaml");
    const coord = await cli("lanekeeper", ["hosts", "list", "--policy", missing]);
    expect(coord.code).toBe(3);
    expect(coord.stderr).toMatch(/^error: cannot read policy [^\n]+ \(POLICY_UNREADABLE\)\nhint: [^\n]+\n$/);
    const agent = await cli("lanekeeper-agent", ["audit", "verify", "--config", missing]);
    expect(agent.code).toBe(3);
    expect(agent.stderr).toMatch(/^error: agent config [^\n]+ is invalid \(CONFIG_INVALID\)\n {2}\(document\): [^\n]+\nhint: [^\n]+\n$/);
  });
});
