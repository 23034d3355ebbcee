/**
 * A whole lanekeeper fleet on this machine, from real parts: nats-server with JetStream and the per-host
 * permission config (one NATS user per agent, one for the coordinator), the GitHub emulator, N real
 * `lanekeeper-agent` processes (systemd agents run INSIDE a real systemd sandbox, container agents talk to a
 * podman service), a coordinator policy generated from the agents' enrollment bundles, and unmanaged runners
 * that must never be touched: a hand-made `actions.runner.<scope>.handmade.service` unit, a hand-made runner
 * container and a GitHub-only registration.
 *
 * Everything is driven through the shipped command lines (`lanekeeper-agent init/run/status`, `lanekeeper …`),
 * so the end-to-end suites, the demo and the benchmark exercise exactly what an operator runs. Passwords, the
 * GitHub token and the coordinator key are generated at run time; they are written to 0600 files or handed to
 * child processes in their environment, never printed.
 */
import type { ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync } from "node:fs";
import { chmod, cp, mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { isMap, parseDocument, stringify, type Document } from "yaml";
import { startGitHubEmulator, type GitHubEmulator } from "./github-emulator/server.js";
import type { GitHubEmulatorOptions } from "./github-emulator/options.js";
import { LauncherError } from "./launcher-error.js";
import type { NatsAgentUser, NatsCoordinatorUser } from "./nats-permissions.js";
import { startNatsServer, type NatsServerHandle } from "./nats-server.js";
import { startPodmanService, type PodmanService } from "./podman-service.js";
import {
  dieWithParent,
  forgetOnExit,
  killOnExit,
  makeTempDir,
  pidExists,
  readTail,
  runCommand,
  spawnChild,
  terminate,
  waitUntil,
  type CommandResult,
} from "./process-util.js";
import { buildRunnerImage, runnerEmulatorDir, type RunnerImage } from "./runner-image.js";
import { startSystemdSandbox, type SystemdSandbox } from "./systemd-sandbox.js";

// ---------------------------------------------------------------------------------------------------------
// Limits of the fleet launcher (kept here: they only make sense together with the code below).

/** Longest wait for an agent's status socket to answer after `run`. A cold node start on a loaded 2-core machine. */
export const FLEET_AGENT_READY_TIMEOUT_MS = 60_000;
/** SIGTERM-to-SIGKILL grace for an agent (it finishes in-flight passes and releases its lock). */
export const FLEET_AGENT_STOP_GRACE_MS = 15_000;
/** Longest a single CLI call (`lanekeeper …`, `lanekeeper-agent …`) may take by default. */
export const FLEET_CLI_TIMEOUT_MS = 300_000;
/** Longest wait for a hand-made runner to show online on the emulator. */
export const FLEET_RUNNER_ONLINE_TIMEOUT_MS = 60_000;

/** Version of the runner distribution the systemd agents get (the runner emulator's). */
export const FLEET_RUNNER_VERSION = "2.336.0";
/** Environment variable the coordinator reads the GitHub token from (policy `github.auth.tokenEnv`). */
export const FLEET_GITHUB_TOKEN_ENV = "LK_GITHUB_TOKEN";
/** Environment variable the coordinator reads its NATS password from (policy `coordinator.natsPasswordEnv`). */
export const FLEET_NATS_PASSWORD_ENV = "LK_NATS_PASSWORD";
/** NATS user of the coordinator. */
export const FLEET_COORDINATOR_NATS_USER = "coordinator";
/** Name of the hand-made runner (unit, container suffix, registration). */
export const HANDMADE_RUNNER_NAME = "handmade";
/** Name of the GitHub-only unmanaged registration (a JIT registration nobody runs). */
export const GITHUB_ONLY_RUNNER_NAME = "ghost-registration";

/** Every intent action an agent can accept (`control.actions`). */
export const ALL_AGENT_ACTIONS: readonly string[] = Object.freeze([
  "create",
  "drain",
  "undrain",
  "start",
  "stop",
  "restart",
  "remove",
  "hold",
  "release",
  "arm",
]);

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
/** The built agent CLI. */
export const AGENT_BIN = join(repoRoot, "packages/agent/bin/lanekeeper-agent.js");
/** The built coordinator CLI. */
export const COORDINATOR_BIN = join(repoRoot, "packages/coordinator/bin/lanekeeper.js");

// ---------------------------------------------------------------------------------------------------------
// Options

/** A lane backend. */
export type FleetRuntime = "systemd" | "container";

/** The local allowlist written into an agent's config (`control:`). */
export interface FleetAgentControl {
  /** @default true */
  enabled: boolean;
  /** @default every scope of the fleet */
  scopes: string[];
  /** @default every pool of the agent's backend */
  pools: string[];
  /** @default the agent's own runtime */
  backends: FleetRuntime[];
  /** @default {@link ALL_AGENT_ACTIONS} */
  actions: string[];
  /** @default the runner image's digest reference on container agents, [] on systemd agents */
  images: string[];
  /** @default 50 */
  maxLanes: number;
}

/** One agent of the fleet. */
export interface FleetAgentSpec {
  /** Host id (`[a-z0-9][a-z0-9-]{0,62}`). */
  hostId: string;
  /** systemd agents run inside the systemd sandbox; container agents on this host, with the podman service. */
  runtime: FleetRuntime;
  /** Allowlist overrides (merged over the defaults of {@link FleetAgentControl}). */
  control?: Partial<FleetAgentControl>;
  /** Policy: `hosts.<id>.optIn`. @default true */
  optIn?: boolean;
  /** Policy: `hosts.<id>.capacity`. @default 20 */
  capacity?: number;
  /** Put the host into the policy at all (its enrollment bundle). @default true */
  enroll?: boolean;
  /** Extra keys merged into the agent config (e.g. `{health: {maxRestarts: 1}}`). */
  config?: Record<string, unknown>;
}

/** A pool of the generated policy (when no template is given). */
export interface FleetPoolSpec {
  backend: FleetRuntime;
  labels: string[];
  mode?: "persistent" | "ephemeral";
}

/** Desired lanes of the generated policy. */
export interface FleetLaneSpec {
  scope: string;
  pool: string;
  count: number;
  hosts: string[];
}

/** Unmanaged runners the fleet sets up beside the managed lanes. */
export interface FleetHandmadeOptions {
  /** A hand-made `actions.runner.<scope>.handmade.service` unit on the first systemd agent's host. @default true */
  systemd?: boolean;
  /** A hand-made runner container on the first container agent's host. @default true */
  container?: boolean;
  /** A GitHub-only registration (JIT config minted, never run). @default true */
  githubOnly?: boolean;
}

/** Options of {@link startFleet}. */
export interface FleetOptions {
  /** Repositories the emulator serves. @default ["acme/api"] */
  repos?: string[];
  /** Organizations the emulator serves. @default [] */
  orgs?: string[];
  /** The agents. @default build01 (systemd), build02 (systemd), build03 (container) */
  agents?: FleetAgentSpec[];
  /** Scopes of the policy: scope → optIn. @default every repository, opted in */
  scopes?: Record<string, { optIn: boolean; runnerGroup?: string }>;
  /** Pools of the generated policy. @default `linux-x64` (systemd) and `linux-container` (container) */
  pools?: Record<string, FleetPoolSpec>;
  /** Desired lanes of the generated policy. @default [] */
  lanes?: FleetLaneSpec[];
  /**
   * A policy file to fill in instead of generating one (e.g. examples/demo/lanekeeper.yaml): its GitHub URLs,
   * coordinator section, enrolled keys of the fleet's hosts and container images are replaced; its comments,
   * scopes, pools and lanes are kept.
   */
  policyTemplate?: string;
  /** Unmanaged runners. @default all that fit the agents */
  handmade?: FleetHandmadeOptions;
  /** Policy `coordinator.drain`. @default {settleMs: 1500, pollMs: 500, deadlineMs: 120000} */
  drain?: { settleMs?: number; pollMs?: number; deadlineMs?: number };
  /** Policy `coordinator.resultTimeoutMs`. @default 60000 */
  resultTimeoutMs?: number;
  /** Policy `coordinator.verifyTimeoutMs`. @default the policy's (120000) */
  verifyTimeoutMs?: number;
  /** GitHub emulator options (offlineAfterMs etc.); repos/orgs/token are the fleet's. */
  github?: Omit<GitHubEmulatorOptions, "repos" | "orgs" | "token">;
  /** Environment for the agents (e.g. `LANEKEEPER_HEALTH_INTERVAL_MS`). */
  agentEnv?: Record<string, string>;
  /** Parent of the fleet directory; not under /tmp (the sandbox has a private one). @default `<repo>/.tmp/fleet` */
  baseDir?: string;
  /** Progress lines ("starting nats-server", …). */
  log?: (line: string) => void;
}

// ---------------------------------------------------------------------------------------------------------
// Handles

/** The enrollment bundle `lanekeeper-agent init --json` prints (public keys only). */
export interface FleetEnrollmentBundle {
  hostId: string;
  identityKey: string;
  identityKeyId: string;
  sealingKey: string;
  sealingKeyId: string;
  agentVersion: string;
  [k: string]: unknown;
}

/** Result of a CLI call. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON: the whole of it, else its last line that parses; undefined when none does. */
  json?: unknown;
}

/** One running agent. */
export interface FleetAgent {
  hostId: string;
  runtime: FleetRuntime;
  /** The agent's host directory (config, state, lanes, log). */
  dir: string;
  stateDir: string;
  configPath: string;
  statusSocket: string;
  laneRoot: string;
  /** pino log of every `run` of this agent. */
  logPath: string;
  bundle: FleetEnrollmentBundle;
  /** The host's systemd sandbox (systemd agents), where the agent, its units and `systemctl` live. */
  sandbox: SystemdSandbox | undefined;
  /** PID of the agent process (the host PID; for sandboxed agents the process inside the sandbox). */
  readonly pid: number | undefined;
  /** True while the agent process runs. */
  readonly running: boolean;
  /** SIGTERM, wait (SIGKILL after a grace period). Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL the agent process only (its lanes keep running), as a crash would. */
  kill9(): Promise<void>;
  /** Stop (if running) and `run` again with the same config and state; resolves when the socket answers. */
  restart(): Promise<void>;
  /** Start again after stop()/kill9(); resolves when the socket answers. */
  start(): Promise<void>;
  /** `lanekeeper-agent <args>` for this host (`--config` appended for commands that take it). */
  cli(args: readonly string[], opts?: { timeoutMs?: number }): Promise<CliResult>;
  /** `lanekeeper-agent status --json` parsed. */
  status(): Promise<AgentStatusJson>;
  /** Rewrites the agent config: `edit` gets the parsed document and changes it. Restart to apply. */
  editConfig(edit: (doc: Record<string, unknown>) => void): Promise<void>;
}

/** The parts of `lanekeeper-agent status --json` the fleet reads (protobuf JSON mapping). */
export interface AgentStatusJson {
  hostId: string;
  controlEnabled?: boolean;
  natsState?: string;
  lanes?: { laneId: string; state?: string; health?: string; jobRunning?: boolean; runnerName?: string; runnerId?: number | string }[];
  unmanaged?: { kind?: string; name: string; runnerName?: string; reason?: string; state?: string }[];
  [k: string]: unknown;
}

/** Unmanaged runners the fleet made, and a check that nothing touched them. */
export interface FleetHandmade {
  /** The hand-made systemd unit (name, host, unit file path, runner directory), if any. */
  unit?: { hostId: string; name: string; path: string; runnerDir: string };
  /** The hand-made runner container, if any. */
  container?: { hostId: string; name: string; id: string };
  /** Names of unmanaged GitHub registrations (hand-made runners and the GitHub-only one). */
  registrations: string[];
  /**
   * Compares everything with the snapshot taken at start: unit file bytes, unit active with the same main PID,
   * container running with the same id and start time, registrations present with the same id and labels.
   * Returns the differences (empty when untouched).
   */
  verifyUntouched(): Promise<string[]>;
}

/** A running fleet. */
export interface Fleet {
  /** Fleet directory (policy, coordinator key and audit file, agent directories). */
  dir: string;
  nats: NatsServerHandle;
  github: GitHubEmulator;
  /** The systemd sandbox of each systemd host (each host has its own systemd as PID 1). */
  sandboxes: Record<string, SystemdSandbox>;
  podman: PodmanService | undefined;
  /** The runner image container agents allowlist (by digest). */
  image: RunnerImage | undefined;
  agents: FleetAgent[];
  agent(hostId: string): FleetAgent;
  /** The generated coordinator policy (lanekeeper.yaml). */
  policyPath: string;
  /** Coordinator signing key (PKCS#8 PEM, 0600). */
  coordinatorKeyPath: string;
  /** The trust file installed on every agent (the key set `lanekeeper keys generate` wrote, version 1). */
  trustPath: string;
  /** The coordinator's local audit chain (policy `coordinator.auditFile`). */
  auditPath: string;
  /** Environment the coordinator CLI needs on top of process.env (GitHub token and NATS password variables). */
  coordinatorEnv: Record<string, string>;
  /** Runs `lanekeeper <args>` as a child process with {@link Fleet.coordinatorEnv}. */
  lanekeeper(args: readonly string[], opts?: { timeoutMs?: number; env?: Record<string, string> }): Promise<CliResult>;
  /** Rewrites the policy: `edit` gets the parsed document and changes it. */
  editPolicy(edit: (doc: Record<string, unknown>) => void): Promise<void>;
  handmade: FleetHandmade;
  /** Stops everything the fleet started and removes its directories. Idempotent; never throws. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------

const DEFAULT_AGENTS: FleetAgentSpec[] = [
  { hostId: "build01", runtime: "systemd" },
  { hostId: "build02", runtime: "systemd" },
  { hostId: "build03", runtime: "container" },
];

const DEFAULT_POOLS: Record<string, FleetPoolSpec> = {
  "linux-x64": { backend: "systemd", labels: ["linux", "x64", "lanes-systemd"] },
  "linux-container": { backend: "container", labels: ["linux", "container", "lanes-container"] },
};

const HOST_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** What the fleet reads from a policy template. */
interface PolicyShape {
  scopes?: Record<string, { optIn?: boolean; runnerGroup?: string }>;
  pools?: Record<string, { backend: FleetRuntime; labels?: string[] }>;
}

const secret = (): string => randomBytes(24).toString("base64url");

/**
 * Awaits every promise (so nothing is left running unobserved when one fails) and rethrows the first failure.
 */
async function settleAll<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** The default parent of fleet directories. */
export function defaultFleetBaseDir(): string {
  return process.env.LK_FLEET_DIR ?? join(repoRoot, ".tmp", "fleet");
}

/** Parses CLI stdout as JSON: the whole text, else the last line that parses. */
export function parseCliJson(stdout: string): unknown {
  const text = stdout.trim();
  if (text === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Progress lines before a final JSON document: take the last line that parses.
  }
  const lines = text.split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]?.trim() ?? "";
    if (!line.startsWith("{") && !line.startsWith("[")) continue;
    try {
      return JSON.parse(line) as unknown;
    } catch {
      // not this one
    }
  }
  return undefined;
}

function cliResult(r: CommandResult): CliResult {
  const json = parseCliJson(r.stdout);
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, ...(json !== undefined ? { json } : {}) };
}

/** `scope` → the dashed form svc.sh uses in unit names (`acme/api` → `acme-api`, `org:acme` → `acme`). */
function dashedScope(scope: string): string {
  return scope.replace(/^org:/, "").replace(/[^A-Za-z0-9]+/g, "-");
}

function setIn(doc: Document, path: (string | number)[], value: unknown): void {
  doc.setIn(path, doc.createNode(value));
}

async function githubRest(gh: GitHubEmulator, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${gh.apiUrl}${path}`, {
    method,
    headers: {
      authorization: `token ${gh.token}`,
      accept: "application/vnd.github+json",
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new LauncherError("COMMAND_FAILED", `GitHub emulator ${method} ${path}: ${res.status} ${text}`);
  return text === "" ? undefined : (JSON.parse(text) as unknown);
}

function scopePath(scope: string): string {
  return scope.startsWith("org:") ? `/orgs/${scope.slice(4)}` : `/repos/${scope}`;
}

async function registrationToken(gh: GitHubEmulator, scope: string): Promise<string> {
  const body = (await githubRest(gh, "POST", `${scopePath(scope)}/actions/runners/registration-token`)) as { token: string };
  return body.token;
}

/** In each fleet directory: what a later run needs to clean up after a test process that died without `stop()`. */
const MANIFEST_FILE = "fleet-manifest.json";

/** Contents of {@link MANIFEST_FILE}. */
interface FleetManifest {
  /** PID of the process that started the fleet. */
  ownerPid: number;
  /** Container hosts and their lane roots (lane containers are found by host label and lane directory). */
  containerHosts: { hostId: string; laneRoot: string }[];
  /** Containers the fleet created itself (hand-made runners). */
  containers: string[];
}

let manifestWrites: Promise<unknown> = Promise.resolve();

/** Writes the manifest; writes are serialized (agents are set up in parallel), the last one wins. */
function writeManifest(dir: string, m: FleetManifest): Promise<void> {
  const text = `${JSON.stringify(m)}\n`;
  const run = manifestWrites.then(() => writeFile(join(dir, MANIFEST_FILE), text));
  manifestWrites = run.catch(() => undefined);
  return run;
}

/**
 * Removes what fleets of dead test processes left behind: processes die with their owner (setpriv
 * --pdeathsig, the sandboxes' PID namespaces), but podman containers and directories do not. Fleets of live
 * processes are left alone.
 */
async function sweepStaleFleets(baseDir: string): Promise<void> {
  for (const name of await readdir(baseDir).catch(() => [] as string[])) {
    if (!name.startsWith("lk-fleet-")) continue;
    const dir = join(baseDir, name);
    let m: FleetManifest;
    try {
      m = JSON.parse(await readFile(join(dir, MANIFEST_FILE), "utf8")) as FleetManifest;
    } catch {
      continue; // No manifest (yet): not ours to judge.
    }
    if (!Number.isInteger(m.ownerPid) || m.ownerPid <= 0 || pidExists(m.ownerPid)) continue;
    for (const h of m.containerHosts ?? []) await removeLaneContainers(h.hostId, h.laneRoot).catch(() => undefined);
    for (const c of m.containers ?? []) await runCommand("podman", ["rm", "-f", "-t", "0", c], { timeoutMs: 60_000 }).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Starts a fleet (see the module comment). On any failure everything started so far is stopped again and the
 * error is rethrown.
 */
export async function startFleet(opts: FleetOptions = {}): Promise<Fleet> {
  const log = opts.log ?? ((): void => undefined);
  const repos = opts.repos ?? ["acme/api"];
  const orgs = opts.orgs ?? [];
  const specs = opts.agents ?? DEFAULT_AGENTS;
  if (specs.length === 0) throw new LauncherError("BAD_OPTIONS", "startFleet: at least one agent is needed");
  const seen = new Set<string>();
  for (const s of specs) {
    if (!HOST_ID.test(s.hostId)) throw new LauncherError("BAD_OPTIONS", `startFleet: bad hostId ${JSON.stringify(s.hostId)}`);
    if (seen.has(s.hostId)) throw new LauncherError("BAD_OPTIONS", `startFleet: hostId ${s.hostId} appears twice`);
    seen.add(s.hostId);
  }
  // With a template, the agents' default allowlists follow its opted-in scopes and its pools.
  const template = opts.policyTemplate !== undefined ? (parseDocument(await readFile(opts.policyTemplate, "utf8")).toJS() as PolicyShape) : undefined;
  const scopes =
    opts.scopes ??
    (template?.scopes
      ? Object.fromEntries(Object.entries(template.scopes).flatMap(([k, v]) => (v.optIn === true ? [[k, { optIn: true }]] : [])))
      : Object.fromEntries(repos.map((r) => [r, { optIn: true }])));
  const pools =
    opts.pools ??
    (template?.pools
      ? Object.fromEntries(Object.entries(template.pools).map(([k, v]) => [k, { backend: v.backend, labels: v.labels ?? [] }]))
      : DEFAULT_POOLS);
  const firstScope = Object.keys(scopes)[0] ?? repos[0] ?? "acme/api";
  const wantSystemd = specs.some((s) => s.runtime === "systemd");
  const wantContainer = specs.some((s) => s.runtime === "container");

  const baseDir = resolve(opts.baseDir ?? defaultFleetBaseDir());
  if (/^\/(var\/)?tmp(\/|$)/.test(baseDir)) {
    throw new LauncherError("BAD_OPTIONS", `startFleet: baseDir ${baseDir} is under /tmp, which the systemd sandbox replaces`);
  }
  await mkdir(baseDir, { recursive: true });
  await sweepStaleFleets(baseDir);
  const dir = await makeTempDir("lk-fleet-", baseDir);
  await chmod(dir, 0o755);
  const manifest: FleetManifest = { ownerPid: process.pid, containerHosts: [], containers: [] };
  await writeManifest(dir, manifest);

  const cleanups: { what: string; fn: () => Promise<unknown> }[] = [];
  const agents: FleetAgentHandle[] = [];
  let stopped = false;
  const stopAll = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    for (const c of cleanups.reverse()) {
      try {
        await c.fn();
      } catch (e) {
        log(`cleanup of ${c.what} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  };

  try {
    // --- NATS with one user per agent and the coordinator.
    const agentUsers: NatsAgentUser[] = specs.map((s) => ({ hostId: s.hostId, user: `agent-${s.hostId}`, password: secret() }));
    const coordinatorUser: NatsCoordinatorUser = { user: FLEET_COORDINATOR_NATS_USER, password: secret() };
    log("starting nats-server (JetStream, one NATS user per host)");
    const nats = await startNatsServer({ users: { agents: agentUsers, coordinator: coordinatorUser }, baseDir: dir });
    cleanups.push({ what: "nats-server", fn: () => nats.stop() });

    // --- GitHub emulator.
    log(`starting the GitHub emulator (${[...repos, ...orgs.map((o) => `org:${o}`)].join(", ")})`);
    const github = await startGitHubEmulator({ ...opts.github, repos, orgs, token: secret() });
    cleanups.push({ what: "GitHub emulator", fn: () => github.stop() });

    // --- The coordinator's directory: its signing key (made by `lanekeeper keys generate` once the policy
    // exists) and its audit chain.
    const coordDir = join(dir, "coordinator");
    await mkdir(coordDir, { mode: 0o755 });
    const coordinatorKeyPath = join(coordDir, "coordinator.key");
    const auditPath = join(coordDir, "audit.jsonl");

    // --- Real systemd (one sandbox per systemd host: each host has its own PID 1, units and /proc) and
    // podman, started side by side.
    const sandboxes: Record<string, SystemdSandbox> = {};
    const runnerDist = join(dir, "runner-dist");
    let podman: PodmanService | undefined;
    let image: RunnerImage | undefined;
    const systemdHosts = specs.filter((s) => s.runtime === "systemd").map((s) => s.hostId);
    if (systemdHosts.length > 0) log(`booting systemd in ${systemdHosts.length} sandbox(es) (PID, mount and cgroup namespaces): ${systemdHosts.join(", ")}`);
    if (wantContainer) log("building the runner image (podman import, pinned by digest) and starting the podman API service");
    await settleAll([
      ...systemdHosts.map(async (hostId) => {
        const sd = await startSystemdSandbox();
        sandboxes[hostId] = sd;
        cleanups.push({ what: `systemd sandbox of ${hostId}`, fn: () => sd.stop() });
      }),
      (async () => {
        if (!wantSystemd) return;
        await mkdir(runnerDist, { recursive: true });
        await cp(runnerEmulatorDir, join(runnerDist, FLEET_RUNNER_VERSION), { recursive: true });
      })(),
      (async () => {
        if (!wantContainer) return;
        image = await buildRunnerImage();
      })(),
      (async () => {
        if (!wantContainer) return;
        const pm = await startPodmanService({ baseDir: dir });
        podman = pm;
        cleanups.push({ what: "podman service", fn: () => pm.stop() });
      })(),
    ]);

    // --- Agents: init (keys, observe-only config), then the config edited to opt in with an allowlist.
    const env = { ...process.env, ...opts.agentEnv };
    log(`lanekeeper-agent init on ${specs.map((s) => `${s.hostId} (${s.runtime})`).join(", ")}`);
    const made = await settleAll(
      specs.map(async (spec, i): Promise<FleetAgentHandle> => {
        const user = agentUsers[i];
        if (!user) throw new LauncherError("BAD_OPTIONS", "internal: agent user missing");
        const sandbox = sandboxes[spec.hostId];
        const hostDir = join(dir, "hosts", spec.hostId);
        await mkdir(hostDir, { recursive: true, mode: 0o755 });
        const stateDir = join(hostDir, "state");
        const configPath = join(hostDir, "agent.yaml");
        const initArgs = [AGENT_BIN, "init", "--host-id", spec.hostId, "--config", configPath, "--state-dir", stateDir, "--json"];
        const init = sandbox
          ? await sandbox.exec(process.execPath, initArgs, { env, timeoutMs: FLEET_CLI_TIMEOUT_MS })
          : await runCommand(process.execPath, initArgs, { env, timeoutMs: FLEET_CLI_TIMEOUT_MS });
        if (init.code !== 0) {
          throw new LauncherError("COMMAND_FAILED", `lanekeeper-agent init for ${spec.hostId} exited ${init.code}: ${init.stderr.trim()}`);
        }
        const bundle = parseCliJson(init.stdout) as FleetEnrollmentBundle | undefined;
        if (!bundle || bundle.hostId !== spec.hostId || typeof bundle.identityKey !== "string") {
          throw new LauncherError("COMMAND_FAILED", `lanekeeper-agent init for ${spec.hostId} printed no enrollment bundle`);
        }
        const control: FleetAgentControl = {
          enabled: true,
          scopes: Object.keys(scopes),
          pools: Object.entries(pools)
            .filter(([, p]) => p.backend === spec.runtime)
            .map(([name]) => name),
          backends: [spec.runtime],
          actions: [...ALL_AGENT_ACTIONS],
          images: spec.runtime === "container" && image ? [image.digestReference] : [],
          maxLanes: 50,
          ...spec.control,
        };
        const handmadeRoot = join(hostDir, "handmade");
        await mkdir(handmadeRoot, { recursive: true });
        const statusSocket = join(hostDir, "agent.sock");
        await editYamlFile(configPath, (doc) => {
          setIn(doc, ["nats"], { url: nats.url, user: user.user, password: user.password });
          setIn(doc, ["statusSocket"], statusSocket);
          setIn(doc, ["runnerRoots"], [handmadeRoot]);
          // Lanes run as root here (the runtime then sets RUNNER_ALLOW_RUNASROOT for the runner); production
          // installs use the unprivileged user install-agent.sh creates.
          setIn(doc, ["runAsUser"], "root");
          setIn(doc, ["inventoryIntervalMs"], 1000);
          setIn(doc, ["logLevel"], "info");
          setIn(doc, ["health"], { maxRestarts: 3, windowMs: 600_000, backoffBaseMs: 500, backoffMaxMs: 5000 });
          if (sandbox) {
            setIn(doc, ["unitDir"], sandbox.unitDir);
            setIn(doc, ["runnerDistPath"], runnerDist);
          }
          if (spec.runtime === "container" && podman) setIn(doc, ["containerSocket"], podman.socketPath);
          setIn(doc, ["control"], control);
          for (const [k, v] of Object.entries(spec.config ?? {})) setIn(doc, [k], v);
        });
        // It now holds the NATS password.
        await chmod(configPath, 0o600);
        const laneRoot = (parseDocument(await readFile(configPath, "utf8")).get("laneRoot") as string | undefined) ?? `${stateDir}-lanes`;
        const agent = new FleetAgentHandle({ hostId: spec.hostId, runtime: spec.runtime, dir: hostDir, stateDir, configPath, statusSocket, laneRoot, bundle, env, sandbox });
        cleanups.push({ what: `agent ${spec.hostId}`, fn: () => agent.stop() });
        if (spec.runtime === "container") {
          manifest.containerHosts.push({ hostId: spec.hostId, laneRoot });
          await writeManifest(dir, manifest);
          cleanups.push({ what: `lane containers of ${spec.hostId}`, fn: () => removeLaneContainers(spec.hostId, laneRoot) });
        }
        return agent;
      }),
    );
    agents.push(...made);

    // --- Unmanaged runners, before the agents start so the first inventory already reports them.
    const hm = opts.handmade ?? {};
    const handmade: { unit?: FleetHandmade["unit"]; container?: FleetHandmade["container"]; registrations: string[] } = { registrations: [] };
    const sdAgent = agents.find((a) => a.runtime === "systemd");
    const sdOfAgent = sdAgent ? sandboxes[sdAgent.hostId] : undefined;
    if ((hm.systemd ?? true) && sdAgent && sdOfAgent) {
      log(`${sdAgent.hostId}: hand-made runner unit actions.runner.${dashedScope(firstScope)}.${HANDMADE_RUNNER_NAME}.service (unmanaged)`);
      handmade.unit = await startHandmadeUnit(sdOfAgent, github, sdAgent, firstScope);
      handmade.registrations.push(HANDMADE_RUNNER_NAME);
    }
    const ctAgent = agents.find((a) => a.runtime === "container");
    if ((hm.container ?? true) && podman && image && ctAgent) {
      const name = `handmade-runner-${ctAgent.hostId}-${randomBytes(3).toString("hex")}`;
      log(`${ctAgent.hostId}: hand-made runner container ${name} (unmanaged)`);
      manifest.containers.push(name);
      await writeManifest(dir, manifest);
      cleanups.push({ what: `container ${name}`, fn: () => runCommand("podman", ["rm", "-f", "-t", "0", name], { timeoutMs: 60_000 }) });
      handmade.container = await startHandmadeContainer(github, image, ctAgent, firstScope, name);
      handmade.registrations.push(name);
    }
    if (hm.githubOnly ?? true) {
      log(`GitHub-only registration ${GITHUB_ONLY_RUNNER_NAME} (no host, unmanaged)`);
      await githubRest(github, "POST", `${scopePath(firstScope)}/actions/runners/generate-jitconfig`, {
        name: GITHUB_ONLY_RUNNER_NAME,
        runner_group_id: 1,
        labels: ["self-hosted", "ghost"],
      });
      handmade.registrations.push(GITHUB_ONLY_RUNNER_NAME);
    }

    // --- Coordinator policy from the enrollment bundles.
    const policyPath = join(dir, "lanekeeper.yaml");
    const policyText = await renderPolicy({
      template: opts.policyTemplate,
      github,
      nats,
      coordinatorKeyPath,
      auditPath,
      specs,
      agents,
      scopes,
      pools,
      lanes: opts.lanes ?? [],
      image,
      drain: { settleMs: 1500, pollMs: 500, deadlineMs: 120_000, ...opts.drain },
      resultTimeoutMs: opts.resultTimeoutMs ?? 60_000,
      ...(opts.verifyTimeoutMs === undefined ? {} : { verifyTimeoutMs: opts.verifyTimeoutMs }),
    });
    await writeFile(policyPath, policyText, { mode: 0o644 });
    log(`policy ${policyPath}: ${specs.filter((s) => s.enroll ?? true).length} hosts enrolled`);

    const coordinatorEnv: Record<string, string> = {
      [FLEET_GITHUB_TOKEN_ENV]: github.token,
      [FLEET_NATS_PASSWORD_ENV]: coordinatorUser.password,
      LANEKEEPER_POLICY: policyPath,
    };
    // The coordinator's key and the trust file the agents install, made by the coordinator's own CLI.
    const keysOut = await runCommand(process.execPath, [COORDINATOR_BIN, "keys", "generate", "--json"], {
      env: { ...process.env, ...coordinatorEnv },
      cwd: dir,
      timeoutMs: FLEET_CLI_TIMEOUT_MS,
    });
    const generated = parseCliJson(keysOut.stdout) as { trustFile?: string } | undefined;
    if (keysOut.code !== 0 || typeof generated?.trustFile !== "string") {
      throw new LauncherError("COMMAND_FAILED", `lanekeeper keys generate exited ${keysOut.code}: ${keysOut.stderr.trim()}`);
    }
    const trustPath = generated.trustFile;
    for (const a of agents) {
      await a.editConfig((doc) => {
        doc.trustFile = trustPath;
      });
    }
    log(`coordinator key generated (lanekeeper keys generate); trust file ${trustPath} installed on every agent`);

    log(`lanekeeper-agent run on ${agents.map((a) => a.hostId).join(", ")}`);
    await settleAll(agents.map((a) => a.start()));

    const snapshot = await snapshotHandmade(github, sdOfAgent, handmade);

    const fleet: Fleet = {
      dir,
      nats,
      github,
      sandboxes,
      podman,
      image,
      agents,
      agent(hostId) {
        const a = agents.find((x) => x.hostId === hostId);
        if (!a) throw new LauncherError("BAD_OPTIONS", `no agent ${hostId} in this fleet`);
        return a;
      },
      policyPath,
      coordinatorKeyPath,
      trustPath,
      auditPath,
      coordinatorEnv,
      async lanekeeper(args, o = {}) {
        const r = await runCommand(process.execPath, [COORDINATOR_BIN, ...args], {
          env: { ...process.env, ...coordinatorEnv, ...o.env },
          cwd: dir,
          timeoutMs: o.timeoutMs ?? FLEET_CLI_TIMEOUT_MS,
        });
        return cliResult(r);
      },
      async editPolicy(edit) {
        await editYamlFile(policyPath, (doc) => {
          const plain = doc.toJS() as Record<string, unknown>;
          edit(plain);
          doc.contents = doc.createNode(plain);
        });
      },
      handmade: {
        ...handmade,
        verifyUntouched: () => verifyHandmade(github, sdOfAgent, handmade, snapshot),
      },
      stop: stopAll,
    };
    return fleet;
  } catch (e) {
    // Keep the agents' logs in the error: they say why an agent did not come up.
    let tails = "";
    for (const a of agents) {
      const t = await readTail(a.logPath, 1500);
      if (t) tails += `\n--- ${a.hostId} agent log tail:\n${t}`;
    }
    await stopAll();
    if (e instanceof Error && tails) e.message += tails;
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------

async function editYamlFile(path: string, edit: (doc: Document) => void): Promise<void> {
  const doc = parseDocument(await readFile(path, "utf8"));
  if (doc.errors.length > 0) throw new LauncherError("BAD_OPTIONS", `${path}: ${doc.errors[0]?.message ?? "bad YAML"}`);
  edit(doc);
  await writeFile(path, doc.toString({ lineWidth: 0 }));
}

interface PolicyInput {
  template: string | undefined;
  github: GitHubEmulator;
  nats: NatsServerHandle;
  coordinatorKeyPath: string;
  auditPath: string;
  specs: FleetAgentSpec[];
  agents: FleetAgentHandle[];
  scopes: Record<string, { optIn: boolean; runnerGroup?: string }>;
  pools: Record<string, FleetPoolSpec>;
  lanes: FleetLaneSpec[];
  image: RunnerImage | undefined;
  drain: { settleMs: number; pollMs: number; deadlineMs: number };
  resultTimeoutMs: number;
  verifyTimeoutMs?: number;
}

/**
 * A well-formed digest reference for container pools of a fleet without a container host: the policy must
 * validate (`lanekeeper keys generate` parses it), and no agent allowlists this image, so nothing runs it.
 */
const NO_IMAGE_YET = `localhost/lanekeeper/no-container-host@sha256:${"0".repeat(64)}`;

/** The policy text: the template with the fleet's values, or a generated one. */
async function renderPolicy(p: PolicyInput): Promise<string> {
  const doc = p.template
    ? parseDocument(await readFile(p.template, "utf8"))
    : parseDocument(
        "# lanekeeper policy generated by startFleet (test/harness/src/fleet.ts).\n" +
          stringify({
            // Filled in below; listed first so a reader finds them where lanekeeper's examples have them.
            github: {},
            coordinator: {},
            hosts: {},
            scopes: p.scopes,
            pools: Object.fromEntries(
              Object.entries(p.pools).map(([name, pool]) => [
                name,
                {
                  labels: pool.labels,
                  backend: pool.backend,
                  mode: pool.mode ?? "persistent",
                  ...(pool.backend === "systemd" ? { runnerVersion: FLEET_RUNNER_VERSION } : { image: NO_IMAGE_YET }),
                },
              ]),
            ),
            lanes: p.lanes,
          }),
      );
  if (doc.errors.length > 0) throw new LauncherError("BAD_OPTIONS", `policy template: ${doc.errors[0]?.message ?? "bad YAML"}`);
  setIn(doc, ["github", "apiUrl"], p.github.apiUrl);
  setIn(doc, ["github", "webUrl"], p.github.url);
  setIn(doc, ["github", "auth"], { tokenEnv: FLEET_GITHUB_TOKEN_ENV });
  setIn(doc, ["coordinator", "keyFile"], p.coordinatorKeyPath);
  setIn(doc, ["coordinator", "natsUrl"], p.nats.url);
  setIn(doc, ["coordinator", "natsUser"], FLEET_COORDINATOR_NATS_USER);
  setIn(doc, ["coordinator", "natsPasswordEnv"], FLEET_NATS_PASSWORD_ENV);
  setIn(doc, ["coordinator", "auditFile"], p.auditPath);
  setIn(doc, ["coordinator", "resultTimeoutMs"], p.resultTimeoutMs);
  if (p.verifyTimeoutMs !== undefined) setIn(doc, ["coordinator", "verifyTimeoutMs"], p.verifyTimeoutMs);
  setIn(doc, ["coordinator", "drain"], p.drain);
  for (const spec of p.specs) {
    if (!(spec.enroll ?? true)) {
      doc.deleteIn(["hosts", spec.hostId]);
      continue;
    }
    const agent = p.agents.find((a) => a.hostId === spec.hostId);
    if (!agent) continue;
    setIn(doc, ["hosts", spec.hostId, "enrolled"], { identityKey: agent.bundle.identityKey, sealingKey: agent.bundle.sealingKey });
    if (spec.optIn !== undefined || !doc.hasIn(["hosts", spec.hostId, "optIn"])) setIn(doc, ["hosts", spec.hostId, "optIn"], spec.optIn ?? true);
    if (spec.capacity !== undefined || !doc.hasIn(["hosts", spec.hostId, "capacity"])) setIn(doc, ["hosts", spec.hostId, "capacity"], spec.capacity ?? 20);
  }
  const pools = doc.get("pools");
  if (isMap(pools) && p.image) {
    for (const item of pools.items) {
      const name = String((item.key as { value?: unknown } | null)?.value ?? item.key);
      if (doc.getIn(["pools", name, "backend"]) === "container") setIn(doc, ["pools", name, "image"], p.image.digestReference);
    }
  }
  return doc.toString({ lineWidth: 0 });
}

// ---------------------------------------------------------------------------------------------------------

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

class FleetAgentHandle implements FleetAgent {
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
async function removeLaneContainers(hostId: string, laneRoot: string): Promise<void> {
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

// ---------------------------------------------------------------------------------------------------------
// Unmanaged runners

async function waitOnline(gh: GitHubEmulator, name: string): Promise<void> {
  await waitUntil(async () => (await gh.control.listRunners()).some((r) => r.name === name && r.status === "online"), {
    timeoutMs: FLEET_RUNNER_ONLINE_TIMEOUT_MS,
    what: `runner ${name} to be online on the GitHub emulator`,
  });
}

async function startHandmadeUnit(sd: SystemdSandbox, gh: GitHubEmulator, agent: FleetAgentHandle, scope: string): Promise<NonNullable<FleetHandmade["unit"]>> {
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

async function startHandmadeContainer(
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

async function snapshotHandmade(
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

async function verifyHandmade(
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
