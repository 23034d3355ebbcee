/** The fleet launcher's options and the handles it returns (see fleet.ts). */
import type { GitHubEmulator } from "./github-emulator/server.js";
import type { GitHubEmulatorOptions } from "./github-emulator/options.js";
import type { NatsClusterHandle } from "./nats-cluster.js";
import type { NatsServerHandle } from "./nats-server.js";
import type { PodmanService } from "./podman-service.js";
import type { RunnerImage } from "./runner-image.js";
import type { SystemdSandbox } from "./systemd-sandbox.js";

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
  /**
   * Run NATS as a JetStream cluster of this many nodes on loopback (the per-host permissions on every node); the
   * policy then lists every node (`natsServers`) with `jetstreamReplicas` min(size, 3), and so does each agent.
   * @default one nats-server
   */
  natsCluster?: number;
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
  /**
   * GitHub emulator options (offlineAfterMs etc.); repos/orgs/token are the fleet's. `realism` defaults to
   * `FLEET_REALISM` (busy lag, a killed runner online a while, lost and late webhooks), or to what
   * `LK_EMULATOR_REALISM` says (`off` for a fault-free emulator); `realism: false` turns it off.
   */
  github?: Omit<GitHubEmulatorOptions, "repos" | "orgs" | "token">;
  /** Environment for the agents (e.g. `LANEKEEPER_HEALTH_INTERVAL_MS`). */
  agentEnv?: Record<string, string>;
  /** Parent of the fleet directory; not under /tmp (the sandbox has a private one). @default $LK_FLEET_DIR, else `/var/lib/lanekeeper-test/fleet` (see state-root.ts) */
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
  /** The NATS server (with {@link FleetOptions.natsCluster}: the cluster's first node). */
  nats: NatsServerHandle;
  /** The NATS cluster, with {@link FleetOptions.natsCluster}. */
  natsCluster: NatsClusterHandle | undefined;
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
  /** The root key (`lanekeeper keys root-init`) the trust file pins: `keys rotate --root-key` needs it. */
  rootKeyPath: string;
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
