import { constants as fsConstants } from "node:fs";
import { mkdir, open, readFile, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { LanekeeperError } from "@lanekeeper/shared";
import { MAX_REPLAY_STATE_BYTES, REPLAY_STATE_FILE, REPLAY_STATE_FORMAT_VERSION, STATE_LOCK_FILE } from "./limits.js";

/** One intent the agent accepted recently, kept so an exact duplicate gets the same signed result back. */
export interface ReplayStateEntry {
  /** The intent's 128-bit id (lower-case hex). */
  readonly intentId: string;
  /** Hex SHA-256 of the intent's payload bytes. */
  readonly digest: string;
  /** The intent's sequence. */
  readonly seq: number;
  /** When the entry may be forgotten: the intent's expiry plus the clock skew (ms since the epoch). */
  readonly expiresAt: number;
  /** Base64 of the signed result envelope; absent while the intent runs or if the agent stopped before it ended. */
  readonly resultEnvelope?: string;
}

/** The replay state file: `{formatVersion, hostId, hwm, keysetVersion, recent}`. */
export interface ReplayState {
  readonly formatVersion: number;
  /** The host this state belongs to; a state file of another host counts as lost. */
  readonly hostId: string;
  /** Highest intent sequence accepted (0 before the first intent). */
  readonly hwm: number;
  /** Version of the trusted key set last applied; a trust file older than this is a rollback. */
  readonly keysetVersion: number;
  /** Recent accepted intents, newest last, pruned on expiry and capped. */
  readonly recent: readonly ReplayStateEntry[];
}

/** What loading the state found. Anything but `ok` makes the agent fail closed (floor rule). */
export type LoadedReplayState =
  | { readonly kind: "ok"; readonly state: ReplayState }
  | { readonly kind: "missing" }
  | { readonly kind: "corrupt"; readonly why: string };

/**
 * Where the replay state lives. The intake only needs to load it once and save whole snapshots atomically, so
 * a test can run it in memory and the agent on a file.
 */
export interface StateStore {
  /** Read the last saved state. Never throws for bad content: that is `corrupt`. */
  load(): Promise<LoadedReplayState>;
  /** Replace the saved state atomically and durably: when this resolves, a crash cannot lose it. */
  save(state: ReplayState): Promise<void>;
}

/** The state file or its lock cannot be used (I/O error, or another agent instance holds the lock). */
export class StateStoreError extends LanekeeperError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("STATE_STORE_FAILED", message, options);
  }
}

const ENTRY_KEYS = new Set(["intentId", "digest", "seq", "expiresAt", "resultEnvelope"]);
const STATE_KEYS = new Set(["formatVersion", "hostId", "hwm", "keysetVersion", "recent"]);
const HEX_ID = /^[0-9a-f]{32}$/;
const HEX_DIGEST = /^[0-9a-f]{64}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Validate parsed replay state strictly: exact keys, exact types. Returns a reason string when invalid.
 * Strictness matters because a half-valid state could lower the high-water mark.
 */
export function validateReplayState(v: unknown, hostId: string): string | undefined {
  if (!isPlainObject(v)) return "not a JSON object";
  for (const k of Object.keys(v)) if (!STATE_KEYS.has(k)) return `unknown key ${JSON.stringify(k)}`;
  if (v.formatVersion !== REPLAY_STATE_FORMAT_VERSION) return `formatVersion is not ${REPLAY_STATE_FORMAT_VERSION}`;
  if (v.hostId !== hostId) return "hostId does not match this agent";
  if (!isCount(v.hwm)) return "hwm is not a non-negative integer";
  if (!isCount(v.keysetVersion)) return "keysetVersion is not a non-negative integer";
  if (!Array.isArray(v.recent)) return "recent is not an array";
  const seen = new Set<string>();
  for (const [i, e] of (v.recent as unknown[]).entries()) {
    if (!isPlainObject(e)) return `recent[${i}] is not an object`;
    for (const k of Object.keys(e)) if (!ENTRY_KEYS.has(k)) return `recent[${i}] has unknown key ${JSON.stringify(k)}`;
    if (typeof e.intentId !== "string" || !HEX_ID.test(e.intentId)) return `recent[${i}].intentId is invalid`;
    if (seen.has(e.intentId)) return `recent[${i}].intentId is duplicated`;
    seen.add(e.intentId);
    if (typeof e.digest !== "string" || !HEX_DIGEST.test(e.digest)) return `recent[${i}].digest is invalid`;
    if (!isCount(e.seq) || e.seq > v.hwm) return `recent[${i}].seq is invalid or above hwm`;
    if (!isCount(e.expiresAt)) return `recent[${i}].expiresAt is invalid`;
    if (e.resultEnvelope !== undefined && (typeof e.resultEnvelope !== "string" || !BASE64.test(e.resultEnvelope))) {
      return `recent[${i}].resultEnvelope is invalid`;
    }
  }
  return undefined;
}

/** Reject `__proto__`/`constructor`/`prototype` keys and duplicate keys while parsing, instead of trusting them. */
function strictParse(text: string): unknown {
  return JSON.parse(text, function (this: unknown, key: string, value: unknown) {
    if (key === "__proto__" || key === "constructor" || key === "prototype") {
      throw new SyntaxError(`forbidden key ${key}`);
    }
    return value;
  });
}

/**
 * The replay state in a file of the agent's private state directory (mode 0700 directory, 0600 file).
 *
 * Saving writes a temporary file in the same directory, fsyncs it, renames it over the state file and fsyncs
 * the directory, so a crash leaves either the old or the new state, never a torn one. A lock file keeps a second
 * agent instance from sharing the state (it would otherwise accept the same sequences).
 */
export class FileStateStore implements StateStore {
  /** Absolute path of the state file. */
  readonly path: string;
  private readonly lockPath: string;
  private locked = false;

  /**
   * @param dir - the agent's state directory (created 0700 if missing).
   * @param hostId - the agent's host id; a state file naming another host counts as corrupt.
   */
  constructor(
    readonly dir: string,
    private readonly hostId: string,
  ) {
    this.path = join(dir, REPLAY_STATE_FILE);
    this.lockPath = join(dir, STATE_LOCK_FILE);
  }

  /**
   * Take the single-instance lock. A lock left by a dead process is taken over; one held by a live process
   * (including this one, through another store) is refused.
   */
  async lock(): Promise<void> {
    if (this.locked) return;
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await open(this.lockPath, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
        try {
          await fh.writeFile(`${process.pid}\n`);
          await fh.sync();
        } finally {
          await fh.close();
        }
        this.locked = true;
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
          throw new StateStoreError(`cannot create lock file ${this.lockPath}`, { cause: err });
        }
        const holder = Number.parseInt(await readFile(this.lockPath, "utf8").catch(() => ""), 10);
        if (Number.isSafeInteger(holder) && holder > 0 && processAlive(holder)) {
          throw new StateStoreError(
            `another lanekeeper-agent (pid ${holder}) holds ${this.lockPath}; two agents must never share a state directory`,
          );
        }
        // Stale lock of a dead process: remove it and retry once.
        await unlink(this.lockPath).catch(() => undefined);
      }
    }
    throw new StateStoreError(`cannot take the lock ${this.lockPath}`);
  }

  /** Release the lock taken by {@link lock}. */
  async unlock(): Promise<void> {
    if (!this.locked) return;
    this.locked = false;
    await unlink(this.lockPath).catch(() => undefined);
  }

  async load(): Promise<LoadedReplayState> {
    let text: string;
    try {
      const st = await stat(this.path);
      if (st.size > MAX_REPLAY_STATE_BYTES) return { kind: "corrupt", why: `larger than ${MAX_REPLAY_STATE_BYTES} bytes` };
      text = await readFile(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { kind: "missing" };
      return { kind: "corrupt", why: `cannot read: ${(err as NodeJS.ErrnoException).code ?? "I/O error"}` };
    }
    let parsed: unknown;
    try {
      parsed = strictParse(text);
    } catch {
      return { kind: "corrupt", why: "not valid JSON" };
    }
    const why = validateReplayState(parsed, this.hostId);
    if (why !== undefined) return { kind: "corrupt", why };
    return { kind: "ok", state: parsed as ReplayState };
  }

  async save(state: ReplayState): Promise<void> {
    await this.writeAtomic(JSON.stringify(state));
  }

  /**
   * Save a state already serialized by the caller (the replay store caches per-entry JSON to keep group
   * commits cheap). The text must be a valid {@link ReplayState}.
   */
  async writeAtomic(text: string): Promise<void> {
    const tmp = `${this.path}.tmp-${process.pid}`;
    try {
      const fh = await open(tmp, "w", 0o600);
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.path);
      const dh = await open(this.dir, "r");
      try {
        await dh.sync();
      } finally {
        await dh.close();
      }
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw new StateStoreError(`cannot persist replay state to ${this.path}`, { cause: err });
    }
  }

  /**
   * Write a fresh state (`hwm` 0, nothing recent) for a newly enrolled agent or after an operator reset. Without
   * it the first start counts as "state lost" and the floor rule applies.
   */
  async initialize(keysetVersion = 0): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.save({ formatVersion: REPLAY_STATE_FORMAT_VERSION, hostId: this.hostId, hwm: 0, keysetVersion, recent: [] });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A state store in memory, for unit tests of the pipeline and for benchmarks without a disk. */
export class MemoryStateStore implements StateStore {
  /** The last saved state, or undefined. Tests may replace or corrupt it. */
  state: ReplayState | undefined;
  /** Set to make `load` report corruption. */
  corrupt: string | undefined;
  /** Number of saves, for asserting the write-before-execute order. */
  saves = 0;
  /** Set to make `save` fail (disk full and the like). */
  failSaves = false;

  async load(): Promise<LoadedReplayState> {
    await Promise.resolve();
    if (this.corrupt !== undefined) return { kind: "corrupt", why: this.corrupt };
    return this.state === undefined ? { kind: "missing" } : { kind: "ok", state: structuredClone(this.state) };
  }

  async save(state: ReplayState): Promise<void> {
    await Promise.resolve();
    if (this.failSaves) throw new StateStoreError("save failed (test)");
    this.saves++;
    this.state = structuredClone(state);
  }
}
