/**
 * The `lanekeeper` CLI against the real GitHub emulator: `plan` (table and JSON, exit codes for a missing
 * credential and an unobservable scope) and `hosts list|add|remove` editing a real policy file with comments.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { canonicalLabels, enrollmentBundleYaml, generateSealingKey, generateSigningKey, makeEnrollmentBundle, parsePolicy } from "@lanekeeper/shared";
import { runCommand, startGitHubEmulator, type GitHubEmulator } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CliIo } from "../../packages/coordinator/src/cli/cli-io.js";
import { runCli } from "../../packages/coordinator/src/cli/program.js";

const NOW = Date.parse("2030-01-01T00:00:00Z");
const TOKEN_ENV = "LK_TEST_GH_TOKEN";
const bin = fileURLToPath(new URL("../../packages/coordinator/bin/lanekeeper.js", import.meta.url));

let emu: GitHubEmulator;
let dir: string;

function hostYaml(hostId: string, optIn: boolean, capacity: number): string {
  const id = generateSigningKey().publicKey.toString("base64");
  const seal = generateSealingKey().publicKey.toString("base64");
  return `  ${hostId}:\n    enrolled:\n      identityKey: ${id}\n      sealingKey: ${seal}\n    optIn: ${optIn}\n    capacity: ${capacity}\n`;
}

function policyText(scopes: string[], count: number): string {
  return (
    "# lanekeeper policy for the CLI test\n" +
    `github:\n  apiUrl: ${emu.apiUrl}\n  webUrl: ${emu.url}\n  auth:\n    tokenEnv: ${TOKEN_ENV}  # the token lives in the environment\n` +
    "coordinator:\n  keyFile: /etc/lanekeeper/coordinator.key\n  natsUrl: nats://127.0.0.1:4222\n" +
    "hosts:\n" +
    hostYaml("build01", true, 4) +
    hostYaml("build02", true, 4) +
    `scopes:\n${scopes.map((s) => `  ${s}:\n    optIn: true\n`).join("")}` +
    "pools:\n  linux-x64:\n    labels: [linux, x64]\n    backend: systemd\n    runnerVersion: 2.330.0\n" +
    `lanes:\n${scopes.map((s) => `  - scope: ${s}\n    pool: linux-x64\n    count: ${count}\n    hosts: [build01, build02]  # spread\n`).join("")}`
  );
}

interface Run {
  code: number;
  out: string;
  err: string;
}

async function cli(argv: string[], env: Record<string, string | undefined> = { [TOKEN_ENV]: emu.token }): Promise<Run> {
  let out = "";
  let err = "";
  const io: CliIo = { out: (s) => void (out += s), err: (s) => void (err += s), env, cwd: dir, now: () => NOW };
  const code = await runCli(argv, io);
  return { code, out, err };
}

async function addRunner(scope: string, name: string, labels: string[]): Promise<number> {
  const res = await fetch(`${emu.apiUrl}/repos/${scope}/actions/runners/generate-jitconfig`, {
    method: "POST",
    headers: { authorization: `token ${emu.token}`, "content-type": "application/json" },
    body: JSON.stringify({ name, runner_group_id: 1, labels }),
  });
  return ((await res.json()) as { runner: { id: number } }).runner.id;
}

beforeAll(async () => {
  emu = await startGitHubEmulator({ repos: ["acme/api", "acme/web", "acme/ops"] });
  dir = await mkdtemp(join(tmpdir(), "lk-cli-"));
});

afterAll(async () => {
  await emu?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("lanekeeper plan", () => {
  it("prints a readable plan of creates for an empty fleet, and says hosts are unknown", async () => {
    await writeFile(join(dir, "lanekeeper.yaml"), policyText(["acme/web"], 3));
    const r = await cli(["plan"]);
    // No coordinator key here (so no NATS, no records, no inventories): a degraded view, exit 17, said loudly.
    expect(r.code).toBe(17);
    expect(r.err).toMatch(/^DEGRADED \(COORDINATOR_KEY_UNREADABLE\): the coordinator key \/etc\/lanekeeper\/coordinator\.key could not be read/m);
    expect(r.out).toMatch(/^!! DEGRADED VIEW/m);
    expect(r.out).toMatch(/ACTION\s+LANE\s+HOST\s+SCOPE\/POOL\s+REASON/);
    expect(r.out.match(/^create\s+linux-x64-[0-9a-f]{6}\s+build0[12]\s+acme\/web linux-x64\s+SCALE_UP/gm)).toHaveLength(3);
    expect(r.out).toContain("no agent inventories were read");
    expect(r.out).toContain("NO_INVENTORY");
    expect(r.out).toContain("Nothing was changed.");
  });

  it("prints JSON with lane records, leaves unmanaged runners alone and lists them", async () => {
    await writeFile(join(dir, "lanekeeper.yaml"), policyText(["acme/api"], 2));
    const lane = "linux-x64-aaaaaa";
    const labels = canonicalLabels({ laneId: lane, hostId: "build01", pool: "linux-x64", capabilityLabels: ["linux", "x64"] });
    const id = await addRunner("acme/api", "build01-lane", labels);
    const handMade = await addRunner("acme/api", "hand-made", ["self-hosted", "linux"]);
    await writeFile(
      join(dir, "records.json"),
      JSON.stringify([{ laneId: lane, scope: "acme/api", pool: "linux-x64", hostId: "build01", runnerId: id, state: "active", createdAtMs: NOW - 1000, updatedAtMs: NOW - 1000 }]),
    );
    const r = await cli(["plan", "--json", "--records", "records.json"]);
    // Records from a file, no agent inventory: degraded (exit 17), the gap named in the JSON.
    expect(r.code).toBe(17);
    expect(JSON.parse(r.out)).toMatchObject({ degraded: true, gaps: [{ code: "INVENTORIES_NOT_READ" }] });
    const j = JSON.parse(r.out) as {
      actions: { kind: string; runnerId?: number }[];
      counts: Record<string, number>;
      classification: { unmanaged: { runnerId: number }[]; lanes: Record<string, number> };
      observation: { scopesObserved: string[]; hostsUnknown: string[] };
      githubCalls: { requests: number };
    };
    expect(j.counts.create).toBe(1);
    expect(j.classification.lanes.managed).toBe(1);
    expect(j.classification.unmanaged.map((u) => u.runnerId)).toEqual([handMade]);
    expect(j.actions.some((a) => a.runnerId === handMade)).toBe(false);
    expect(j.observation.scopesObserved).toEqual(["acme/api"]);
    expect(j.observation.hostsUnknown).toEqual(["build01", "build02"]);
    // One runner listing, and GitHub's runner downloads (the current release, for runnerVersion checks).
    expect(j.githubCalls.requests).toBe(2);
    expect(r.out).not.toContain(emu.token);
  });

  it("exits 4 naming the variable when the token is missing", async () => {
    await writeFile(join(dir, "lanekeeper.yaml"), policyText(["acme/api"], 1));
    const r = await cli(["plan"], {});
    expect(r.code).toBe(4);
    expect(r.err).toContain(TOKEN_ENV);
  });

  it("exits 4 when GitHub refuses the token, and 5 when a scope cannot be listed, printing the plan anyway", async () => {
    await writeFile(join(dir, "lanekeeper.yaml"), policyText(["acme/api"], 1));
    const refused = await cli(["plan", "--json"], { [TOKEN_ENV]: "wrong-token" });
    expect(refused.code).toBe(4);
    expect((JSON.parse(refused.out) as { partial: boolean }).partial).toBe(true);

    await writeFile(join(dir, "lanekeeper.yaml"), policyText(["acme/ops", "acme/missing"], 1));
    const r = await cli(["plan"]);
    expect(r.code).toBe(5);
    expect(r.out).toContain("NOT observed: acme/missing (GITHUB_NOT_FOUND)");
    expect(r.out).toMatch(/^create\s+\S+\s+\S+\s+acme\/ops /m);
    expect(r.out).not.toMatch(/^create\s+\S+\s+\S+\s+acme\/missing /m);
  });

  it("exits 4 with GITHUB_FORBIDDEN naming the scope and the permission when the token has no admin rights (GitHub refuses runner reads too)", async () => {
    await writeFile(join(dir, "lanekeeper.yaml"), policyText(["acme/api"], 1));
    const reader = await emu.control.createToken("plan-reader", "read");
    const r = await runCommand(process.execPath, [bin, "plan", "--policy", join(dir, "lanekeeper.yaml")], {
      env: { PATH: process.env.PATH ?? "", [TOKEN_ENV]: reader },
    });
    expect(r.code).toBe(4);
    expect(r.stdout).toContain("NOT observed: acme/api (GITHUB_FORBIDDEN)");
    const all = r.stdout + r.stderr;
    expect(all).toContain("lacks admin rights on repository acme/api");
    expect(all).toContain('"Administration: read and write"');
    expect(all).toContain("administration=read");
    expect(all).not.toContain(reader);

    const json = await runCommand(process.execPath, [bin, "plan", "--json", "--policy", join(dir, "lanekeeper.yaml")], {
      env: { PATH: process.env.PATH ?? "", [TOKEN_ENV]: reader },
    });
    expect(json.code).toBe(4);
    expect(json.stdout).toContain('"GITHUB_FORBIDDEN"');
    expect(json.stdout).not.toContain(reader);
  });

  it("maps usage errors to exit 2 and bad policies to exit 3", async () => {
    expect((await cli(["plan", "--max-removals", "-1"])).code).toBe(2);
    expect((await cli(["nope"])).code).toBe(2);
    await writeFile(join(dir, "bad.yaml"), "github: {}\n");
    const bad = await cli(["plan", "--policy", "bad.yaml", "--json"]);
    expect(bad.code).toBe(3);
    expect((JSON.parse(bad.out) as { error: { code: string } }).error.code).toBe("CONFIG_INVALID");
  });

  it("runs as the built binary", async () => {
    await writeFile(join(dir, "lanekeeper.yaml"), policyText(["acme/web"], 1));
    const r = await runCommand(process.execPath, [bin, "plan", "--json", "--policy", join(dir, "lanekeeper.yaml")], {
      env: { PATH: process.env.PATH ?? "", [TOKEN_ENV]: emu.token },
    });
    expect(r.code).toBe(17); // degraded: no coordinator key here, so no NATS
    expect(r.stderr).toContain("DEGRADED (COORDINATOR_KEY_UNREADABLE)");
    expect((JSON.parse(r.stdout) as { counts: { create: number } }).counts.create).toBe(1);
  });
});

describe("lanekeeper hosts", () => {
  it("adds a host from the agent's YAML bundle opted out, keeping the policy's comments", async () => {
    const path = join(dir, "lanekeeper.yaml");
    await writeFile(path, policyText(["acme/api"], 1));
    const key = generateSigningKey();
    const seal = generateSealingKey();
    await writeFile(
      join(dir, "bundle.yaml"),
      enrollmentBundleYaml(makeEnrollmentBundle({ hostId: "build03", identityPublicKey: key.publicKey, sealingPublicKey: seal.publicKey, agentVersion: "0.1.0" })),
    );
    const r = await cli(["hosts", "add", "bundle.yaml", "--capacity", "6"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("optIn: false");
    const text = await readFile(path, "utf8");
    expect(text).toContain("# lanekeeper policy for the CLI test");
    expect(text).toContain("# the token lives in the environment");
    expect(text).toContain("# spread");
    expect(text).toContain(`identity key id ${key.keyId}`);
    const pol = parsePolicy(text);
    expect(pol.hosts.build03).toMatchObject({ optIn: false, capacity: 6 });

    const again = await cli(["hosts", "add", "bundle.yaml"]);
    expect(again.code).toBe(6);
    expect(again.err).toContain("already enrolled");

    const list = await cli(["hosts", "list", "--json"]);
    const hosts = (JSON.parse(list.out) as { hosts: { hostId: string; optIn: boolean; identityKeyId: string; usedBy: string[] }[] }).hosts;
    expect(hosts.map((h) => h.hostId)).toEqual(["build01", "build02", "build03"]);
    expect(hosts[2]).toMatchObject({ optIn: false, identityKeyId: key.keyId, usedBy: [] });
    expect(hosts[0]?.usedBy).toEqual(["acme/api linux-x64"]);

    const human = await cli(["hosts", "list"]);
    expect(human.out).toMatch(/^build03\s+no\s+6\s+/m);

    expect((await cli(["hosts", "remove", "build01"])).code).toBe(6);
    const removed = await cli(["hosts", "remove", "build03", "--json"]);
    expect(removed.code).toBe(0);
    expect(parsePolicy(await readFile(path, "utf8")).hosts.build03).toBeUndefined();
    expect((await cli(["hosts", "remove", "build03"])).code).toBe(6);
  });

  it("adds from the JSON bundle with --opt-in, and refuses a bundle whose key id does not match", async () => {
    const path = join(dir, "lanekeeper.yaml");
    await writeFile(path, policyText(["acme/api"], 1));
    const key = generateSigningKey();
    const seal = generateSealingKey();
    const bundle = makeEnrollmentBundle({ hostId: "build04", identityPublicKey: key.publicKey, sealingPublicKey: seal.publicKey, agentVersion: "0.1.0" });
    await writeFile(join(dir, "bad.json"), JSON.stringify({ ...bundle, identityKeyId: "f".repeat(64) }));
    const bad = await cli(["hosts", "add", "bad.json", "--json"]);
    expect(bad.code).toBe(6);
    expect((JSON.parse(bad.out) as { error: { code: string } }).error.code).toBe("ENROLLMENT_INVALID");
    await writeFile(join(dir, "good.json"), JSON.stringify(bundle));
    const good = await cli(["hosts", "add", "good.json", "--opt-in", "--capacity", "2"]);
    expect(good.code).toBe(0);
    expect(parsePolicy(await readFile(path, "utf8")).hosts.build04).toMatchObject({ optIn: true, capacity: 2 });
    // The same identity key under another host id is refused by the policy's own rules.
    await writeFile(join(dir, "dup.json"), JSON.stringify({ ...bundle, hostId: "build05" }));
    const dup = await cli(["hosts", "add", "dup.json"]);
    expect(dup.code).toBe(6);
    expect(dup.err).toContain("same identity key");
  });
});
