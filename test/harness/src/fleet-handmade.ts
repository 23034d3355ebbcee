/**
 * The unmanaged runners of a fleet, which lanekeeper must never touch: a hand-made systemd unit, a hand-made
 * runner container, and how a test proves they were left alone.
 */
import { createHash } from "node:crypto";
import { cp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { GitHubEmulator } from "./github-emulator/server.js";
import { LauncherError } from "./launcher-error.js";
import { runCommand, waitUntil } from "./process-util.js";
import { runnerEmulatorDir, type RunnerImage } from "./runner-image.js";
import type { SystemdSandbox } from "./systemd-sandbox.js";
import { FLEET_RUNNER_ONLINE_TIMEOUT_MS, HANDMADE_RUNNER_NAME } from "./fleet-constants.js";
import type { FleetHandmade } from "./fleet-types.js";
import { dashedScope, registrationToken } from "./fleet-util.js";
import type { FleetAgentHandle } from "./fleet-agent.js";


async function waitOnline(gh: GitHubEmulator, name: string): Promise<void> {
  await waitUntil(async () => (await gh.control.listRunners()).some((r) => r.name === name && r.status === "online"), {
    timeoutMs: FLEET_RUNNER_ONLINE_TIMEOUT_MS,
    what: `runner ${name} to be online on the GitHub emulator`,
  });
}

/** A runner installed the way `svc.sh` does it (`actions.runner.<scope>.<name>.service`), registered and online. */
export async function startHandmadeUnit(sd: SystemdSandbox, gh: GitHubEmulator, agent: FleetAgentHandle, scope: string): Promise<NonNullable<FleetHandmade["unit"]>> {
  const runnerDir = join(agent.dir, "handmade", "actions-runner");
  await cp(runnerEmulatorDir, runnerDir, { recursive: true });
  const token = await registrationToken(gh, scope);
  // As an operator following GitHub's instructions would: config.sh, then svc.sh's unit name.
  const conf = await runCommand("./config.sh", ["--unattended", "--url", gh.webUrl(scope), "--name", HANDMADE_RUNNER_NAME, "--labels", "handmade"], {
    cwd: runnerDir,
    env: { ...process.env, RUNNER_ALLOW_RUNASROOT: "1", ACTIONS_RUNNER_INPUT_TOKEN: token },
    timeoutMs: 60_000,
  });
  if (conf.code !== 0) throw new LauncherError("COMMAND_FAILED", `hand-made runner config.sh failed: ${conf.stderr.trim()}`);
  const name = `actions.runner.${dashedScope(scope)}.${HANDMADE_RUNNER_NAME}.service`;
  const path = await sd.writeUnit(
    name,
    [
      "[Unit]",
      `Description=GitHub Actions Runner (${dashedScope(scope)}.${HANDMADE_RUNNER_NAME})`,
      "After=network.target",
      "",
      "[Service]",
      `ExecStart=${runnerDir}/run.sh`,
      "Environment=RUNNER_ALLOW_RUNASROOT=1",
      `WorkingDirectory=${runnerDir}`,
      "KillMode=process",
      "KillSignal=SIGTERM",
      "TimeoutStopSec=5min",
      "",
      "[Install]",
      "WantedBy=multi-user.target",
      "",
    ].join("\n"),
  );
  await sd.systemctl("daemon-reload");
  const st = await sd.systemctl("start", name);
  if (st.code !== 0) throw new LauncherError("COMMAND_FAILED", `systemctl start ${name}: ${st.stderr.trim()}`);
  await waitOnline(gh, HANDMADE_RUNNER_NAME);
  return { hostId: agent.hostId, name, path, runnerDir };
}

/** A runner container started by hand (`podman run`) from the fleet's runner image, registered and online. */
export async function startHandmadeContainer(
  gh: GitHubEmulator,
  image: RunnerImage,
  agent: FleetAgentHandle,
  scope: string,
  name: string,
): Promise<NonNullable<FleetHandmade["container"]>> {
  const token = await registrationToken(gh, scope);
  // The token goes in through an env file (0600), not the command line, as an operator should do it.
  const envFile = join(agent.dir, "handmade", `${name}.env`);
  await writeFile(envFile, `ACTIONS_RUNNER_INPUT_TOKEN=${token}\n`, { mode: 0o600 });
  const run = await runCommand(
    "podman",
    [
      "run",
      "-d",
      "--name",
      name,
      "--network",
      "host",
      "--env-file",
      envFile,
      image.digestReference,
      "/bin/bash",
      "-c",
      `./config.sh --unattended --url "${gh.webUrl(scope)}" --name "${name}" --labels handmade-container && exec ./run.sh`,
    ],
    { timeoutMs: 120_000 },
  );
  await rm(envFile, { force: true });
  if (run.code !== 0) throw new LauncherError("COMMAND_FAILED", `podman run ${name}: ${run.stderr.trim()}`);
  await waitOnline(gh, name);
  return { hostId: agent.hostId, name, id: run.stdout.trim() };
}

interface HandmadeSnapshot {
  unitHash?: string;
  unitMainPid?: string;
  containerStartedAt?: string;
  registrations: Map<string, { id: number; labels: string }>;
}

async function containerState(name: string): Promise<{ id: string; running: string; startedAt: string } | undefined> {
  const r = await runCommand("podman", ["inspect", "--format", "{{.Id}} {{.State.Running}} {{.State.StartedAt}}", name], { timeoutMs: 60_000 });
  if (r.code !== 0) return undefined;
  const [id = "", running = "", ...rest] = r.stdout.trim().split(" ");
  return { id, running, startedAt: rest.join(" ") };
}

async function registrationsByName(gh: GitHubEmulator): Promise<Map<string, { id: number; labels: string }>> {
  const out = new Map<string, { id: number; labels: string }>();
  for (const r of await gh.control.listRunners()) out.set(r.name, { id: r.id, labels: JSON.stringify([...r.labels].sort()) });
  return out;
}

/** What the hand-made runners look like now (PIDs, container start times, registrations), to compare later. */
export async function snapshotHandmade(
  gh: GitHubEmulator,
  sd: SystemdSandbox | undefined,
  hm: { unit?: FleetHandmade["unit"]; container?: FleetHandmade["container"]; registrations: string[] },
): Promise<HandmadeSnapshot> {
  const snap: HandmadeSnapshot = { registrations: new Map() };
  if (hm.unit && sd) {
    snap.unitHash = createHash("sha256").update(await readFile(hm.unit.path)).digest("hex");
    snap.unitMainPid = (await sd.unitProperties(hm.unit.name, ["MainPID"])).MainPID ?? "";
  }
  if (hm.container) snap.containerStartedAt = (await containerState(hm.container.name))?.startedAt ?? "";
  const all = await registrationsByName(gh);
  for (const name of hm.registrations) {
    const r = all.get(name);
    if (r) snap.registrations.set(name, r);
  }
  return snap;
}

/** What changed since {@link snapshotHandmade} (process, unit file, container, registration); empty when nothing did. */
export async function verifyHandmade(
  gh: GitHubEmulator,
  sd: SystemdSandbox | undefined,
  hm: { unit?: FleetHandmade["unit"]; container?: FleetHandmade["container"]; registrations: string[] },
  snap: HandmadeSnapshot,
): Promise<string[]> {
  const problems: string[] = [];
  if (hm.unit && sd) {
    const hash = await readFile(hm.unit.path)
      .then((b) => createHash("sha256").update(b).digest("hex"))
      .catch(() => "missing");
    if (hash !== snap.unitHash) problems.push(`unit file ${hm.unit.path} changed (${hash === "missing" ? "deleted" : "modified"})`);
    const p = await sd.unitProperties(hm.unit.name, ["ActiveState", "MainPID"]);
    if (p.ActiveState !== "active") problems.push(`unit ${hm.unit.name} is ${p.ActiveState ?? "unknown"}, was active`);
    if (p.MainPID !== snap.unitMainPid) problems.push(`unit ${hm.unit.name} main PID changed (${snap.unitMainPid} → ${p.MainPID}): it was restarted`);
  }
  if (hm.container) {
    const c = await containerState(hm.container.name);
    if (!c) problems.push(`container ${hm.container.name} is gone`);
    else {
      if (c.id !== hm.container.id) problems.push(`container ${hm.container.name} was replaced`);
      if (c.running !== "true") problems.push(`container ${hm.container.name} is not running`);
      if (c.startedAt !== snap.containerStartedAt) problems.push(`container ${hm.container.name} was restarted`);
    }
  }
  const now = await registrationsByName(gh);
  for (const [name, before] of snap.registrations) {
    const r = now.get(name);
    if (!r) problems.push(`registration ${name} was deleted`);
    else if (r.id !== before.id) problems.push(`registration ${name} was replaced (id ${before.id} → ${r.id})`);
    else if (r.labels !== before.labels) problems.push(`registration ${name} labels changed (${before.labels} → ${r.labels})`);
  }
  return problems;
}
