/**
 * What both built CLIs say about themselves, run as child processes: `--version` and `version --json` (version
 * from package.json and the checkout's git commit), `completion bash|zsh` generated from the program and sourced
 * in a real bash, whose completion function is then asked for a few words (COMP_WORDS → COMPREPLY); and
 * `lanekeeper audit tail -n 0` (nothing, exit 0) with its `-n` validation.
 */
import { execFile, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { nextAuditRecord, type AuditRecord } from "@lanekeeper/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const LANEKEEPER = fileURLToPath(new URL("../../packages/coordinator/bin/lanekeeper.js", import.meta.url));
const AGENT = fileURLToPath(new URL("../../packages/agent/bin/lanekeeper-agent.js", import.meta.url));
const REPO = fileURLToPath(new URL("../..", import.meta.url));

let dir = "";
let chain = "";

function cli(bin: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { timeout: 30_000, cwd: dir }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : -1, stdout, stderr });
    });
  });
}

/** Source `script` in a real bash and run the completion function for each line of words; COMPREPLY per line. */
async function bashComplete(program: string, script: string, lines: string[][]): Promise<string[]> {
  const file = join(dir, `${program}.bash`);
  await writeFile(file, script);
  const fn = `_${program.replace(/[^A-Za-z0-9]/g, "_")}`;
  const calls = lines
    .map((words) => {
      const quoted = words.map((w) => `'${w}'`).join(" ");
      return `COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; COMPREPLY=(); ${fn}; echo "\${COMPREPLY[*]}"`;
    })
    .join("\n");
  const r = spawnSync("bash", ["--norc", "--noprofile", "-c", `set -u\nsource ${file}\ncomplete -p ${program} >/dev/null\n${calls}`], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split("\n").slice(0, lines.length);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lk-cli-meta-"));
  chain = join(dir, "audit.jsonl");
  let prev: AuditRecord | undefined;
  const lines: string[] = [];
  for (const action of ["create", "drain", "remove"]) {
    const { record, line } = nextAuditRecord({ source: "coordinator", action, phase: "succeeded", laneId: "lane-1" }, prev, Date.now());
    prev = record;
    lines.push(line.toString("utf8"));
  }
  await writeFile(chain, lines.join(""));
});

afterAll(async () => {
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

describe("--version", () => {
  const commit = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: REPO, encoding: "utf8" }).stdout.trim();

  it.each([
    ["lanekeeper", LANEKEEPER, "coordinator"],
    ["lanekeeper-agent", AGENT, "agent"],
  ])("%s --version prints the package version and the checkout's commit; version --json the same as JSON", async (name, bin, pkg) => {
    const { version } = JSON.parse(await readFile(join(REPO, "packages", pkg, "package.json"), "utf8")) as { version: string };
    expect(commit).toMatch(/^[0-9a-f]{4,}$/);
    const plain = await cli(bin, ["--version"]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toBe(`${name} ${version} (commit ${commit})\n`);
    const json = await cli(bin, ["version", "--json"]);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ name, version, commit });
    expect((await cli(bin, ["version"])).stdout).toBe(plain.stdout);
  });
});

describe("completion", () => {
  it("lanekeeper completion bash: commands, subcommands, options and choices in a real bash", async () => {
    const r = await cli(LANEKEEPER, ["completion", "bash"]);
    expect(r.code, r.stderr).toBe(0);
    const got = await bashComplete("lanekeeper", r.stdout, [
      ["lanekeeper", "la"],
      ["lanekeeper", "lanes", ""],
      ["lanekeeper", "lanes", "drain", "lane-1", "--de"],
      ["lanekeeper", "status", "--w"],
      ["lanekeeper", "audit", "tail", "-"],
      ["lanekeeper", "completion", ""],
      ["lanekeeper", "plan", "--policy", ""],
      ["lanekeeper", "--ver"],
    ]);
    expect(got[0]).toBe("lanes");
    expect(got[1]!.split(" ")).toEqual(expect.arrayContaining(["list", "show", "drain", "restart", "remove", "hold", "release"]));
    expect(got[2]).toBe("--deadline");
    expect(got[3]).toBe("--watch");
    expect(got[4]!.split(" ")).toEqual(expect.arrayContaining(["-n", "--lines", "--stream", "--json", "--help"]));
    expect(got[5]).toBe("bash zsh");
    expect(got[6]).toBe(""); // the policy file: left to bash's file-name completion
    expect(got[7]).toBe("--version");
  });

  it("lanekeeper-agent completion bash in a real bash", async () => {
    const r = await cli(AGENT, ["completion", "bash"]);
    expect(r.code, r.stderr).toBe(0);
    const got = await bashComplete("lanekeeper-agent", r.stdout, [
      ["lanekeeper-agent", ""],
      ["lanekeeper-agent", "audit", "v"],
      ["lanekeeper-agent", "status", "--"],
      ["lanekeeper-agent", "init", "--host-id", ""],
    ]);
    expect(got[0]!.split(" ")).toEqual(["init", "run", "status", "hold", "release", "audit", "version", "completion"]);
    expect(got[1]).toBe("verify");
    expect(got[2]!.split(" ")).toEqual(expect.arrayContaining(["--config", "--socket", "--audit", "--json", "--help"]));
    expect(got[3]).toBe("");
  });

  it.each([
    ["lanekeeper", LANEKEEPER],
    ["lanekeeper-agent", AGENT],
  ])("%s completion zsh: a #compdef function over the same commands", async (name, bin) => {
    const r = await cli(bin, ["completion", "zsh"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.startsWith(`#compdef ${name}\n`)).toBe(true);
    expect(r.stdout).toContain(`compdef _${name.replace(/-/g, "_")} ${name}`);
    expect(r.stdout).toContain("'audit:");
    expect(r.stdout).toContain("'--json:");
  });

  it("an unknown shell is a usage error (exit 2)", async () => {
    const r = await cli(LANEKEEPER, ["completion", "fish"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/fish.*(USAGE)/);
  });
});

describe("lanekeeper audit tail -n", () => {
  it("-n 0 prints nothing and exits 0 ([] with --json)", async () => {
    const r = await cli(LANEKEEPER, ["audit", "tail", "--file", chain, "-n", "0"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("");
    const j = await cli(LANEKEEPER, ["audit", "tail", "--file", chain, "-n", "0", "--json"]);
    expect(j.code, j.stderr).toBe(0);
    expect(JSON.parse(j.stdout)).toEqual([]);
  });

  it("-n N prints the last N records", async () => {
    const r = await cli(LANEKEEPER, ["audit", "tail", "--file", chain, "-n", "2", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as AuditRecord[]).map((x) => x.action)).toEqual(["drain", "remove"]);
  });

  it.each([["-1"], ["1.5"], ["x"], ["100001"]])("-n %s is a usage error naming the option (exit 2)", async (n) => {
    const r = await cli(LANEKEEPER, ["audit", "tail", "--file", chain, "-n", n]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: option '-n, --lines <n>' argument '${n}' is invalid. must be a whole number from 0 to 100000 (USAGE)`);
    expect(r.stdout).toBe("");
  });
});
