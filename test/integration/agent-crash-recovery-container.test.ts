// Crash safety of the container backend: a real LaneManager process against real Podman SIGKILLs itself after a
// journaled step of create or remove; a restarted one recovers, and the suite checks convergence (container, lane
// directory and GitHub registration either all there and running, or all gone).
import { spawn } from "node:child_process";
import { readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { Backend, signingKeyToPem } from "@lanekeeper/shared";
import { buildRunnerImage, makeTempDir, startGitHubEmulator, startPodmanService, type GitHubEmulator, type PodmanService, type RunnerImage } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentParts, eventually, FAST_HEALTH, HOST, laneSpec, registrationToken, removeToken, runnerNamed, type AgentParts } from "./agent-fixture.js";

const DRIVER = new URL("./agent-crash-driver.mjs", import.meta.url).pathname;
let gh: GitHubEmulator;
let podman: PodmanService;
let docker: Docker;
let image: RunnerImage;
const containers: string[] = [];

interface Agent {
  parts: AgentParts;
  paramsPath: string;
}

async function newAgent(laneId: string): Promise<Agent> {
  const root = await makeTempDir("lk-crash-ct-", tmpdir());
  const parts = await agentParts(root);
  await parts.audit.close();
  const keyFile = join(root, "identity.key");
  await writeFile(keyFile, signingKeyToPem(parts.key), { mode: 0o600 });
  const paramsPath = join(root, "params.json");
  const spec = laneSpec(laneId, gh, { backend: Backend.BACKEND_CONTAINER, runnerVersion: "", image: image.digestReference });
  await writeFile(
    paramsPath,
    JSON.stringify({ hostId: HOST, backend: "container", keyFile, laneRoot: parts.dirs.root, stateDir: parts.stateDir, auditPath: parts.auditPath, socketPath: podman.socketPath, image: image.digestReference, health: FAST_HEALTH, specs: { [laneId]: spec } }),
  );
  containers.push(`lanekeeper-lane-${laneId}`);
  return { parts, paramsPath };
}

function drive(a: Agent, op: string, laneId: string, secret: Buffer | undefined, crashAt?: string): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [DRIVER, a.paramsPath, op, laneId], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, ...(crashAt ? { LANEKEEPER_TEST_CRASH_AT: crashAt } : {}) },
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  child.stdin.end(secret ?? "");
  return new Promise((resolve) => child.once("exit", (code) => resolve({ code, out })));
}

async function recover(a: Agent): Promise<string[]> {
  const r = await drive(a, "recover", "x", undefined);
  expect(r.code, r.out).toBe(0);
  return (JSON.parse(r.out.trim().split("\n").at(-1) ?? "[]") as { outcome: string }[]).map((x) => x.outcome);
}

async function containerState(laneId: string): Promise<string> {
  return docker
    .getContainer(`lanekeeper-lane-${laneId}`)
    .inspect()
    .then(
      (i) => i.State.Status,
      () => "missing",
    );
}

async function journalEmpty(a: Agent): Promise<boolean> {
  return (await readdir(join(a.parts.stateDir, "journal")).catch(() => [])).length === 0;
}

beforeAll(async () => {
  [gh, podman, image] = await Promise.all([startGitHubEmulator({ repos: ["acme/api"] }), startPodmanService(), buildRunnerImage()]);
  docker = new Docker({ socketPath: podman.socketPath });
});

afterAll(async () => {
  for (const c of containers) await docker?.getContainer(c).remove({ force: true }).catch(() => undefined);
  await podman?.stop();
  await gh?.stop();
});

describe.concurrent("kill -9 of a container-lane operation, then recovery", () => {
  it("create crashed after the container was made (no secret in it yet): rolled back", async () => {
    const a = await newAgent("cb0");
    const r = await drive(a, "create", "cb0", await registrationToken(gh), "create:runtime");
    expect(r.out).not.toContain("completed");
    expect(await containerState("cb0")).toBe("created");
    expect(await recover(a)).toEqual(["rolled-back"]);
    expect(await containerState("cb0")).toBe("missing");
    expect(await a.parts.dirs.state("cb0")).toBe("missing");
    expect(await runnerNamed(gh, "cb0")).toBeUndefined();
    expect(await journalEmpty(a)).toBe(true);
  });

  it("create crashed after registration: rolled forward, the container runs with its one registration", async () => {
    const a = await newAgent("cf0");
    const r = await drive(a, "create", "cf0", await registrationToken(gh), "create:configured");
    expect(r.out).not.toContain("completed");
    expect(await recover(a)).toEqual(["rolled-forward"]);
    expect(await containerState("cf0")).toBe("running");
    expect((await gh.control.listRunners()).filter((x) => x.name === "cf0")).toHaveLength(1);
    await eventually(async () => (await runnerNamed(gh, "cf0"))?.status === "online", "cf0 online");
  });

  it("remove crashed after deregistration: the deletion is finished", async () => {
    const a = await newAgent("cr0");
    expect((await drive(a, "create", "cr0", await registrationToken(gh))).out).toContain("completed");
    const r = await drive(a, "remove", "cr0", await removeToken(gh), "remove:deregistered");
    expect(r.out).not.toContain("completed");
    expect(await recover(a)).toEqual(["rolled-forward"]);
    expect(await containerState("cr0")).toBe("missing");
    expect(await runnerNamed(gh, "cr0")).toBeUndefined();
    expect(await a.parts.dirs.state("cr0")).toBe("missing");
    expect(await journalEmpty(a)).toBe(true);
  });
});
