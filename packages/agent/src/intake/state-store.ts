import { constants as fsConstants } from "node:fs";
import { mkdir, open, readFile, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { LanekeeperError } from "@lanekeeper/shared";
import type { AgentErrorCode } from "../errors.js";
import { InstanceLock } from "../instance-lock.js";
import { MAX_REPLAY_STATE_BYTES, REPLAY_JOURNAL_FILE, REPLAY_STATE_FILE, REPLAY_STATE_FORMAT_VERSION } from "./limits.js";

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

/** The replay state file: `{formatVersion, hostId, hwm, keysetVersion, fence?, recent}`. */
export interface ReplayState {
  readonly formatVersion: number;
  /** The host this state belongs to; a state file of another host counts as lost. */
  readonly hostId: string;
  /** Highest intent sequence accepted (0 before the first intent). */
  readonly hwm: number;
  /** Version of the trusted key set last applied; a trust file older than this is a rollback. */
  readonly keysetVersion: number;
  /**
   * Highest coordinator fencing token (leader epoch) seen on an accepted intent; intents below it are refused
   * (`FENCING_TOKEN_STALE`). Absent in files written before fencing existed, which reads as 0.
   */
  readonly fence?: number;
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
  /** Read the last saved state (with its journal applied). Never throws for bad content: that is `corrupt`. */
  load(): Promise<LoadedReplayState>;
  /** Replace the saved state atomically and durably: when this resolves, a crash cannot lose it. */
  save(state: ReplayState): Promise<void>;
}

/**
 * One change to the replay state since the last snapshot, as a journal line. Applying a journal twice gives the
 * same state (the high-water mark is a maximum, entries are keyed by intent id), so a crash between a snapshot
 * and the journal's truncation is harmless.
 */
export type JournalRecord =
  /** An intent reserved before execution: raises the hwm to `s`. */
  | { readonly t: "r"; readonly i: string; readonly d: string; readonly s: number; readonly e: number }
  /** The signed result of a reserved intent (base64). */
  | { readonly t: "c"; readonly i: string; readonly r: string }
  /** The hwm raised by a key set's floor. */
  | { readonly t: "h"; readonly s: number }
  /** The trusted key-set version recorded. */
  | { readonly t: "k"; readonly v: number }
  /** The fencing high-water mark raised (written with the reservation of the intent that raised it). */
  | { readonly t: "f"; readonly f: number };

/**
 * A state store that can also append journal lines durably (one synchronized write per group instead of a temp
 * file, two fsyncs and a rename), with full snapshots written from time to time.
 */
export interface JournaledStateStore extends StateStore {
  /** Append journal lines (each ending in a newline) and make them durable. */
  appendJournal(lines: string): Promise<void>;
  /** Write a full snapshot atomically (temp, fsync, rename, fsync dir), then empty the journal. */
  writeSnapshot(text: string): Promise<void>;
}

/** Whether `store` supports the journal. */
export function isJournaled(store: StateStore): store is JournaledStateStore {
  return typeof (store as Partial<JournaledStateStore>).appendJournal === "function";
}

/** The state file or its lock cannot be used (I/O error, or another agent instance holds the lock). */
export class StateStoreError extends LanekeeperError<AgentErrorCode> {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("STATE_STORE_FAILED", message, options);
  }
}

const ENTRY_KEYS = new Set(["intentId", "digest", "seq", "expiresAt", "resultEnvelope"]);
const STATE_KEYS = new Set(["formatVersion", "hostId", "hwm", "keysetVersion", "fence", "recent"]);
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
  if (v.fence !== undefined && !isCount(v.fence)) return "fence is not a non-negative integer";
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

const RECORD_KEYS: Readonly<Record<string, readonly string[]>> = { r: ["t", "i", "d", "s", "e"], c: ["t", "i", "r"], h: ["t", "s"], k: ["t", "v"], f: ["t", "f"] };

function validateRecord(v: unknown): JournalRecord | undefined {
  if (!isPlainObject(v) || typeof v.t !== "string") return undefined;
  const keys = RECORD_KEYS[v.t];
  if (keys === undefined || Object.keys(v).length !== keys.length || !Object.keys(v).every((k) => keys.includes(k))) return undefined;
  switch (v.t) {
    case "r":
      return typeof v.i === "string" && HEX_ID.test(v.i) && typeof v.d === "string" && HEX_DIGEST.test(v.d) && isCount(v.s) && isCount(v.e)
        ? (v as JournalRecord)
        : undefined;
    case "c":
      return typeof v.i === "string" && HEX_ID.test(v.i) && typeof v.r === "string" && BASE64.test(v.r) ? (v as JournalRecord) : undefined;
    case "h":
      return isCount(v.s) ? (v as JournalRecord) : undefined;
    case "k":
      return isCount(v.v) ? (v as JournalRecord) : undefined;
    case "f":
      return isCount(v.f) ? (v as JournalRecord) : undefined;
    default:
      return undefined;
  }
}

/**
 * Apply journal text to a snapshot. A last line without its newline is a write torn by a crash: it was never
 * acknowledged (the intent did not run), so it is dropped. Any other bad line makes the whole state corrupt.
 */
export function applyJournal(state: ReplayState, text: string): { state: ReplayState } | { corrupt: string } {
  let hwm = state.hwm;
  let keysetVersion = state.keysetVersion;
  let fence = state.fence ?? 0;
  const recent = new Map<string, ReplayStateEntry>(state.recent.map((e) => [e.intentId, e]));
  const lines = text.split("\n");
  const complete = lines.slice(0, -1);
  for (const [n, line] of complete.entries()) {
    let rec: JournalRecord | undefined;
    try {
      rec = validateRecord(strictParse(line));
    } catch {
      rec = undefined;
    }
    if (rec === undefined) return { corrupt: `journal line ${n + 1} is invalid` };
    switch (rec.t) {
      case "r":
        hwm = Math.max(hwm, rec.s);
        if (!recent.has(rec.i)) recent.set(rec.i, { intentId: rec.i, digest: rec.d, seq: rec.s, expiresAt: rec.e });
        break;
      case "c": {
        const e = recent.get(rec.i);
        if (e !== undefined) recent.set(rec.i, { ...e, resultEnvelope: rec.r });
        break;
      }
      case "h":
        hwm = Math.max(hwm, rec.s);
        break;
      case "k":
        keysetVersion = Math.max(keysetVersion, rec.v);
        break;
      case "f":
        fence = Math.max(fence, rec.f);
        break;
    }
  }
  return { state: { ...state, hwm, keysetVersion, ...(fence > 0 ? { fence } : {}), recent: [...recent.values()] } };
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

/** Options of {@link FileStateStore}. */
export interface FileStateStoreOptions {
  /**
   * The agent's single-instance lock, already held on the state directory (`lanekeeper-agent run` takes it once
   * for the daemon and the intake). Without it, {@link FileStateStore.lock} takes that lock itself.
   */
  readonly instanceLock?: InstanceLock;
}

/**
 * The replay state in a file of the agent's private state directory (mode 0700 directory, 0600 files).
 *
 * A snapshot writes a temporary file in the same directory, fsyncs it, renames it over the state file and fsyncs
 * the directory, so a crash leaves either the old or the new state, never a torn one. Between snapshots,
 * changes are appended to a journal (`replay-state.journal`, opened `O_DSYNC`, so each append returns only once
 * it is on stable storage: write and fdatasync in one system call); loading
 * applies the journal to the snapshot. The agent's single-instance lock keeps a second agent from sharing the
 * state (it would otherwise accept the same sequences).
 */
export class FileStateStore implements JournaledStateStore {
  /** Absolute path of the state file. */
  readonly path: string;
  /** Absolute path of the journal of changes since the state file was written. */
  readonly journalPath: string;
  private locked = false;
  private ownLock: InstanceLock | undefined;
  private journal: FileHandle | undefined;

  /**
   * @param dir - the agent's state directory (created 0700 if missing).
   * @param hostId - the agent's host id; a state file naming another host counts as corrupt.
   */
  constructor(
    readonly dir: string,
    private readonly hostId: string,
    private readonly options: FileStateStoreOptions = {},
  ) {
    this.path = join(dir, REPLAY_STATE_FILE);
    this.journalPath = join(dir, REPLAY_JOURNAL_FILE);
  }

  /**
   * Make sure the agent's single-instance lock is held on the directory: the {@link FileStateStoreOptions.instanceLock}
   * handed in (`lanekeeper-agent run` took it), or else the lock taken here. One held by a live process (this
   * one included, through another store) is refused with `AGENT_LOCKED`; one left by a dead process is taken over.
   */
  async lock(): Promise<void> {
    if (this.locked) return;
    const given = this.options.instanceLock;
    if (given !== undefined) {
      if (!given.covers(this.dir)) {
        throw new StateStoreError(`the instance lock handed in is ${given.held ? `held on ${given.stateDir}` : "released"}, not on ${this.dir}`);
      }
    } else {
      this.ownLock = await InstanceLock.acquire(this.dir);
    }
    this.locked = true;
  }

  /** Close the journal and release the lock if {@link lock} took it (a lock handed in stays with its owner). */
  async unlock(): Promise<void> {
    await this.closeJournal();
    if (!this.locked) return;
    this.locked = false;
    await this.ownLock?.release();
    this.ownLock = undefined;
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
    let journal: string;
    try {
      const st = await stat(this.journalPath);
      if (st.size > MAX_REPLAY_STATE_BYTES) return { kind: "corrupt", why: `journal larger than ${MAX_REPLAY_STATE_BYTES} bytes` };
      journal = await readFile(this.journalPath, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") return { kind: "corrupt", why: "cannot read the journal" };
      journal = "";
    }
    const applied = applyJournal(parsed as ReplayState, journal);
    if ("corrupt" in applied) return { kind: "corrupt", why: applied.corrupt };
    return { kind: "ok", state: applied.state };
  }

  async save(state: ReplayState): Promise<void> {
    await this.writeSnapshot(JSON.stringify(state));
  }

  async appendJournal(lines: string): Promise<void> {
    try {
      const journal = await this.openJournal();
      await journal.write(lines);
    } catch (err) {
      await this.closeJournal();
      throw new StateStoreError(`cannot append to the replay journal ${this.journalPath}`, { cause: err });
    }
  }

  async writeSnapshot(text: string): Promise<void> {
    await this.writeAtomic(text);
    // The snapshot holds everything the journal did; replaying a stale journal would be harmless (idempotent).
    try {
      const journal = await this.openJournal();
      await journal.truncate(0);
      await journal.datasync();
    } catch (err) {
      await this.closeJournal();
      throw new StateStoreError(`cannot reset the replay journal ${this.journalPath}`, { cause: err });
    }
  }

  /**
   * The journal's descriptor, opened once. O_DSYNC: every write returns only once its data is on stable storage,
   * like write + fdatasync in one system call (one trip through libuv's thread pool per group commit, not two).
   */
  private async openJournal(): Promise<FileHandle> {
    this.journal ??= await open(
      this.journalPath,
      fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_APPEND | fsConstants.O_NOFOLLOW | fsConstants.O_DSYNC,
      0o600,
    );
    return this.journal;
  }

  private async closeJournal(): Promise<void> {
    const j = this.journal;
    this.journal = undefined;
    await j?.close().catch(() => undefined);
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
    await this.closeJournal();
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
