/**
 * The agent's config (`/etc/lanekeeper/agent.yaml`). It fails closed: `control.enabled` defaults to false (the
 * agent only observes and reports), and every allowlist defaults to empty, and an empty allowlist allows
 * nothing: with `enabled: true` and `scopes: []`, every create intent is refused with `NOT_ALLOWED_SCOPE`.
 */
import { z } from "zod";
import {
  absolutePathField,
  containerNetworkField,
  hostIdField,
  imageField,
  msField,
  natsServersField,
  natsUrlField,
  poolNameField,
  scopeField,
  uniqueList,
} from "./config-fields.js";
import { loadYamlConfig } from "./config-loader.js";
import type { ConfigIssue } from "./errors.js";
import { DEFAULT_GITHUB_ORIGIN, githubOriginProblem } from "./github-origin.js";
import { ACTION_KINDS, type ActionKind } from "./intent.js";
import { MAX_ALLOWLIST_ENTRIES, MAX_INVENTORY_LANES, MAX_RUNNER_ARCHIVE_BYTES } from "./limits.js";
import { DEFAULT_RUNNER_DOWNLOAD_ORIGINS } from "./runner-download.js";

/** A lane backend. */
export type BackendName = "systemd" | "container";
/** Every backend name. */
export const BACKEND_NAMES: readonly BackendName[] = Object.freeze(["systemd", "container"] as const);
/** pino log levels. */
export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

/** How the agent reaches NATS. */
export interface AgentNatsConfig {
  /**
   * Server URL, e.g. `nats://nats.example:4222` (no credentials in the URL). With `servers` set, the first of
   * them: the config gives `url` (one server) or `servers` (a cluster), never both.
   */
  url: string;
  /** Every NATS server the agent may connect to (one cluster's servers, or `[url]`); it fails over between them. @default [url] */
  servers: string[];
  /** User name for user/password auth. */
  user?: string | undefined;
  /** Password for user/password auth (prefer `credsFile`; the config file must then be mode 0600). */
  password?: string | undefined;
  /** NATS credentials file (JWT + nkey seed). Exclusive with `user`/`password`. */
  credsFile?: string | undefined;
  /** CA bundle to verify a TLS server. */
  tlsCaFile?: string | undefined;
}

/** Health watching and restart backoff. */
export interface AgentHealthConfig {
  /** How often the health loop inspects every lane. @default 1000 */
  intervalMs: number;
  /** Restarts within `windowMs` before a lane is marked needs-attention. @default 5 */
  maxRestarts: number;
  /** Window over which restarts are counted. @default 600000 (10 min) */
  windowMs: number;
  /** First restart delay; doubles each time. @default 1000 */
  backoffBaseMs: number;
  /** Longest restart delay. @default 60000 */
  backoffMaxMs: number;
}

/** Container lanes. */
export interface AgentContainerConfig {
  /**
   * `NetworkMode` of lane containers: `host` (lanes reach the network like a systemd lane), `bridge`, `none` or an
   * engine network name. @default "host"
   */
  network: string;
}

/** The local allowlist: what this host lets the coordinator do. Empty lists allow nothing. */
export interface AgentControlConfig {
  /** Accept mutating intents at all. @default false */
  enabled: boolean;
  /** Exact scopes lanes may register with (`owner/repo`, `org:<org>`); at most `MAX_ALLOWLIST_ENTRIES`. @default [] */
  scopes: string[];
  /** Exact pool names; at most `MAX_ALLOWLIST_ENTRIES`. @default [] */
  pools: string[];
  /** Backends lanes may use. @default [] */
  backends: BackendName[];
  /** Intent actions accepted. @default [] */
  actions: ActionKind[];
  /** Container images (pinned by digest) lanes may run; at most `MAX_ALLOWLIST_ENTRIES`. @default [] */
  images: string[];
  /** Most managed lanes on this host, at most `MAX_INVENTORY_LANES` (256). @default 0 */
  maxLanes: number;
}

/**
 * Where this host's lanes may register (DESIGN §4: the agent pins the GitHub origin, so a stolen coordinator key
 * cannot send a runner's registration to another server). A create whose runner URL is not exactly one of these
 * origins plus the scope's path is refused with `GITHUB_ORIGIN_NOT_ALLOWED`.
 */
export interface AgentGithubConfig {
  /**
   * GitHub origins (`https://host[:port]`, written exactly as the origin: lower-case, no path, no trailing
   * slash): github.com or a GitHub Enterprise Server. https only. @default ["https://github.com"]
   */
  origins: string[];
  /**
   * Plain-http origins, for local test fleets only (a GitHub emulator on loopback). Registration tokens would
   * cross the network in the clear: never set this in production. The agent logs a warning at start while it
   * is not empty. @default []
   */
  allowInsecureHttpOrigins: string[];
}

/**
 * Where runner releases come from (systemd lanes). The coordinator names a URL and a SHA-256 in the signed
 * intent; the agent fetches only from these origins (or its mirror), verifies the checksum before unpacking, and
 * keeps one read-only copy per version under `runnerDistPath`, shared by its lanes.
 */
export interface AgentRunnerDownloadsConfig {
  /**
   * https origins a download URL (and every redirect it takes) may name, written as bare origins.
   * @default ["https://github.com", "https://objects.githubusercontent.com", "https://release-assets.githubusercontent.com"]
   */
  origins: string[];
  /** Plain-http origins, for local test fleets only (a GitHub emulator on loopback). @default [] */
  allowInsecureHttpOrigins: string[];
  /**
   * Air-gapped hosts: a directory of `actions-runner-linux-<arch>-<version>.tar.gz` files the operator copied in.
   * Looked at before any network fetch; the checksum is still the one the intent names.
   */
  mirrorDir?: string | undefined;
  /**
   * Air-gapped hosts: an internal URL prefix (`https://mirror.example/runners/`) the agent fetches
   * `<prefix><archive file name>` from instead of the intent's URL; its origin is allowed by being configured.
   */
  mirrorUrlPrefix?: string | undefined;
  /** Largest archive the agent downloads or accepts from the mirror. @default 1073741824 (1 GiB) */
  maxArchiveBytes: number;
  /** Largest total size of an unpacked runner. @default 4294967296 (4 GiB) */
  maxUnpackedBytes: number;
  /**
   * Partial and complete downloads, named by their SHA-256. @default `<stateDir>/runner-cache`
   * ({@link defaultRunnerCacheDir})
   */
  cacheDir: string;
}

/** The parsed, frozen agent config. */
export interface AgentConfig {
  /** This host's id; intents must name it exactly. */
  hostId: string;
  nats: AgentNatsConfig;
  /** Trusted coordinator key set (installed out of band). @default "/etc/lanekeeper/trust.json" */
  trustFile: string;
  /** Agent Ed25519 identity key (PKCS#8 PEM, mode 0600). @default "/etc/lanekeeper/identity.key" */
  identityKeyFile: string;
  /** Agent X25519 sealing key (PKCS#8 PEM, mode 0600). @default "/etc/lanekeeper/sealing.key" */
  sealingKeyFile: string;
  /** Private state (replay high-water mark, journal), mode 0700. @default "/var/lib/lanekeeper" */
  stateDir: string;
  /**
   * Read-only gRPC status socket. @default `/run/lanekeeper/<hostId>/agent.sock` ({@link defaultStatusSocket}):
   * one per installation, so two agents on one machine never answer on each other's socket
   */
  statusSocket: string;
  /** Where lane units are written. @default "/etc/systemd/system" */
  unitDir: string;
  /** Directories searched for hand-made runners (reported as unmanaged, never touched). @default [] */
  runnerRoots: string[];
  /**
   * Unpacked runner versions, read-only, shared by lanes: `<version>-<sha256[:12]>/` for verified downloads, or
   * an operator-staged `<version>/`. @default "/opt/lanekeeper/runners"
   */
  runnerDistPath: string;
  /**
   * Lane directories. Never inside `stateDir` (0700: the lane user could not reach its runner). @default
   * `<stateDir>-lanes`, i.e. "/var/lib/lanekeeper-lanes" with the default `stateDir` ({@link defaultLaneRoot})
   */
  laneRoot: string;
  /** Unprivileged user the runners run as. @default "lanekeeper-runner" */
  runAsUser: string;
  /** Container engine API socket; unset uses the engine default. */
  containerSocket?: string | undefined;
  container: AgentContainerConfig;
  /** Inventory publication interval. @default 5000 */
  inventoryIntervalMs: number;
  /** @default "info" */
  logLevel: LogLevel;
  health: AgentHealthConfig;
  github: AgentGithubConfig;
  runnerDownloads: AgentRunnerDownloadsConfig;
  control: AgentControlConfig;
}

const natsSchema = z
  .strictObject({
    url: natsUrlField.optional(),
    servers: natsServersField.optional(),
    user: z.string().min(1).max(256).optional(),
    password: z.string().min(1).max(1024).optional(),
    credsFile: absolutePathField.optional(),
    tlsCaFile: absolutePathField.optional(),
  })
  .superRefine((n, ctx) => {
    if ((n.url === undefined) === (n.servers === undefined)) {
      ctx.addIssue({ code: "custom", path: [n.url === undefined ? "url" : "servers"], message: "give url (one server) or servers (a cluster), exactly one of them" });
    }
  })
  // One shape for every reader: url is the first server, servers the whole list.
  .transform(({ url, servers, ...rest }) => {
    const list = servers ?? (url === undefined ? [] : [url]);
    return { ...rest, url: list[0] ?? "", servers: list };
  });

const healthSchema = z
  .strictObject({
    intervalMs: msField(100, 600_000).default(1000).meta({ description: "How often the health loop inspects every lane." }),
    maxRestarts: z.number().int().min(0).max(1000).default(5),
    windowMs: msField(1000, 86_400_000).default(600_000),
    backoffBaseMs: msField(10, 3_600_000).default(1000),
    backoffMaxMs: msField(10, 3_600_000).default(60_000),
  })
  .prefault({});

const containerSchema = z
  .strictObject({
    network: containerNetworkField.default("host"),
  })
  .prefault({});

function originField(allowHttp: boolean) {
  return z
    .string()
    .max(256)
    .superRefine((value, ctx) => {
      const problem = githubOriginProblem(value, { allowHttp });
      if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
    });
}

const githubSchema = z
  .strictObject({
    origins: uniqueList(originField(false), "origin")
      .max(MAX_ALLOWLIST_ENTRIES)
      .default([DEFAULT_GITHUB_ORIGIN])
      .meta({ description: "GitHub origins lanes may register with (https://host[:port]). Default: https://github.com." }),
    allowInsecureHttpOrigins: uniqueList(originField(true), "origin")
      .max(MAX_ALLOWLIST_ENTRIES)
      .default([])
      .meta({ description: "Plain-http origins for LOCAL TEST FLEETS ONLY (tokens travel in the clear). Warned about at start." }),
  })
  .prefault({})
  .meta({ description: "Where lanes may register: runner URLs must be exactly one of these origins plus the scope's path." });

function mirrorUrlPrefixProblem(text: string): string | undefined {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return "is not a URL; write a prefix such as https://mirror.example/runners/";
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") return "must be an http(s) URL";
  if (u.username !== "" || u.password !== "" || u.search !== "" || u.hash !== "") return "must not carry credentials, a query or a fragment";
  if (!text.startsWith(`${u.origin}/`) || !text.endsWith("/")) return `must be written as ${u.origin}/<path>/ (ending in /)`;
  return undefined;
}

const runnerDownloadsSchema = z
  .strictObject({
    origins: uniqueList(originField(false), "origin")
      .max(MAX_ALLOWLIST_ENTRIES)
      .default([...DEFAULT_RUNNER_DOWNLOAD_ORIGINS])
      .meta({ description: "https origins runner downloads (and their redirects) may come from. Default: GitHub's release hosts." }),
    allowInsecureHttpOrigins: uniqueList(originField(true), "origin")
      .max(MAX_ALLOWLIST_ENTRIES)
      .default([])
      .meta({ description: "Plain-http download origins for LOCAL TEST FLEETS ONLY. The checksum is still verified." }),
    mirrorDir: absolutePathField.optional().meta({ description: "Air-gapped hosts: directory of actions-runner-linux-<arch>-<version>.tar.gz files." }),
    mirrorUrlPrefix: z
      .string()
      .max(1024)
      .superRefine((value, ctx) => {
        const problem = mirrorUrlPrefixProblem(value);
        if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
      })
      .optional()
      .meta({ description: "Air-gapped hosts: fetch <prefix><archive file name> instead of the intent's URL." }),
    maxArchiveBytes: z.number().int().min(1024).max(MAX_RUNNER_ARCHIVE_BYTES).default(1024 * 1024 * 1024),
    maxUnpackedBytes: z.number().int().min(1024).max(64 * 1024 * 1024 * 1024).default(4 * 1024 * 1024 * 1024),
    cacheDir: absolutePathField.optional().meta({ description: "Download cache. Default: <stateDir>/runner-cache." }),
  })
  .prefault({})
  .meta({ description: "Verified runner downloads: allowed origins, air-gapped mirror, size caps, cache." });

/** The download cache when the config names none: inside the agent's private state directory. */
export function defaultRunnerCacheDir(stateDir: string): string {
  return `${stateDir.replace(/\/+$/, "")}/runner-cache`;
}

const controlSchema = z
  .strictObject({
    enabled: z.boolean().default(false).meta({ description: "Accept mutating intents. Off by default: observe only." }),
    // Bounded so the allowlist always fits in the signed inventory that reports it.
    scopes: uniqueList(scopeField, "scope").max(MAX_ALLOWLIST_ENTRIES).default([]),
    pools: uniqueList(poolNameField, "pool").max(MAX_ALLOWLIST_ENTRIES).default([]),
    backends: uniqueList(z.enum(["systemd", "container"]), "backend").default([]),
    actions: uniqueList(z.enum(ACTION_KINDS as [ActionKind, ...ActionKind[]]), "action").default([]),
    images: uniqueList(imageField, "image").max(MAX_ALLOWLIST_ENTRIES).default([]),
    // A host must be able to report every lane it runs in one inventory.
    maxLanes: z.number().int().min(0).max(MAX_INVENTORY_LANES).default(0),
  })
  .prefault({})
  .meta({ description: "Local allowlist. Empty lists allow nothing." });

/**
 * The lane root when the config names none: a sibling of the state directory (`/var/lib/lanekeeper` →
 * `/var/lib/lanekeeper-lanes`), because the state directory is 0700 and the lane user must reach its runner.
 */
export function defaultLaneRoot(stateDir: string): string {
  return `${stateDir.replace(/\/+$/, "")}-lanes`;
}

/** The directory holding the default status sockets, one subdirectory per agent (the unit's RuntimeDirectory). */
export const STATUS_RUN_DIR = "/run/lanekeeper";

/**
 * The status socket when the config names none: `/run/lanekeeper/<hostId>/agent.sock`. Named for the host id so
 * that each installation on a machine has its own, and `ls /run/lanekeeper` shows which agents run.
 */
export function defaultStatusSocket(hostId: string): string {
  return `${STATUS_RUN_DIR}/${hostId}/agent.sock`;
}

/** The zod schema of the agent config (exported for the JSON Schema generator). */
export const agentConfigSchema = z
  .strictObject({
    hostId: hostIdField,
    nats: natsSchema,
    trustFile: absolutePathField.default("/etc/lanekeeper/trust.json"),
    identityKeyFile: absolutePathField.default("/etc/lanekeeper/identity.key"),
    sealingKeyFile: absolutePathField.default("/etc/lanekeeper/sealing.key"),
    stateDir: absolutePathField.default("/var/lib/lanekeeper"),
    statusSocket: absolutePathField
      .optional()
      .meta({ description: "Read-only gRPC status socket. Default: /run/lanekeeper/<hostId>/agent.sock (one per installation)." }),
    unitDir: absolutePathField.default("/etc/systemd/system"),
    runnerRoots: uniqueList(absolutePathField, "runner root").default([]),
    runnerDistPath: absolutePathField.default("/opt/lanekeeper/runners"),
    laneRoot: absolutePathField
      .optional()
      .meta({ description: "Lane directories, never inside stateDir. Default: <stateDir>-lanes (/var/lib/lanekeeper-lanes)." }),
    runAsUser: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]{0,31}$/, "must be a system user name ([a-z_][a-z0-9_-]{0,31})")
      .default("lanekeeper-runner"),
    containerSocket: absolutePathField.optional(),
    container: containerSchema,
    inventoryIntervalMs: msField(500, 3_600_000).default(5000),
    logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    health: healthSchema,
    github: githubSchema,
    runnerDownloads: runnerDownloadsSchema,
    control: controlSchema,
  })
  .transform(({ laneRoot, statusSocket, runnerDownloads, ...rest }) => ({
    ...rest,
    statusSocket: statusSocket ?? defaultStatusSocket(rest.hostId),
    laneRoot: laneRoot ?? defaultLaneRoot(rest.stateDir),
    runnerDownloads: { ...runnerDownloads, cacheDir: runnerDownloads.cacheDir ?? defaultRunnerCacheDir(rest.stateDir) },
  }))
  .meta({ title: "lanekeeper agent config", description: "/etc/lanekeeper/agent.yaml" });

// Compile-time check that the documented interface and the schema agree.
type Equal<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _agentConfigMatches: Equal<z.output<typeof agentConfigSchema>, AgentConfig> = true;
void _agentConfigMatches;

function crossCheck(c: AgentConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (c.nats.credsFile !== undefined && (c.nats.user !== undefined || c.nats.password !== undefined)) {
    issues.push({ path: "nats.credsFile", message: "use either credsFile or user/password, not both" });
  }
  if ((c.nats.user === undefined) !== (c.nats.password === undefined)) {
    issues.push({ path: c.nats.user === undefined ? "nats.user" : "nats.password", message: "user and password go together" });
  }
  if (/^\/+$/.test(c.stateDir)) {
    issues.push({ path: "stateDir", message: "must be a directory of its own (it is made mode 0700), not /" });
  }
  if (c.health.backoffBaseMs > c.health.backoffMaxMs) {
    issues.push({ path: "health.backoffBaseMs", message: "must not exceed health.backoffMaxMs" });
  }
  const dirs: [string, string][] = [
    ["stateDir", c.stateDir],
    ["laneRoot", c.laneRoot],
    ["unitDir", c.unitDir],
    ["runnerDistPath", c.runnerDistPath],
    ["runnerDownloads.cacheDir", c.runnerDownloads.cacheDir],
  ];
  c.runnerRoots.forEach((root, i) => {
    for (const [name, dir] of dirs) {
      if (name !== "unitDir" && (dir === root || dir.startsWith(`${root}/`) || root.startsWith(`${dir}/`))) {
        issues.push({ path: `runnerRoots[${i}]`, message: `overlaps ${name} (${dir}); hand-made runners must live elsewhere` });
      }
    }
  });
  const dist = c.runnerDistPath;
  const cache = c.runnerDownloads.cacheDir;
  if (cache === dist || cache.startsWith(`${dist}/`) || dist.startsWith(`${cache}/`)) {
    issues.push({ path: "runnerDownloads.cacheDir", message: `must not overlap runnerDistPath (${dist}): unused versions there are pruned` });
  }
  if (c.runnerDownloads.maxArchiveBytes > c.runnerDownloads.maxUnpackedBytes) {
    issues.push({ path: "runnerDownloads.maxArchiveBytes", message: "must not exceed runnerDownloads.maxUnpackedBytes" });
  }
  if (c.control.images.length > 0 && !c.control.backends.includes("container")) {
    issues.push({ path: "control.images", message: 'images are only used by the "container" backend; add it to control.backends or remove the images' });
  }
  return issues;
}

/**
 * Parse and validate the agent config YAML. Throws `ConfigError` listing every problem as `path: message`,
 * naming `file` (where the caller read the text) when given. The result is deeply frozen.
 */
export function parseAgentConfig(yamlText: string, file?: string): AgentConfig {
  return loadYamlConfig(yamlText, agentConfigSchema, "agent config", crossCheck, file);
}
