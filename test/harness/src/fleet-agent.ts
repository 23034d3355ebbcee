/** One agent of a fleet: its process (in its systemd sandbox or on this host), CLI, config and logs. */
import type { ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync } from "node:fs";
import { chmod, readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { LauncherError } from "./launcher-error.js";
import { dieWithParent, forgetOnExit, killOnExit, readTail, runCommand, spawnChild, terminate, waitUntil } from "./process-util.js";
import type { SystemdSandbox } from "./systemd-sandbox.js";
import { FLEET_AGENT_READY_TIMEOUT_MS, FLEET_AGENT_STOP_GRACE_MS, FLEET_CLI_TIMEOUT_MS, AGENT_BIN } from "./fleet-constants.js";
import type { FleetRuntime, FleetEnrollmentBundle, CliResult, FleetAgent, AgentStatusJson } from "./fleet-types.js";
import { cliResult, editYamlFile } from "./fleet-util.js";


interface AgentParts {
  hostId: string;
  runtime: FleetRuntime;
  dir: string;
  stateDir: string;
  configPath: string;
  statusSocket: string;
  laneRoot: string;
  bundle: FleetEnrollmentBundle;
  env: NodeJS.ProcessEnv;
  sandbox: SystemdSandbox | undefined;
}

/** The {@link FleetAgent} handle: runs `lanekeeper-agent` inside its host's systemd sandbox or on this host. */
export class FleetAgentHandle implements FleetAgent {
  readonly hostId: string;
  readonly runtime: FleetRuntime;
  readonly dir: string;
  readonly stateDir: string;
  readonly configPath: string;
  readonly statusSocket: string;
  readonly laneRoot: string;
  readonly logPath: string;
  readonly bundle: FleetEnrollmentBundle;
  readonly sandbox: SystemdSandbox | undefined;
  private child: ChildProcess | undefined;
  private innerPid: number | undefined;

  constructor(private readonly parts: AgentParts) {
    this.hostId = parts.hostId;
    this.runtime = parts.runtime;
    this.dir = parts.dir;
    this.stateDir = parts.stateDir;
    this.configPath = parts.configPath;
    this.statusSocket = parts.statusSocket;
    this.laneRoot = parts.laneRoot;
    this.bundle = parts.bundle;
    this.sandbox = parts.sandbox;
    this.logPath = join(parts.dir, "agent.log");
  }

  get pid(): number | undefined {
    return this.running ? (this.innerPid ?? this.child?.pid) : undefined;
  }

  get running(): boolean {
    const c = this.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  async start(): Promise<void> {
    if (this.running) return;
    const args = [AGENT_BIN, "run", "--config", this.configPath];
    const fd = openSync(this.logPath, "a");
    let child: ChildProcess;
    try {
      if (this.parts.sandbox) {
        // Inside the sandbox's namespaces: its systemctl, /proc and cgroups are the agent's.
        child = this.parts.sandbox.spawn(process.execPath, args, { env: this.parts.env, stdio: ["ignore", fd, fd] });
      } else {
        const argv = dieWithParent(process.execPath, args);
        child = spawnChild(argv.cmd, argv.args, { env: this.parts.env, stdio: ["ignore", fd, fd] });
      }
    } finally {
      closeSync(fd);
    }
    this.child = child;
    if (child.pid !== undefined) killOnExit(child.pid);
    try {
      await waitUntil(
        async () => {
          // A CLI call costs a node start; ask only once the socket exists.
          if (!existsSync(this.statusSocket)) return false;
          const r = await this.cli(["status", "--json", "--audit", "0"], { timeoutMs: 20_000 });
          return r.code === 0;
        },
        {
          timeoutMs: FLEET_AGENT_READY_TIMEOUT_MS,
          what: `lanekeeper-agent ${this.hostId} to answer on ${this.statusSocket}`,
          abort: () => (this.running ? undefined : `the agent exited (code ${child.exitCode}, signal ${child.signalCode})`),
          diagnostics: async () => `agent log tail:\n${await readTail(this.logPath, 3000)}`,
        },
      );
    } catch (e) {
      await this.stop();
      throw e;
    }
    this.innerPid = this.parts.sandbox ? await innermostPid(child.pid) : child.pid;
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c) return;
    this.child = undefined;
    this.innerPid = undefined;
    await terminate(c, { signal: "SIGTERM", graceMs: FLEET_AGENT_STOP_GRACE_MS });
    if (c.pid !== undefined) forgetOnExit(c.pid);
  }

  async kill9(): Promise<void> {
    const c = this.child;
    if (!c) return;
    this.child = undefined;
    this.innerPid = undefined;
    // For a sandboxed agent, kill() reaches the agent inside (see SystemdSandbox.spawn).
    await terminate(c, { signal: "SIGKILL", graceMs: FLEET_AGENT_STOP_GRACE_MS });
    if (c.pid !== undefined) forgetOnExit(c.pid);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async cli(args: readonly string[], o: { timeoutMs?: number } = {}): Promise<CliResult> {
    const withConfig = ["status", "hold", "release", "audit", "run"].includes(args[0] ?? "") && !args.includes("--config") ? [...args, "--config", this.configPath] : [...args];
    const argv = [AGENT_BIN, ...withConfig];
    const timeoutMs = o.timeoutMs ?? FLEET_CLI_TIMEOUT_MS;
    // Commands that look at lanes (hold verifies the lane marker) run where the agent runs.
    const r = this.parts.sandbox
      ? await this.parts.sandbox.exec(process.execPath, argv, { env: this.parts.env, timeoutMs })
      : await runCommand(process.execPath, argv, { env: this.parts.env, timeoutMs });
    return cliResult(r);
  }

  async status(): Promise<AgentStatusJson> {
    const r = await this.cli(["status", "--json"], { timeoutMs: 30_000 });
    if (r.code !== 0 || typeof r.json !== "object" || r.json === null) {
      throw new LauncherError("COMMAND_FAILED", `lanekeeper-agent status (${this.hostId}) exited ${r.code}: ${r.stderr.trim()}`);
    }
    return r.json as AgentStatusJson;
  }

  async editConfig(edit: (doc: Record<string, unknown>) => void): Promise<void> {
    await editYamlFile(this.configPath, (doc) => {
      const plain = doc.toJS() as Record<string, unknown>;
      edit(plain);
      doc.contents = doc.createNode(plain);
    });
    await chmod(this.configPath, 0o600);
  }
}

/** The deepest first-child of `pid` (nsenter → setpriv exec → node): the agent process inside the sandbox. */
async function innermostPid(pid: number | undefined): Promise<number | undefined> {
  let cur = pid;
  for (let i = 0; i < 5 && cur !== undefined; i++) {
    const text = await readFile(`/proc/${cur}/task/${cur}/children`, "utf8").catch(() => "");
    const next = Number(text.trim().split(/\s+/)[0]);
    if (!Number.isInteger(next) || next <= 0) break;
    cur = next;
  }
  return cur;
}

/** Removes the lane containers of one fleet agent: label `dev.lanekeeper.host=<hostId>` and a lane dir of its own. */
export async function removeLaneContainers(hostId: string, laneRoot: string): Promise<void> {
  const ours = new Set(await readdir(laneRoot).catch(() => [] as string[]));
  const ps = await runCommand("podman", ["ps", "-a", "--filter", `label=dev.lanekeeper.host=${hostId}`, "--format", '{{.Names}} {{index .Labels "dev.lanekeeper.lane"}}'], {
    timeoutMs: 60_000,
  });
  for (const line of ps.stdout.split("\n")) {
    const [name, lane] = line.trim().split(/\s+/);
    if (!name || !lane || !ours.has(lane)) continue;
    await runCommand("podman", ["rm", "-f", "-t", "0", name], { timeoutMs: 60_000 });
  }
}
