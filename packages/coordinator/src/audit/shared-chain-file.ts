import { open, readFile, stat, unlink, type FileHandle } from "node:fs/promises";
import {
  appendAuditLine,
  AuditError,
  MAX_AUDIT_LINE_BYTES,
  nextAuditRecord,
  openAuditFile,
  readAuditTail,
  SerialQueue,
  systemClock,
  type AuditInput,
  type AuditRecord,
  type Clock,
} from "@lanekeeper/shared";
import { AUDIT_LOCK_STALE_MS, AUDIT_LOCK_TIMEOUT_MS } from "./limits.js";

/** Options of {@link SharedAuditChain.open}. */
export interface SharedAuditChainOptions {
  /** File mode when the chain is created. @default 0o600 */
  readonly mode?: number;
  readonly clock?: Clock;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * The coordinator's local audit chain, safe to append to from several processes at once (`serve` and operators'
 * `apply`/`lanes` commands on the same machine share `coordinator.auditFile`). The format is exactly shared
 * `AuditLog`'s (one canonical-JSON record per line, hash-chained, verified by `verifyAuditChain`); the
 * difference is that each append takes a lock file (`<path>.lock`, O_EXCL; a lock whose process is gone or that
 * is older than a minute is broken), reads the last record from the file itself, appends and fsyncs, so a chain
 * written by several processes still links record to record. Appends of one process are serialized in call
 * order. A chain that is broken when opened, or ends in a torn line, is refused.
 */
export class SharedAuditChain {
  private readonly queue = new SerialQueue();
  private closed = false;

  private constructor(
    /** The chain file. */
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly clock: Clock,
  ) {}

  /** Open (or create) the chain and verify it. */
  static async open(path: string, opts: SharedAuditChainOptions = {}): Promise<SharedAuditChain> {
    const { handle } = await openAuditFile(path, "a", opts.mode ?? 0o600);
    return new SharedAuditChain(path, handle, opts.clock ?? systemClock);
  }

  /**
   * Append one record; resolves once it is on disk. `whileLocked` runs after the write, still holding the lock
   * (the audit stream copy is published there, so the stream gets the chain in chain order across processes);
   * its errors are its own business: it must not throw.
   */
  append(entry: AuditInput, whileLocked?: (record: AuditRecord) => Promise<void>): Promise<AuditRecord> {
    return this.queue.run(() =>
      this.locked(async () => {
        const record = await this.write(entry);
        await whileLocked?.(record);
        return record;
      }),
    );
  }

  /** Run `fn` holding the chain's lock (no append of any process in between), after pending appends. */
  withLock<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(() => this.locked(fn));
  }

  /** The last `n` records (at most MAX_AUDIT_TAIL), after pending appends. */
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

  private async write(entry: AuditInput): Promise<AuditRecord> {
    if (this.closed) throw new AuditError(`audit log ${this.path} is closed`);
    const { record, line } = nextAuditRecord(entry, await this.lastRecord(), this.clock.now());
    await appendAuditLine(this.handle, line);
    return record;
  }

  /** The last record in the file (read from its end), or undefined for an empty chain. */
  private async lastRecord(): Promise<AuditRecord | undefined> {
    const size = (await stat(this.path)).size;
    if (size === 0) return undefined;
    const want = Math.min(size, MAX_AUDIT_LINE_BYTES + 1);
    const fh = await open(this.path, "r");
    let text: string;
    try {
      const buf = Buffer.alloc(want);
      await fh.read(buf, 0, want, size - want);
      text = buf.toString("utf8");
    } finally {
      await fh.close();
    }
    if (!text.endsWith("\n")) throw new AuditError(`audit log ${this.path} ends in a torn line; verify it with \`lanekeeper audit verify\``);
    const lines = text.slice(0, -1).split("\n");
    const lastLine = lines[lines.length - 1] ?? "";
    try {
      return JSON.parse(lastLine) as AuditRecord;
    } catch {
      throw new AuditError(`the last record of audit log ${this.path} is not valid JSON`);
    }
  }

  /** Run `fn` holding `<path>.lock`. */
  private async locked<T>(fn: () => Promise<T>): Promise<T> {
    const lock = `${this.path}.lock`;
    const until = this.clock.now() + AUDIT_LOCK_TIMEOUT_MS;
    let delay = 2;
    for (;;) {
      try {
        const fh = await open(lock, "wx", 0o600);
        try {
          await fh.writeFile(`${process.pid} ${Date.now()}\n`);
        } finally {
          await fh.close();
        }
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw new AuditError(`cannot lock audit log ${this.path}`, { cause: err });
      }
      await this.breakStaleLock(lock);
      if (this.clock.now() > until) throw new AuditError(`audit log ${this.path} stayed locked by another process (${lock})`);
      await sleep(delay);
      delay = Math.min(50, delay * 2);
    }
    try {
      return await fn();
    } finally {
      await unlink(lock).catch(() => undefined);
    }
  }

  private async breakStaleLock(lock: string): Promise<void> {
    try {
      const text = await readFile(lock, "utf8");
      const [pidText = "", atText = ""] = text.trim().split(" ");
      const pid = /^[0-9]+$/.test(pidText) ? Number(pidText) : 0;
      const at = /^[0-9]+$/.test(atText) ? Number(atText) : undefined;
      // A lock its owner has created but not written yet reads empty: that is a live lock, not a stale one (taking it
      // then let two processes append at once and broke the chain). Without readable contents only its age counts.
      const age = Date.now() - (at ?? (await stat(lock)).mtimeMs);
      const stale = (pid > 0 && !alive(pid)) || age > AUDIT_LOCK_STALE_MS;
      if (stale) await unlink(lock);
    } catch {
      // Released meanwhile, or half written by its owner: try again.
    }
  }
}
