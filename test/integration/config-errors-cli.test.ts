// Both real CLIs fed a broken file: the message names the file, line and column, for YAML syntax, schema and
// cross-field errors alike (one message for a tab indentation, not one per tabbed line), and the exit code is the
// documented CONFIG code (3). Uses the built packages (npm run build).
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const AGENT_BIN = new URL("../../packages/agent/bin/lanekeeper-agent.js", import.meta.url).pathname;
const COORDINATOR_BIN = new URL("../../packages/coordinator/bin/lanekeeper.js", import.meta.url).pathname;
const run = promisify(execFile);

let dir: string;

async function cli(bin: string, args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    const r = await run(process.execPath, [bin, ...args], { timeout: 30_000, cwd: dir });
    return { code: 0, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stderr: e.stderr ?? "" };
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lk-config-errors-"));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("config errors name the file, line and column", () => {
  it("lanekeeper-agent: a tab-indented agent.yaml gives one message at file:line:column", async () => {
    const file = join(dir, "agent.yaml");
    await writeFile(file, "hostId: build01\nnats:\n\turl: nats://127.0.0.1:4222\ncontrol:\n\tenabled: false\n");
    const r = await cli(AGENT_BIN, ["run", "--config", file]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`${file}:3:1: a tab is used for indentation (YAML allows spaces only) on lines 3, 5; indent with spaces`);
    expect(r.stderr.match(/tab/g)).toHaveLength(1);
  });

  it("lanekeeper-agent: a schema error names the file, line and column", async () => {
    const file = join(dir, "agent-unknown.yaml");
    await writeFile(file, "hostId: build01\nnats: { url: 'nats://127.0.0.1:4222' }\nnatsUrl: nats://x\n");
    const r = await cli(AGENT_BIN, ["hold", "l1", "--config", file]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`agent config ${file} is invalid`);
    expect(r.stderr).toContain(`\n  ${file}:3:1: natsUrl: unknown key`);
    await writeFile(file, "hostId: build01\nnats:\n  url: nats://127.0.0.1:4222\ncontrol:\n  enabled: yes\n  maxLanes: -1\n");
    const wrong = await cli(AGENT_BIN, ["hold", "l1", "--config", file]);
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toContain(`\n  ${file}:5:3: control.enabled: `);
    expect(wrong.stderr).toContain(`\n  ${file}:6:3: control.maxLanes: `);
  });

  it("lanekeeper: a YAML syntax error in lanekeeper.yaml gives file:line:column", async () => {
    const file = join(dir, "lanekeeper.yaml");
    await writeFile(file, "github:\n  apiUrl: https://api.github.com\n  auth: { tokenEnv: T\ncoordinator: {}\n");
    const r = await cli(COORDINATOR_BIN, ["plan", "--policy", file]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`policy ${file} is invalid`);
    // One issue line, placed: the parser's cascade after the first error is not shown.
    const issues = r.stderr.split("\n").filter((l) => l.startsWith("  "));
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(new RegExp(`^  ${file}:\\d+:\\d+: `));
  });

  it("lanekeeper: duplicate keys, schema and cross-field errors are placed in the file", async () => {
    const file = join(dir, "dup.yaml");
    await writeFile(file, "github: {}\ncoordinator: {}\ngithub: {}\n");
    const dup = await cli(COORDINATOR_BIN, ["plan", "--policy", file]);
    expect(dup.code).toBe(3);
    expect(dup.stderr).toContain(`${file}:3:1: github: duplicate key; keep only one`);
    await writeFile(file, "github: {}\ncoordinator: {}\npoolz: {}\n");
    const unknown = await cli(COORDINATOR_BIN, ["hosts", "list", "--policy", file]);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain(`policy ${file} is invalid`);
    expect(unknown.stderr).toContain(`\n  ${file}:3:1: poolz: unknown key`);
    // A missing required key is placed at its parent; a cross-field rule at the node it names.
    await writeFile(
      file,
      "github:\n  auth: { tokenEnv: GH }\ncoordinator:\n  natsUrl: nats://127.0.0.1:4222\nhosts: {}\nscopes:\n  acme/api: { optIn: true }\n" +
        "pools:\n  p: { backend: systemd, mode: persistent, runnerVersion: 2.330.0, labels: [linux] }\n" +
        "lanes:\n  - { scope: acme/api, pool: p, count: 1, hosts: [h1] }\n",
    );
    const missing = await cli(COORDINATOR_BIN, ["plan", "--policy", file]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain(`\n  ${file}:3:1: coordinator.keyFile: `);
    await writeFile(file, (await readFile(file, "utf8")).replace("coordinator:\n", "coordinator:\n  keyFile: /etc/lk/key\n"));
    const cross = await cli(COORDINATOR_BIN, ["hosts", "list", "--policy", file]);
    expect(cross.code).toBe(3);
    expect(cross.stderr).toContain(`\n  ${file}:12:51: lanes[0].hosts[0]: host "h1" is not enrolled`);
  });
});
