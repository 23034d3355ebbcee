/**
 * The agent's keys: an Ed25519 identity key (signs lane markers, results and inventories) and an X25519 sealing
 * key (secrets are sealed to it). `lanekeeper-agent init` creates both (0600, in a 0700 state directory), writes
 * an observe-only config, and returns the enrollment bundle (public keys with their key ids, capabilities, nothing
 * private) that an operator enrolls with `lanekeeper hosts add`: that is the host's opt-in on the coordinator side.
 */
import { constants as fsConstants } from "node:fs";
import { chmod, lstat, mkdir, open, stat } from "node:fs/promises";
import { dirname, isAbsolute, join } from "node:path";
import {
  type AgentConfig,
  type Capabilities,
  defaultLaneRoot,
  type EnrollmentBundle,
  generateSealingKey,
  generateSigningKey,
  makeEnrollmentBundle,
  parseAgentConfig,
  type SealingKey,
  sealingKeyFromPem,
  sealingKeyToPem,
  type SigningKey,
  signingKeyFromPem,
  signingKeyToPem,
  validateHostId,
} from "@lanekeeper/shared";
import { stringify } from "yaml";
import { readSmallFile } from "./atomic-file.js";
import { AgentInitError } from "./errors.js";
import { AGENT_VERSION } from "./agent-version.js";
import { FileStateStore } from "./intake/state-store.js";

/** The agent's loaded keys. */
export interface AgentKeys {
  readonly identity: SigningKey;
  readonly sealing: SealingKey;
}

/** Options of {@link initAgent}. */
export interface InitOptions {
  readonly hostId: string;
  readonly configPath: string;
  readonly stateDir: string;
  /** Capabilities to put in the bundle (from `systeminformation`). */
  readonly capabilities?: Capabilities;
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

async function writeNew(path: string, data: string, mode: number): Promise<void> {
  // O_EXCL: init never overwrites a key or a config.
  const fh = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The config `init` writes: observe-only, keys in the state directory, everything else at its default. */
export function initialConfigText(hostId: string, stateDir: string): string {
  const doc = {
    hostId,
    nats: { url: "nats://127.0.0.1:4222" },
    identityKeyFile: join(stateDir, "identity.key"),
    sealingKeyFile: join(stateDir, "sealing.key"),
    trustFile: join(stateDir, "trust.json"),
    stateDir,
    // The default for this stateDir, written out so the operator sees where lanes go (never inside the 0700
    // state directory: the lane user must be able to reach its runner directory).
    laneRoot: defaultLaneRoot(stateDir),
    control: { enabled: false, scopes: [], pools: [], backends: [], actions: [], images: [], maxLanes: 0 },
  };
  return (
    "# lanekeeper-agent config, written by `lanekeeper-agent init`. See docs/agent.md.\n" +
    "# control.enabled is false: the agent only observes and reports until you opt in here.\n" +
    stringify(doc)
  );
}

/** Create keys and config. Refuses (`ALREADY_INITIALIZED`) when any of them exists. */
export async function initAgent(o: InitOptions): Promise<EnrollmentBundle> {
  const hostId = validateHostId(o.hostId);
  if (!isAbsolute(o.stateDir) || !isAbsolute(o.configPath)) {
    throw new AgentInitError("NOT_INITIALIZED", "--state-dir and --config must be absolute paths");
  }
  const identityPath = join(o.stateDir, "identity.key");
  const sealingPath = join(o.stateDir, "sealing.key");
  for (const p of [identityPath, sealingPath, o.configPath]) {
    if (await exists(p)) {
      throw new AgentInitError("ALREADY_INITIALIZED", `${p} exists; init never overwrites keys or config (move them away to start over)`);
    }
  }
  // Parents get the usual 0755; only the state directory itself is private.
  await mkdir(dirname(o.stateDir), { recursive: true, mode: 0o755 });
  await mkdir(o.stateDir, { recursive: true, mode: 0o700 });
  await chmod(o.stateDir, 0o700);
  await mkdir(dirname(o.configPath), { recursive: true, mode: 0o755 });
  const identity = generateSigningKey();
  const sealing = generateSealingKey();
  await writeNew(identityPath, signingKeyToPem(identity), 0o600);
  await writeNew(sealingPath, sealingKeyToPem(sealing), 0o600);
  const text = initialConfigText(hostId, o.stateDir);
  parseAgentConfig(text, o.configPath); // The config init writes must load.
  await writeNew(o.configPath, text, 0o640);
  // A fresh replay state (hwm 0): without it the first `run` would treat the state as lost (floor rule).
  await new FileStateStore(o.stateDir, hostId).initialize();
  return enrollmentBundle(hostId, { identity, sealing }, o.capabilities);
}

/**
 * The bundle for already loaded keys (`lanekeeper-agent init` prints it with shared `enrollmentBundleYaml` or
 * `enrollmentBundleJson`, the forms `lanekeeper hosts add` reads).
 */
export function enrollmentBundle(hostId: string, keys: AgentKeys, capabilities?: Capabilities): EnrollmentBundle {
  return makeEnrollmentBundle({
    hostId,
    identityPublicKey: keys.identity.publicKey,
    sealingPublicKey: keys.sealing.publicKey,
    agentVersion: AGENT_VERSION,
    capabilities,
  });
}

async function loadKeyFile(path: string, what: string): Promise<string> {
  let st;
  try {
    st = await stat(path);
  } catch {
    throw new AgentInitError("NOT_INITIALIZED", `${what} ${path} does not exist; run \`lanekeeper-agent init\` first`);
  }
  if ((st.mode & 0o077) !== 0) {
    throw new AgentInitError("NOT_INITIALIZED", `${what} ${path} is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
  }
  const buf = await readSmallFile(path, 16 * 1024);
  if (!buf) throw new AgentInitError("NOT_INITIALIZED", `${what} ${path} does not exist`);
  return buf.toString("utf8");
}

/** Load the identity and sealing keys named by the config (fails closed on loose permissions). */
export async function loadAgentKeys(config: AgentConfig): Promise<AgentKeys> {
  const identity = signingKeyFromPem(await loadKeyFile(config.identityKeyFile, "identity key"));
  const sealing = sealingKeyFromPem(await loadKeyFile(config.sealingKeyFile, "sealing key"));
  return { identity, sealing };
}
