/**
 * Tamper-evident audit chain: append-only JSON Lines, each record's `hash` = hex SHA-256 of
 * `prevHash + "\n" + canonicalJson(record without hash)`, the first record chaining from 64 zeros. Editing,
 * deleting, reordering or inserting any line breaks every later hash, and {@link verifyAuditChain} names the
 * first broken line.
 *
 * Secrets never belong in a record: callers pass none (no tokens, JIT configs, keys, stderr). As a second line
 * of defense, fields with secret names in `details` are replaced by `[redacted]`.
 *
 * One process writes a given file. Appends are serialized in-process by a `SerialQueue`; each is one `write` of
 * a full line on an `O_APPEND` descriptor followed by `fsync`.
 */
import { createHash } from "node:crypto";
import { open, readFile, type FileHandle } from "node:fs/promises";
import { canonicalJson } from "./canonical-json.js";
import { systemClock, type Clock } from "./clock.js";
import { AuditError } from "./errors.js";
import { isSha256Hex } from "./hex.js";
import { SerialQueue } from "./keyed-mutex.js";
import { MAX_AUDIT_LINE_BYTES, MAX_AUDIT_TAIL } from "./limits.js";
import { redactSecrets } from "./redact.js";

/** The hash the first record chains from. */
export const AUDIT_GENESIS_HASH = "0".repeat(64);

/** Where a mutation is in its life. */
export type AuditPhase = "planned" | "started" | "succeeded" | "failed" | "rejected" | "dry-run";
/** Every phase. */
export const AUDIT_PHASES: readonly AuditPhase[] = Object.freeze(["planned", "started", "succeeded", "failed", "rejected", "dry-run"]);

/** What a caller appends. */
export interface AuditInput {
  /** Who writes: `coordinator`, `agent:<hostId>`, ... */
  source: string;
  /** What: `create`, `drain`, `restart`, `key-rotate`, ... */
  action: string;
  phase: AuditPhase;
  operationId?: string;
  laneId?: string;
  hostId?: string;
  intentId?: string;
  /** Stable code (a `RejectReason` or error code) for rejected and failed records. */
  reasonCode?: string;
  /** Short human text; never raw stderr, never a secret. */
  message?: string;
  /** Structured, JSON-representable context (secret-named fields are redacted). */
  details?: Record<string, unknown>;
}

/** One record of the chain. */
export interface AuditRecord extends AuditInput {
  /** 1 for the first record, then +1. */
  seq: number;
  /** Milliseconds since the epoch. */
  at: number;
  prevHash: string;
  hash: string;
}

/** The hash of a record given everything but its `hash`. */
export function auditRecordHash(record: Omit<AuditRecord, "hash">): string {
  return createHash("sha256").update(`${record.prevHash}\n${canonicalJson(record)}`).digest("hex");
}

/** Outcome of {@link verifyAuditChain}. */
export type AuditChainResult =
  | { ok: true; count: number; lastHash: string }
  | {
      ok: false;
      /** Records that verified before the break. */
      count: number;
      firstBroken: {
        /** 1-based line number. */
        line: number;
        /** The record's `seq` when it could be read. */
        seq: number | null;
        why: string;
      };
    };


function recordProblem(r: unknown): string | undefined {
  if (r === null || typeof r !== "object" || Array.isArray(r)) return "not a JSON object";
  const o = r as Record<string, unknown>;
  if (!Number.isSafeInteger(o.seq)) return "seq is not an integer";
  if (typeof o.at !== "number" || !Number.isFinite(o.at)) return "at is not a number";
  if (typeof o.prevHash !== "string" || !isSha256Hex(o.prevHash)) return "prevHash is not a hex SHA-256";
  if (typeof o.hash !== "string" || !isSha256Hex(o.hash)) return "hash is not a hex SHA-256";
  if (typeof o.source !== "string" || typeof o.action !== "string") return "source or action missing";
  if (typeof o.phase !== "string" || !(AUDIT_PHASES as readonly string[]).includes(o.phase)) return "phase is unknown";
  return undefined;
}

/** Verify a whole audit file's text. Names the first broken record (line number, seq, why). */
export function verifyAuditChain(text: string): AuditChainResult {
  if (text === "") return { ok: true, count: 0, lastHash: AUDIT_GENESIS_HASH };
  const lines = text.split("\n");
  const complete = text.endsWith("\n");
  if (complete) lines.pop();
  let prevHash = AUDIT_GENESIS_HASH;
  let count = 0;
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i] ?? "";
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      const why = !complete && i === lines.length - 1 ? "incomplete last line (no newline): a torn write" : "not valid JSON";
      return { ok: false, count, firstBroken: { line: lineNo, seq: null, why } };
    }
    const problem = recordProblem(parsed);
    const seq = parsed !== null && typeof parsed === "object" && Number.isSafeInteger((parsed as { seq?: unknown }).seq) ? (parsed as { seq: number }).seq : null;
    if (problem) return { ok: false, count, firstBroken: { line: lineNo, seq, why: problem } };
    const record = parsed as AuditRecord;
    if (record.seq !== count + 1) {
      return { ok: false, count, firstBroken: { line: lineNo, seq, why: `seq ${record.seq} where ${count + 1} was expected (record missing, inserted or reordered)` } };
    }
    if (record.prevHash !== prevHash) {
      return { ok: false, count, firstBroken: { line: lineNo, seq, why: "prevHash does not match the previous record's hash" } };
    }
    const { hash, ...rest } = record;
    if (auditRecordHash(rest) !== hash) {
      return { ok: false, count, firstBroken: { line: lineNo, seq, why: "hash does not match the record's content (edited)" } };
    }
    if (!complete && i === lines.length - 1) {
      return { ok: false, count, firstBroken: { line: lineNo, seq, why: "incomplete last line (no newline): a torn write" } };
    }
    prevHash = hash;
    count++;
  }
  return { ok: true, count, lastHash: prevHash };
}

/**
 * Open (or create) a chain file and verify what is in it. A broken chain throws `AuditError` naming the first
 * broken record: appending after it would hide tampering. Returns the open handle and the verification.
 */
export async function openAuditFile(
  path: string,
  flags: "a" | "a+",
  mode: number,
): Promise<{ handle: FileHandle; chain: Extract<AuditChainResult, { ok: true }> }> {
  const handle = await open(path, flags, mode);
  try {
    const chain = verifyAuditChain(await readFile(path, "utf8"));
    if (!chain.ok) {
      const b = chain.firstBroken;
      throw new AuditError(
        `audit log ${path} is broken at line ${b.line}${b.seq === null ? "" : ` (seq ${b.seq})`}: ${b.why}; move it aside to start a new chain and keep it as evidence`,
        { details: { path, ...b } },
      );
    }
    return { handle, chain };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** The record chained after `prev` (seq and hash; none for the first), and its line, size-checked. */
export function nextAuditRecord(entry: AuditInput, prev: { seq: number; hash: string } | undefined, at: number): { record: AuditRecord; line: Buffer } {
  const base: Omit<AuditRecord, "hash"> = {
    ...redactSecrets<AuditInput>(entry),
    seq: (prev?.seq ?? 0) + 1,
    at,
    prevHash: prev?.hash ?? AUDIT_GENESIS_HASH,
  };
  const record: AuditRecord = { ...base, hash: auditRecordHash(base) };
  const line = Buffer.from(`${canonicalJson(record)}\n`, "utf8");
  if (line.length > MAX_AUDIT_LINE_BYTES) {
    throw new AuditError(`audit record of ${line.length} bytes exceeds ${MAX_AUDIT_LINE_BYTES}; shorten message or details`);
  }
  return { record, line };
}

/** Write a whole line to an append-mode handle and fsync it. */
export async function appendAuditLine(handle: FileHandle, line: Buffer): Promise<void> {
  let off = 0;
  while (off < line.length) {
    const { bytesWritten } = await handle.write(line, off, line.length - off);
    off += bytesWritten;
  }
  await handle.sync();
}

/** The last `n` records of a chain file (at most {@link MAX_AUDIT_TAIL}). */
export async function readAuditTail(path: string, n: number): Promise<AuditRecord[]> {
  const count = Math.max(0, Math.min(n, MAX_AUDIT_TAIL));
  if (count === 0) return [];
  const lines = (await readFile(path, "utf8")).split("\n").filter((l) => l !== "");
  return lines.slice(-count).map((l) => JSON.parse(l) as AuditRecord);
}

/** Options of {@link AuditLog.open}. */
export interface AuditLogOptions {
  /** @default systemClock */
  clock?: Clock;
  /** File mode when the log is created. @default 0o640 */
  mode?: number;
  /**
   * Runs after each record is on disk, before `append` resolves (the agent writes its chain-head anchor here,
   * see `audit-anchor.ts`). An error fails that `append` (the record itself is written).
   */
  afterAppend?: (head: AuditChainHead) => Promise<void>;
}

/** A chain's head: its last record's seq and hash, and its first record's hash ("" while empty). */
export interface AuditChainHead {
  readonly seq: number;
  readonly hash: string;
  readonly firstHash: string;
}

/** An append-only audit chain in a file the caller names. */
export class AuditLog {
  private readonly queue = new SerialQueue();
  private broken: Error | undefined;
  private closed = false;

  private constructor(
    /** The file this log appends to. */
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly clock: Clock,
    private lastSeq: number,
    private lastHash: string,
    private firstHash: string,
    private readonly afterAppend: ((head: AuditChainHead) => Promise<void>) | undefined,
  ) {}

  /**
   * Open (or create) the log at `path` and verify the existing chain. A broken chain throws `AuditError` naming
   * the first broken record: appending after it would hide tampering. Move the file aside to start a new chain.
   */
  static async open(path: string, opts: AuditLogOptions = {}): Promise<AuditLog> {
    const { handle, chain } = await openAuditFile(path, "a+", opts.mode ?? 0o640);
    const first = chain.count === 0 ? "" : (JSON.parse((await readFile(path, "utf8")).split("\n", 1)[0] ?? "{}") as { hash?: string }).hash ?? "";
    return new AuditLog(path, handle, opts.clock ?? systemClock, chain.count, chain.lastHash, first, opts.afterAppend);
  }

  /** Sequence number of the last record (0 when empty). */
  get seq(): number {
    return this.lastSeq;
  }

  /** The chain's head: what the anchor file holds and the signed inventory reports. */
  get head(): AuditChainHead {
    return { seq: this.lastSeq, hash: this.lastHash, firstHash: this.firstHash };
  }

  /** Append one record; resolves once it is on disk (fsync). Calls are serialized in call order. */
  append(entry: AuditInput): Promise<AuditRecord> {
    return this.queue.run(() => this.write(entry));
  }

  private async write(entry: AuditInput): Promise<AuditRecord> {
    if (this.closed) throw new AuditError(`audit log ${this.path} is closed`);
    if (this.broken) throw new AuditError(`audit log ${this.path} failed earlier; reopen it`, { cause: this.broken });
    const { record, line } = nextAuditRecord(entry, { seq: this.lastSeq, hash: this.lastHash }, this.clock.now());
    try {
      await appendAuditLine(this.handle, line);
    } catch (err) {
      // A partial line may be on disk; refuse further appends rather than extend a torn chain.
      this.broken = err as Error;
      throw new AuditError(`cannot append to audit log ${this.path}`, { cause: err });
    }
    this.lastSeq = record.seq;
    this.lastHash = record.hash;
    if (record.seq === 1) this.firstHash = record.hash;
    if (this.afterAppend !== undefined) {
      try {
        await this.afterAppend(this.head);
      } catch (err) {
        throw new AuditError(`audit record ${record.seq} is written, but what follows an append failed`, { cause: err });
      }
    }
    return record;
  }

  /** The last `n` records (at most {@link MAX_AUDIT_TAIL}), after pending appends. */
  async tail(n: number): Promise<AuditRecord[]> {
    await this.queue.idle();
    return readAuditTail(this.path, n);
  }

  /** Wait for pending appends and close the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.queue.idle();
    this.closed = true;
    await this.handle.close();
  }
}
