// The real `lanekeeper-agent` binary: `init`, `run` (inside the systemd sandbox, like a production agent),
// `status` over the real gRPC unix socket (managed lane, hand-made unit and runner directory, audit tail), local
// `hold`/`release` picked up by the running agent's health loop, `audit verify`, the single-instance lock, and the
// documented exit codes. Uses the built packages (npm run build).
import { execFile, type ChildProcess } from "node:child_process";
import { appendFile, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { AgentStatusReport, AuditLog, signingKeyFromPem } from "@lanekeeper/shared";
import { startGitHubEmulator, startSystemdSandbox, type GitHubEmulator, type SystemdSandbox } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT, INSTANCE_LOCK_FILE, LaneDirectories, LaneManager, MarkerSigner, SystemdRuntime } from "../../packages/agent/src/index.js";
import { auditRecords, eventually, FAST_HEALTH, HOST, installRunnerDist, laneSpec, registrationToken, runnerNamed, sandboxRunner } from "./agent-fixture.js";

const BIN = new URL("../../packages/agent/bin/lanekeeper-agent.js", import.meta.url).pathname;
const run = promisify(execFile);

let gh: GitHubEmulator;
let sd: SystemdSandbox;
let root: string;
let config: string;
let socket: string;
let stateDir: string;
let agent: ChildProcess | undefined;
let agentLog = "";
const HANDMADE_UNIT = "actions.runner.acme-api.handmade.service";

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [BIN, ...args], { timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

async function status(): Promise<AgentStatusReport> {
  const r = await cli(["status", "--socket", socket, "--json", "--audit", "50"]);
  expect(r.code, r.stderr).toBe(0);
  return AgentStatusReport.fromJSON(JSON.parse(r.stdout));
}

function startAgent(): ChildProcess {
  const c = sd.spawn(process.execPath, [BIN, "run", "--config", config]);
  c.stdout?.on("data", (d: Buffer) => (agentLog += d.toString()));
  c.stderr?.on("data", (d: Buffer) => (agentLog += d.toString()));
  return c;
}

async function listenerPid(laneId: string): Promise<number | undefined> {
  for (const pid of await sd.unitHostPids(`lanekeeper-lane-${laneId}.service`)) {
    if ((await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")).trim() === "Runner.Listener") return pid;
  }
  return undefined;
}

beforeAll(async () => {
  gh = await startGitHubEmulator({ repos: ["acme/api"] });
  sd = await startSystemdSandbox();
  root = join(sd.root, "agent");
  config = join(root, "agent.yaml");
  stateDir = join(root, "state");
  socket = join(root, "run", "agent.sock");
  const init = await cli(["init", "--host-id", HOST, "--config", config, "--state-dir", stateDir]);
  expect(init.code, init.stderr).toBe(0);
  const dist = await installRunnerDist(root);
  const handmadeRoot = join(root, "handmade-runners");
  await mkdir(join(handmadeRoot, "r1"), { recursive: true });
  await writeFile(join(handmadeRoot, "r1", ".runner"), JSON.stringify({ agentId: 41, agentName: "handmade-dir", gitHubUrl: gh.webUrl("acme/api") }));
  await appendFile(
    config,
    [
      `unitDir: ${sd.unitDir}`,
      "runAsUser: root",
      `runnerDistPath: ${dist}`,
      `statusSocket: ${socket}`,
      `runnerRoots: [${handmadeRoot}]`,
      "health: { intervalMs: 200, maxRestarts: 5, windowMs: 120000, backoffBaseMs: 50, backoffMaxMs: 200 }",
      "inventoryIntervalMs: 500",
      "",
    ].join("\n"),
  );
  await sd.writeUnit(HANDMADE_UNIT, `[Unit]\nDescription=hand made\n[Service]\nWorkingDirectory=${join(handmadeRoot, "r1")}\nExecStart=/bin/sleep 100000\n`);
  await sd.systemctl("daemon-reload");
  await sd.systemctl("start", HANDMADE_UNIT);
  // A managed lane, created with the agent's own key before the agent starts (intents arrive in a later issue).
  const cfgText = await readFile(config, "utf8");
  const laneRoot = /^laneRoot: (.*)$/m.exec(cfgText)?.[1] ?? "";
  const key = signingKeyFromPem(await readFile(join(stateDir, "identity.key"), "utf8"));
  const signer = new MarkerSigner(HOST, key);
  const dirs = new LaneDirectories(laneRoot, signer);
  const audit = await AuditLog.open(join(stateDir, "audit.log"), { mode: 0o600 });
  const rt = new SystemdRuntime({
    hostId: HOST,
    unitDir: sd.unitDir,
    signer,
    dirs,
    runnerDistPath: dist,
    user: { name: "root", uid: 0, gid: 0, home: "/root" },
    systemctl: sandboxRunner((cmd, args, o) => sd.exec(cmd, args, o)),
    cgroupRoots: [sd.cgroupPath],
  });
  const lanes = new LaneManager({ hostId: HOST, stateDir, dirs, runtimes: { systemd: rt }, audit, health: FAST_HEALTH, auditSource: `agent:${HOST}` });
  await lanes.create({ spec: laneSpec("st1", gh), registrationToken: await registrationToken(gh) });
  await audit.close();
  agent = startAgent();
  await eventually(async () => (await stat(socket).catch(() => undefined))?.isSocket(), `status socket (agent log: ${agentLog})`);
});

afterAll(async () => {
  agent?.kill("SIGKILL");
  await sd?.stop();
  await gh?.stop();
});

describe("lanekeeper-agent status over the real socket", () => {
  it("shows the managed lane, the hand-made unit and runner directory, and the audit tail", async () => {
    const r = await status();
    expect(r.hostId).toBe(HOST);
    expect(r.controlEnabled).toBe(false);
    expect(r.lanes.map((l) => l.laneId)).toEqual(["st1"]);
    expect(r.lanes[0]?.runnerName).toBe("st1");
    const names = r.unmanaged.map((u) => `${u.kind}:${u.name}:${u.reason}`);
    expect(names).toContain(`systemd-unit:${HANDMADE_UNIT}:NO_MARKER`);
    expect(names.some((n) => n.startsWith("runner-dir:") && n.endsWith("/r1:NO_MARKER"))).toBe(true);
    expect(r.recentAudit.filter((a) => a.laneId === "st1" && a.action === "create").map((a) => a.phase)).toEqual(["planned", "started", "succeeded"]);
    const human = await cli(["status", "--socket", socket]);
    expect(human.stdout).toContain("LANES (1)");
    expect(human.stdout).toMatch(/st1\s+systemd\s+running/);
    expect(human.stdout).toContain(HANDMADE_UNIT);
    expect(human.stdout).toContain("control: disabled");
  });

  it("serves the socket 0660 in a 0750 directory", async () => {
    expect((await stat(socket)).mode & 0o777).toBe(0o660);
    expect((await stat(join(root, "run"))).mode & 0o777).toBe(0o750);
  });

  it("applies a local hold: no restart of a held lane; release lets the agent restart it", async () => {
    const hold = await cli(["hold", "st1", "--reason", "kernel update", "--config", config]);
    expect(hold.code, hold.stderr).toBe(0);
    await eventually(async () => (await status()).lanes[0]?.held === true, "held in status");
    await eventually(async () => (await auditRecords(join(stateDir, "audit.log"))).some((a) => a.action === "hold" && a.laneId === "st1"), "hold audited");
    const pid = await eventually(() => listenerPid("st1"), "listener");
    process.kill(pid, "SIGKILL");
    await eventually(async () => (await sd.unitProperties("lanekeeper-lane-st1.service", ["ActiveState"])).ActiveState !== "active", "lane down");
    // Several health passes (200 ms apart) later the held lane is still down.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await sd.unitProperties("lanekeeper-lane-st1.service", ["ActiveState"])).ActiveState).not.toBe("active");
    const release = await cli(["release", "st1", "--config", config]);
    expect(release.code).toBe(0);
    await eventually(async () => (await sd.unitProperties("lanekeeper-lane-st1.service", ["ActiveState"])).ActiveState === "active", "restarted by the agent");
    // The agent writes `succeeded` once the start it asked for has returned, a moment after the unit is active.
    const restartPhases = async (): Promise<string[]> =>
      (await auditRecords(join(stateDir, "audit.log"))).filter((a) => a.action === "health-restart" && a.laneId === "st1").map((a) => a.phase);
    await eventually(async () => (await restartPhases()).includes("succeeded"), "the restart audited as succeeded");
    expect(await restartPhases()).toEqual(["planned", "started", "succeeded"]);
    expect(await runnerNamed(gh, "st1")).toBeDefined();
  });

  it("refuses to hold a lane that does not exist, with its exit code", async () => {
    const r = await cli(["hold", "nope", "--config", config]);
    expect(r.code).toBe(EXIT.LANE_NOT_FOUND);
    expect(r.stderr).toContain("does not exist");
  });

  it("verifies the audit chain, and reports a tampered copy", async () => {
    const ok = await cli(["audit", "verify", "--config", config]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("chain intact");
    const text = await readFile(join(stateDir, "audit.log"), "utf8");
    const tampered = join(root, "tampered.log");
    await writeFile(tampered, text.replace('"phase":"succeeded"', '"phase":"failed"'));
    const bad = await cli(["audit", "verify", "--file", tampered]);
    expect(bad.code).toBe(EXIT.AUDIT);
    expect(bad.stderr).toContain("chain broken");
  });

  it("refuses a second agent on the same state directory: one lock, taken once by run, covers daemon and intake", async () => {
    const lockFiles = async (): Promise<string[]> => (await readdir(stateDir)).filter((f) => f.endsWith(".lock")).sort();
    // The running agent (daemon and NATS intake alike) holds exactly one lock file.
    expect(await lockFiles()).toEqual([INSTANCE_LOCK_FILE]);
    const holder = await readFile(join(stateDir, INSTANCE_LOCK_FILE), "utf8");
    const second = sd.spawn(process.execPath, [BIN, "run", "--config", config]);
    let err = "";
    second.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => second.once("exit", (c) => resolve(c)));
    expect(code).toBe(EXIT.LOCKED);
    expect(err).toContain("another lanekeeper-agent");
    // The refused run left the first agent's lock as it was, and the first agent still answers.
    expect(await lockFiles()).toEqual([INSTANCE_LOCK_FILE]);
    expect(await readFile(join(stateDir, INSTANCE_LOCK_FILE), "utf8")).toBe(holder);
    expect((await status()).hostId).toBe(HOST);
  });

  it("rejects an invalid config with path: message and its exit code", async () => {
    const badConfig = join(root, "bad.yaml");
    await writeFile(badConfig, `${await readFile(config, "utf8")}\nsurprise: 1\n`);
    const runBad = await cli(["run", "--config", badConfig]);
    expect(runBad.code).toBe(EXIT.CONFIG);
    expect(runBad.stderr).toContain("surprise");
  });

  it("stops cleanly on SIGTERM and removes its socket; status then exits with STATUS_UNAVAILABLE", async () => {
    const a = agent;
    agent = undefined;
    a?.kill("SIGTERM");
    const code = await new Promise<string>((resolve) => a?.once("exit", (c, sig) => resolve(`${c}/${sig}`)));
    expect(code, agentLog.slice(-2000)).toBe("0/null");
    expect(await stat(socket).catch(() => undefined)).toBeUndefined();
    // run released the lock after daemon and intake had stopped.
    expect(await stat(join(stateDir, INSTANCE_LOCK_FILE)).catch(() => undefined)).toBeUndefined();
    const r = await cli(["status", "--socket", socket]);
    expect(r.code).toBe(EXIT.STATUS_UNAVAILABLE);
  });
});
