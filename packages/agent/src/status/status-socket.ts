/**
 * Which status socket `lanekeeper-agent status` asks: `--socket`, else the config's `statusSocket` (by default
 * `/run/lanekeeper/<hostId>/agent.sock`, one per installation). When the default config cannot be read (an
 * operator in group lanekeeper, a config with a NATS password kept 0600), the agents' sockets under
 * `/run/lanekeeper` are listed: one is used, several are named so the operator can choose.
 */
import { constants } from "node:fs";
import { access, lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { type AgentConfig, STATUS_RUN_DIR } from "@lanekeeper/shared";
import { StatusUnavailableError } from "../errors.js";

/** The socket of agents from before the per-installation default (and of configs that still name it). */
export const LEGACY_STATUS_SOCKET = `${STATUS_RUN_DIR}/agent.sock`;

/** Options of {@link resolveStatusSocket}. */
export interface ResolveStatusSocketOptions {
  /** `--socket`, when given. */
  readonly socket?: string | undefined;
  /** The config file (`--config` or the default). */
  readonly configPath: string;
  /** Reads and parses {@link ResolveStatusSocketOptions.configPath}. */
  readonly loadConfig: (path: string) => Promise<AgentConfig>;
  /** Whether the config path is the default one (an explicit `--config` that fails is an error, not a guess). */
  readonly defaultConfig: boolean;
  /** Where the default sockets live. @default STATUS_RUN_DIR */
  readonly runDir?: string;
}

async function isSocket(path: string): Promise<boolean> {
  return (await lstat(path).catch(() => undefined))?.isSocket() === true;
}

/** The agent sockets under `runDir`: `<runDir>/<hostId>/agent.sock` and the legacy `<runDir>/agent.sock`. */
export async function listStatusSockets(runDir: string = STATUS_RUN_DIR): Promise<string[]> {
  const entries = await readdir(runDir, { withFileTypes: true }).catch(() => []);
  const found: string[] = [];
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const candidate = e.isDirectory() ? join(runDir, e.name, "agent.sock") : e.name === "agent.sock" ? join(runDir, e.name) : undefined;
    if (candidate !== undefined && (await isSocket(candidate))) found.push(candidate);
  }
  return found;
}

/** The socket to ask (see the module comment). */
export async function resolveStatusSocket(o: ResolveStatusSocketOptions): Promise<string> {
  if (o.socket !== undefined) return o.socket;
  // A config that can be read but is wrong is reported, never guessed around; so is an explicit --config.
  const readable = await access(o.configPath, constants.R_OK).then(
    () => true,
    () => false,
  );
  if (readable || !o.defaultConfig) return (await o.loadConfig(o.configPath)).statusSocket;
  const runDir = o.runDir ?? STATUS_RUN_DIR;
  const sockets = await listStatusSockets(runDir);
  if (sockets.length > 1) {
    throw new StatusUnavailableError(
      `several agents run on this host and the config cannot be read; pass --socket with one of: ${sockets.join(", ")} (or --config <their agent.yaml>)`,
    );
  }
  return sockets[0] ?? join(runDir, "agent.sock");
}
