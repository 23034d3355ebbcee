/**
 * `lanekeeper-agent run`: the long-running agent. Start-up order matters and fails closed: config (already
 * parsed), single-instance lock (taken by `run` and handed in), keys, audit chain (verified on open), runtimes, crash recovery from the journal,
 * then the status socket and the health and inventory loops. Receiving intents over NATS is added by the intake
 * on top of {@link AgentDaemon.manager} and {@link AgentDaemon.inventory}.
 */
import { existsSync } from "node:fs";
import { mkdir, chmod } from "node:fs/promises";
import {
  type AgentConfig,
  type AgentStatusReport,
  type Capabilities,
  type IntentOutcome,
  type NatsConnectionStatus,
  type TrustStatus,
  openAnchoredAuditLog,
  type AuditLog,
  ConfigError,
  defaultLaneRoot,
  type Logger,
  childLogger,
} from "@lanekeeper/shared";
import { AGENT_VERSION } from "./agent-version.js";
import { loadAgentKeys, type AgentKeys } from "./agent-identity.js";
import type { CommandRunner } from "./runtimes/command-runner.js";
import { AgentLockedError } from "./errors.js";
import type { InstanceLock } from "./instance-lock.js";
import { auditAnchorPath, auditLogPath } from "./audit-evidence.js";
import { RunnerDist } from "./runner-dist/runner-dist.js";
import { allowlistOf, intakeControlOf } from "./intake/intake-policy.js";
import { InventoryBuilder } from "./status/inventory.js";
import { LaneDirectories } from "./lanes/lane-directory.js";
import { MarkerSigner, type BackendName } from "./lanes/lane-marker.js";
import { LaneManager } from "./lanes/lane-manager.js";
import type { LaneRuntime } from "./runtimes/lane-runtime.js";
import { StatusServer } from "./status/status-server.js";
import { SystemdRuntime } from "./runtimes/systemd-runtime.js";
import { lookupUser } from "./lanes/user-account.js";

/** Options of {@link AgentDaemon.start}. */
export interface AgentDaemonOptions {
  readonly config: AgentConfig;
  /** The file the config was read from: named in errors and in `status` (which agent answered). */
  readonly configPath?: string;
  readonly log: Logger;
  /**
   * The single-instance lock on `config.stateDir`, taken by the caller (`lanekeeper-agent run`) before anything
   * else and released by it after {@link AgentDaemon.stop}. The intake's replay state runs under the same lock.
   */
  readonly lock: InstanceLock;
  /** Runs systemctl. @default execFileRunner */
  readonly systemctl?: CommandRunner;
  /** Hooks the intake fills in later (shown by `status`). */
  readonly natsState?: () => string;
  /** The NATS connection in detail; undefined until the intake has started. */
  readonly natsStatus?: () => NatsConnectionStatus | undefined;
  /** The trusted key set; undefined until the intake has started (it loads the trust file). */
  readonly trustStatus?: () => TrustStatus | undefined;
  readonly intentHwm?: () => number;
  readonly keysetVersion?: () => number;
  /** The newest intent outcomes, oldest first. */
  readonly recentIntents?: () => readonly IntentOutcome[];
  /**
   * Lane runtimes to use instead of the ones built from the config (systemd, container). A fleet simulation runs
   * many agents in one process on an in-memory runtime this way; everything else (intake, ownership, journal,
   * inventory, health) is the agent's own. @default built from the config
   */
  readonly runtimes?: Partial<Record<BackendName, LaneRuntime>>;
  /** Capabilities source for the inventory. @default gathered with `systeminformation` (see InventoryBuilder) */
  readonly capabilities?: () => Promise<Capabilities>;
}

/** Default container engine sockets, tried in order when the config names none. */
export const DEFAULT_ENGINE_SOCKETS: readonly string[] = Object.freeze(["/run/podman/podman.sock", "/var/run/docker.sock"]);

/** {@link AgentDaemonOptions} with every default filled in: what an {@link AgentDaemon} runs with. */
export interface ResolvedAgentDaemonOptions extends AgentDaemonOptions {
  readonly natsState: () => string;
  readonly intentHwm: () => number;
  readonly keysetVersion: () => number;
  readonly recentIntents: () => readonly IntentOutcome[];
  /** Run systemd lanes and unit discovery: systemd runs on this host, or a `systemctl` was handed in. */
  readonly systemd: boolean;
  /** The container engine socket: the config's when it exists, else the first of {@link DEFAULT_ENGINE_SOCKETS} that exists. */
  readonly engineSocket: string | undefined;
}

/**
 * Fills in the daemon's defaults from the options and their agent config. `exists` is the only look at the
 * host (which sockets and which init system are there), so this stays a pure function in tests.
 */
export function resolveAgentDaemonOptions(override: AgentDaemonOptions, exists: (path: string) => boolean = existsSync): ResolvedAgentDaemonOptions {
  const configured = override.config.containerSocket;
  return {
    ...override,
    natsState: override.natsState ?? (() => "disabled"),
    intentHwm: override.intentHwm ?? (() => 0),
    keysetVersion: override.keysetVersion ?? (() => 0),
    recentIntents: override.recentIntents ?? (() => []),
    systemd: exists("/run/systemd/system") || override.systemctl !== undefined,
    engineSocket: configured !== undefined ? (exists(configured) ? configured : undefined) : DEFAULT_ENGINE_SOCKETS.find((p) => exists(p)),
  };
}

/** A running agent. */
export class AgentDaemon {
  private healthTimer: NodeJS.Timeout | undefined;
  private inventoryTimer: NodeJS.Timeout | undefined;
  private healthRun: Promise<void> = Promise.resolve();
  private inventoryRun: Promise<void> = Promise.resolve();
  private stopping = false;
  readonly startedAtMs = Date.now();

  private constructor(
    readonly config: AgentConfig,
    readonly keys: AgentKeys,
    readonly manager: LaneManager,
    readonly inventory: InventoryBuilder,
    readonly audit: AuditLog,
    /** The single-instance lock the daemon runs under (not released by it). */
    readonly lock: InstanceLock,
    private server: StatusServer | undefined,
    private readonly log: Logger,
    private readonly opts: ResolvedAgentDaemonOptions,
  ) {}

  /** Start the agent (see the module comment for the order). */
  static async start(options: AgentDaemonOptions): Promise<AgentDaemon> {
    const opts = resolveAgentDaemonOptions(options);
    const { config, lock } = opts;
    if (!lock.covers(config.stateDir)) {
      throw new AgentLockedError(`the agent must run under the single-instance lock of ${config.stateDir}`);
    }
    const log = childLogger(opts.log, { component: "agent", hostId: config.hostId });
    await mkdir(config.stateDir, { recursive: true, mode: 0o700 });
    await chmod(config.stateDir, 0o700);
    if (config.laneRoot === config.stateDir || config.laneRoot.startsWith(`${config.stateDir}/`)) {
      // The state directory is 0700: a lane user other than root could not reach its runner directory.
      const user = await lookupUser(config.runAsUser).catch(() => undefined);
      if (user && user.uid !== 0) {
        throw new ConfigError("agent config", [
          { path: "laneRoot", message: `must not be inside stateDir (${config.stateDir}, mode 0700): ${config.runAsUser} could not reach its runner; leave laneRoot out to use ${defaultLaneRoot(config.stateDir)}` },
        ], { file: opts.configPath });
      }
    }
    const keys = await loadAgentKeys(config);
    // Anchored: a deleted, cut-short or restarted chain is refused here instead of being continued silently.
    const audit = await openAnchoredAuditLog(auditLogPath(config.stateDir), auditAnchorPath(config.stateDir), { mode: 0o600 });
    const signer = new MarkerSigner(config.hostId, keys.identity);
    await mkdir(config.laneRoot, { recursive: true, mode: 0o755 });
    const dirs = new LaneDirectories(config.laneRoot, signer);
    const runnerDist = runnerDistOf(config);
    const runtimes = opts.runtimes ?? (await buildRuntimes(config, signer, dirs, runnerDist, opts, log));
    const manager = new LaneManager({
      runnerDist,
      hostId: config.hostId,
      stateDir: config.stateDir,
      dirs,
      runtimes,
      audit,
      health: config.health,
      log: childLogger(opts.log, { component: "lanes", hostId: config.hostId }),
      auditSource: `agent:${config.hostId}`,
    });
    const recovered = await manager.recover();
    for (const r of recovered) log.warn({ laneId: r.laneId, op: r.op, step: r.step, outcome: r.outcome }, r.message);
    // Versions no lane uses any more (lanes removed while the agent was down, interrupted unpacks).
    await manager.pruneRunners();
    const inventory = new InventoryBuilder({
      manager,
      runnerRoots: config.runnerRoots,
      laneRoot: config.laneRoot,
      diskPath: config.laneRoot,
      control: intakeControlOf(config),
      log: childLogger(opts.log, { component: "inventory", hostId: config.hostId }),
      ...(opts.capabilities ? { capabilities: opts.capabilities } : {}),
    });
    const daemon = new AgentDaemon(config, keys, manager, inventory, audit, lock, undefined, log, opts);
    daemon.server = await StatusServer.start({
      socketPath: config.statusSocket,
      report: (n) => daemon.report(n),
      log: childLogger(opts.log, { component: "status", hostId: config.hostId }),
    });
    daemon.scheduleHealth(0);
    daemon.scheduleInventory(0);
    if (config.github.allowInsecureHttpOrigins.length > 0) {
      // Loud on purpose: registration tokens reach these origins in the clear. Local test fleets only.
      log.warn(
        { insecureGithubOrigins: config.github.allowInsecureHttpOrigins },
        "INSECURE: github.allowInsecureHttpOrigins lets lanes register with plain-http GitHub origins; use it for local test fleets only",
      );
    }
    log.info({ version: AGENT_VERSION, controlEnabled: config.control.enabled, backends: Object.keys(runtimes) }, "agent running");
    return daemon;
  }

  private scheduleHealth(delayMs: number): void {
    if (this.stopping) return;
    const interval = this.config.health.intervalMs;
    this.healthTimer = setTimeout(() => {
      this.healthRun = this.manager
        .superviseOnce()
        .catch((err: unknown) => this.log.warn({ err: err instanceof Error ? err.message : String(err) }, "health pass failed"))
        .finally(() => this.scheduleHealth(interval));
    }, delayMs);
  }

  private scheduleInventory(delayMs: number): void {
    if (this.stopping) return;
    const interval = this.config.inventoryIntervalMs;
    this.inventoryTimer = setTimeout(() => {
      // The signed publisher builds on its own schedule too; a recent build is reused instead of repeated.
      this.inventoryRun = this.inventory
        .build(interval)
        .then(() => undefined)
        .catch((err: unknown) => this.log.warn({ err: err instanceof Error ? err.message : String(err) }, "inventory failed"))
        .finally(() => this.scheduleInventory(interval));
    }, delayMs);
  }

  /** The status report served on the socket. */
  async report(auditTail: number): Promise<AgentStatusReport> {
    const c = this.config;
    const lanes = await this.manager.list({ evidence: true });
    const inv = this.inventory.last ?? (await this.inventory.build());
    const audit = await this.audit.tail(auditTail);
    const natsState = this.opts.natsState();
    const nats = this.opts.natsStatus?.() ?? { state: natsState, server: "", sinceMs: this.startedAtMs, lastError: "", lastErrorAtMs: 0, reconnects: 0 };
    const trust = this.opts.trustStatus?.();
    return {
      hostId: c.hostId,
      agentVersion: AGENT_VERSION,
      startedAtMs: this.startedAtMs,
      controlEnabled: c.control.enabled,
      allowlist: allowlistOf(c.control),
      lanes,
      unmanaged: [...inv.unmanaged],
      recentAudit: audit.map((r) => ({
        seq: r.seq,
        atMs: r.at,
        action: r.action,
        phase: r.phase,
        laneId: r.laneId ?? "",
        reasonCode: r.reasonCode ?? "",
        hash: r.hash,
      })),
      natsState,
      recentIntents: this.opts.recentIntents().map((i) => ({
        intentId: i.intentId,
        sequence: i.sequence,
        action: i.action,
        laneId: i.laneId,
        status: i.status,
        reasonCode: i.reasonCode,
        atMs: i.atMs,
      })),
      capabilities: inv.capabilities,
      intentHwm: this.opts.intentHwm(),
      keysetVersion: this.opts.keysetVersion(),
      nats,
      trust,
      pid: process.pid,
      configPath: this.opts.configPath ?? "",
      statusSocket: c.statusSocket,
    };
  }

  /** Stop loops and the socket, wait for in-flight passes and close the audit log (the lock stays with its owner). */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearTimeout(this.healthTimer);
    clearTimeout(this.inventoryTimer);
    await Promise.all([this.healthRun, this.inventoryRun]);
    await this.server?.close();
    await this.audit.close();
    this.log.info({}, "agent stopped");
  }
}

/** The host's runner versions, from `runnerDistPath` and `runnerDownloads` of agent.yaml. */
export function runnerDistOf(config: AgentConfig): RunnerDist {
  const d = config.runnerDownloads;
  return new RunnerDist({
    distPath: config.runnerDistPath,
    cacheDir: d.cacheDir,
    origins: [...d.origins, ...d.allowInsecureHttpOrigins],
    maxArchiveBytes: d.maxArchiveBytes,
    maxUnpackedBytes: d.maxUnpackedBytes,
    mirrorDir: d.mirrorDir,
    mirrorUrlPrefix: d.mirrorUrlPrefix,
  });
}

async function buildRuntimes(
  config: AgentConfig,
  signer: MarkerSigner,
  dirs: LaneDirectories,
  runnerDist: RunnerDist,
  opts: ResolvedAgentDaemonOptions,
  log: Logger,
): Promise<Partial<Record<BackendName, LaneRuntime>>> {
  const runtimes: Partial<Record<BackendName, LaneRuntime>> = {};
  const wantSystemd = config.control.backends.includes("systemd");
  if (opts.systemd) {
    try {
      const user = await lookupUser(config.runAsUser);
      runtimes.systemd = new SystemdRuntime({
        hostId: config.hostId,
        unitDir: config.unitDir,
        signer,
        dirs,
        runnerDistPath: config.runnerDistPath,
        runnerDist,
        user,
        ...(opts.systemctl ? { systemctl: opts.systemctl } : {}),
      });
    } catch (err) {
      if (wantSystemd) throw err;
      log.warn({ user: config.runAsUser }, "runAsUser does not exist: systemd lanes and unit discovery are off");
    }
  } else if (wantSystemd) {
    log.warn({}, "systemd is not running on this host: systemd lanes are off");
  }
  const socket = opts.engineSocket;
  if (socket !== undefined) {
    // Loaded only when an engine is there: dockerode and its dependencies cost ~25 MB of resident memory.
    const { ContainerRuntime } = await import("./runtimes/container-runtime.js");
    runtimes.container = new ContainerRuntime({
      hostId: config.hostId,
      signer,
      dirs,
      socketPath: socket,
      allowedImages: config.control.images,
      networkMode: config.container.network,
    });
  } else if (config.control.backends.includes("container")) {
    log.warn({ socket: config.containerSocket ?? null }, "no container engine socket found: container lanes are off");
  }
  return runtimes;
}
