/**
 * One simulated host: the real agent (`AgentDaemon` — keys, audit chain, lane manager with its journal, ownership
 * markers and health loop, inventory — and `startAgentIntake` — replay store, trusted key set, allowlist, intake
 * on `lk.v1.intent.<hostId>`, signed results and inventories on its own NATS login) with the lane runtime swapped
 * for {@link SimRunnerRuntime}. What a host does not have here: systemd, containers, runner processes, its own
 * machine (capabilities are one shared answer per worker process).
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ACTION_KINDS, parseAgentConfig, type Capabilities, type Logger } from "@lanekeeper/shared";
import { AgentDaemon, InstanceLock, initAgent, startAgentIntake, type AgentIntakeHandle } from "@lanekeeper/agent";
import { SimRunnerRuntime, type SimRunnerProtocol } from "./sim-runtime.js";

/** What a worker needs to know about one host. */
export interface SimHostSpec {
  readonly hostId: string;
  /** The host's NATS login (per-host permissions in the server config). */
  readonly natsUser: string;
  readonly natsPassword: string;
  /** The scopes this host allows (its local allowlist). */
  readonly scopes: readonly string[];
}

/** What every host of a simulation shares. */
export interface SimHostCommon {
  /** Parent of the hosts' directories (`<baseDir>/<hostId>/...`). */
  readonly baseDir: string;
  readonly natsServers: readonly string[];
  /** The GitHub emulator's web origin (`http://127.0.0.1:<port>`): allowed as an insecure test origin. */
  readonly githubOrigin: string;
  /** The pools every host allows. */
  readonly pools: readonly string[];
  readonly maxLanes: number;
  /** @default the agent's default (5000) */
  readonly inventoryIntervalMs?: number;
  /** @default the agent's default (1000) */
  readonly healthIntervalMs?: number;
}

/** A host's enrollment: what goes into the coordinator's policy. */
export interface SimEnrollment {
  readonly hostId: string;
  readonly identityKey: string;
  readonly sealingKey: string;
}

const paths = (common: SimHostCommon, hostId: string) => {
  const dir = join(common.baseDir, hostId);
  return { dir, stateDir: join(dir, "state"), configPath: join(dir, "agent.yaml"), laneRoot: join(dir, "lanes"), socket: join(dir, "agent.sock") };
};

/** `lanekeeper-agent init` for one host: keys (0600, in its state dir) and a fresh replay state. */
export async function initSimHost(spec: SimHostSpec, common: SimHostCommon): Promise<SimEnrollment> {
  const p = paths(common, spec.hostId);
  await mkdir(p.dir, { recursive: true, mode: 0o700 });
  const bundle = await initAgent({ hostId: spec.hostId, configPath: join(p.dir, "agent.init.yaml"), stateDir: p.stateDir });
  return { hostId: bundle.hostId, identityKey: bundle.identityKey, sealingKey: bundle.sealingKey };
}

/** The host's agent config (validated by the agent's own parser). */
export function simAgentConfigText(spec: SimHostSpec, common: SimHostCommon, trustFile: string): string {
  const p = paths(common, spec.hostId);
  const doc = {
    hostId: spec.hostId,
    nats: { servers: [...common.natsServers], user: spec.natsUser, password: spec.natsPassword },
    trustFile,
    identityKeyFile: join(p.stateDir, "identity.key"),
    sealingKeyFile: join(p.stateDir, "sealing.key"),
    stateDir: p.stateDir,
    laneRoot: p.laneRoot,
    statusSocket: p.socket,
    runAsUser: "root",
    logLevel: "warn",
    ...(common.inventoryIntervalMs === undefined ? {} : { inventoryIntervalMs: common.inventoryIntervalMs }),
    ...(common.healthIntervalMs === undefined ? {} : { health: { intervalMs: common.healthIntervalMs } }),
    github: { allowInsecureHttpOrigins: [common.githubOrigin] },
    runnerDownloads: { allowInsecureHttpOrigins: [common.githubOrigin] },
    control: {
      enabled: true,
      scopes: [...spec.scopes],
      pools: [...common.pools],
      backends: ["systemd"],
      actions: [...ACTION_KINDS],
      images: [],
      maxLanes: common.maxLanes,
    },
  };
  // JSON is YAML: the agent reads it with the parser `lanekeeper-agent run` uses.
  return JSON.stringify(doc, null, 2);
}

/** A running simulated host. */
export interface SimHost {
  readonly hostId: string;
  readonly runtime: SimRunnerRuntime;
  readonly daemon: AgentDaemon;
  readonly intake: AgentIntakeHandle;
  stop(): Promise<void>;
}

/** Start one host (after {@link initSimHost}): the agent daemon and its intake, connected to NATS. */
export async function startSimHost(
  spec: SimHostSpec,
  common: SimHostCommon,
  shared: { trustFile: string; protocol: SimRunnerProtocol; capabilities: () => Promise<Capabilities>; log: Logger },
): Promise<SimHost> {
  const p = paths(common, spec.hostId);
  const text = simAgentConfigText(spec, common, shared.trustFile);
  await writeFile(p.configPath, text, { mode: 0o600 });
  const config = parseAgentConfig(text, p.configPath);
  const lock = await InstanceLock.acquire(config.stateDir);
  const runtime = new SimRunnerRuntime(shared.protocol);
  let daemon: AgentDaemon | undefined;
  try {
    daemon = await AgentDaemon.start({ config, configPath: p.configPath, log: shared.log, lock, runtimes: { systemd: runtime }, capabilities: shared.capabilities });
    const intake = await startAgentIntake({ daemon, log: shared.log });
    await intake.connected;
    const d = daemon;
    return {
      hostId: spec.hostId,
      runtime,
      daemon: d,
      intake,
      async stop() {
        await intake.stop().catch(() => undefined);
        await d.stop().catch(() => undefined);
        await lock.release();
      },
    };
  } catch (err) {
    await daemon?.stop().catch(() => undefined);
    await lock.release();
    throw err;
  }
}
