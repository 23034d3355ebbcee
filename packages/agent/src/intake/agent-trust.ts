import { constants as fsConstants } from "node:fs";
import { open, readFile, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import {
  applyKeySetUpdate,
  decodeSignedKeySet,
  formatTrustFile,
  LanekeeperError,
  MAX_CONFIG_BYTES,
  parseTrustFile,
  SerialQueue,
  TrustedKeyStore,
  type Clock,
  type TrustedKeySet,
} from "@lanekeeper/shared";
import type { AgentErrorCode } from "../errors.js";

/**
 * File in the agent's state directory holding the newest key set accepted through a signed update, in the
 * trust-file format. The installed trust file lives in the config directory, which the hardened agent unit
 * cannot write (`ProtectSystem=strict`), so updates are kept here.
 */
export const APPLIED_KEYSET_FILE = "trust-applied.json";

/** The trust file or the applied key set cannot be used; the agent must not accept intents. */
export class TrustError extends LanekeeperError<AgentErrorCode> {
  constructor(code: "TRUST_FILE_INVALID" | "TRUST_ROLLBACK", message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
  }
}

/** Options of {@link AgentTrust.load}. */
export interface AgentTrustOptions {
  /** The installed trust file (`trustFile` in agent.yaml, shared's `lanekeeper.trust.v1` JSON), installed out of band. */
  trustFile: string;
  /** The agent's state directory, where applied updates are kept (the config directory is read-only). */
  stateDir: string;
  /**
   * The key-set version the replay state last recorded; a trusted set older than this is a rollback and is
   * refused (a deleted applied set must not resurrect keys revoked since installation).
   */
  recordedVersion: number;
  clock: Clock;
}

/**
 * The agent's trusted coordinator keys. The installed trust file is the root of trust (installed out of band at
 * enrollment, like SPIRE's trust bundle): it pins the offline root key(s) and lists the online intent keys. Later
 * versions arrive only as `SignedKeySet` updates verified by `applyKeySetUpdate` (exactly current + 1, signed by
 * a root key of the current set and by every root key it adds, not expired; the online key alone can change
 * nothing) and are kept in the state directory. At start the newer of the two is used; anything older than
 * the version recorded in the replay state is refused.
 */
export class AgentTrust {
  private current: TrustedKeyStore;
  private readonly updates = new SerialQueue();

  private constructor(
    store: TrustedKeyStore,
    private readonly stateDir: string,
    private readonly clock: Clock,
  ) {
    this.current = store;
  }

  /** Load the installed trust file and the applied set, choose the newer, and refuse a rollback. */
  static async load(opts: AgentTrustOptions): Promise<AgentTrust> {
    const installed = await readTrustFile(opts.trustFile);
    if (installed === undefined) throw new TrustError("TRUST_FILE_INVALID", `trust file ${opts.trustFile} does not exist`);
    const applied = await readTrustFile(join(opts.stateDir, APPLIED_KEYSET_FILE));
    const chosen = applied !== undefined && applied.version > installed.version ? applied : installed;
    if (chosen.version < opts.recordedVersion) {
      throw new TrustError(
        "TRUST_ROLLBACK",
        `trusted key set version ${chosen.version} is older than version ${opts.recordedVersion} recorded in the replay state; ` +
          `install the coordinator's current key set (<keyFile>.keyset.json, kept current by lanekeeper keys rotate) as ${opts.trustFile} and restart`,
      );
    }
    return new AgentTrust(new TrustedKeyStore(chosen), opts.stateDir, opts.clock);
  }

  /** Build from a set already in memory (tests and tools). */
  static fromSet(set: TrustedKeySet, stateDir: string, clock: Clock): AgentTrust {
    return new AgentTrust(new TrustedKeyStore(set), stateDir, clock);
  }

  /** The key store intents are verified against. */
  get keys(): TrustedKeyStore {
    return this.current;
  }

  /** Version of the current set. */
  get version(): number {
    return this.current.version;
  }

  /**
   * Verify a signed key-set update against the current set and, when it holds, persist it atomically and
   * switch to it. Updates are applied one at a time. Throws `RejectError` (`KEYSET_NOT_ROOT_SIGNED` when only an
   * intent key signed; `KEYSET_UNKNOWN_ROOT`; `KEYSET_VERSION` for a rollback, replay or skipped version;
   * `KEYSET_ROOT_CHANGE`; `EXPIRED`; `BAD_SIGNATURE`, ...) and keeps the current set.
   */
  applyUpdate(bytes: Uint8Array): Promise<TrustedKeySet> {
    return this.updates.run(async () => {
      const signed = decodeSignedKeySet(bytes);
      const next = applyKeySetUpdate(this.current.set, signed, this.clock);
      const store = new TrustedKeyStore(next);
      await writeAtomic(join(this.stateDir, APPLIED_KEYSET_FILE), formatTrustFile(next));
      this.current = store;
      return next;
    });
  }
}

/** What {@link keySetUpdateHandler} needs of the replay store. */
export interface KeySetReplayHooks {
  setKeysetVersion(version: number): Promise<void>;
  raiseHwm(floor: number): Promise<void>;
}

/**
 * The handler the intake calls for a signed key-set update: apply it to `trust`, then record the new version in
 * the replay state (rollback detection across restarts) and raise the intent high-water mark to the set's
 * `hwm_floor` (TUF fast-forward recovery after an online key was compromised).
 */
export function keySetUpdateHandler(
  trust: AgentTrust,
  replay: KeySetReplayHooks,
): { applyKeySetUpdate(bytes: Uint8Array): Promise<{ version: number; hwmFloor: number }> } {
  return {
    async applyKeySetUpdate(bytes: Uint8Array) {
      const next = await trust.applyUpdate(bytes);
      await replay.setKeysetVersion(next.version);
      if (next.hwmFloor > 0) await replay.raiseHwm(next.hwmFloor);
      return { version: next.version, hwmFloor: next.hwmFloor };
    },
  };
}

/** Read a trust file (shared's JSON format, `lanekeeper.trust.v1`); `undefined` when it does not exist. */
async function readTrustFile(path: string): Promise<TrustedKeySet | undefined> {
  let text: string;
  try {
    const st = await stat(path);
    if (st.size > MAX_CONFIG_BYTES) throw new TrustError("TRUST_FILE_INVALID", `${path} is larger than ${MAX_CONFIG_BYTES} bytes`);
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    if (err instanceof TrustError) throw err;
    throw new TrustError("TRUST_FILE_INVALID", `cannot read ${path}`, { cause: err });
  }
  try {
    return parseTrustFile(text);
  } catch (err) {
    throw new TrustError("TRUST_FILE_INVALID", `${path} is not a valid trust file: ${(err as Error).message}`, { cause: err });
  }
}

async function writeAtomic(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fh = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | fsConstants.O_NOFOLLOW, 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    const dh = await open(join(path, ".."), "r");
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw new TrustError("TRUST_FILE_INVALID", `cannot persist the key set to ${path}`, { cause: err });
  }
}
