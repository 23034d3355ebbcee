import { readFile, rename, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { canonicalJson, coordinatorAuditSubject, systemClock, type AuditInput, type AuditRecord, type Clock, type Logger } from "@lanekeeper/shared";
import type { JetStreamClient, JetStreamManager } from "nats";
import { ensureAuditStream, lastStreamRecord } from "./audit-stream.js";
import { MAX_AUDIT_CATCH_UP } from "./limits.js";
import { SharedAuditChain } from "./shared-chain-file.js";

/** What the apply engine and the CLI append: an audit entry without its source (the audit trail sets it). */
export type CoordinatorAuditEntry = Omit<AuditInput, "source">;

/** Where records go: anything with an `append`, so tests and dry runs can capture them. */
export interface AuditTrail {
  append(entry: CoordinatorAuditEntry): Promise<AuditRecord>;
}

/** Options of {@link CoordinatorAudit.open}. */
export interface CoordinatorAuditOptions {
  /** The local hash chain (policy `coordinator.auditFile`). */
  readonly path: string;
  /** JetStream, to copy every record to the `LK_AUDIT` stream. Without it only the local chain is written. */
  readonly js?: JetStreamClient;
  readonly jsm?: JetStreamManager;
  /** Replicas of the audit stream when this process creates it. @default 1 */
  readonly replicas?: number;
  /**
   * This coordinator's name. The stream subject is `lk.v1.audit.coordinator.<name>`, where the name is that of the
   * instance that first opened the chain file (kept in `<path>.stream`): every process sharing the file publishes
   * the one chain there. @default the host name, lower-cased, other characters replaced by `-`
   */
  readonly instance?: string;
  /** @default "coordinator" */
  readonly source?: string;
  readonly clock?: Clock;
  readonly log?: Logger;
}

/** A valid instance name from a host name (`[a-z0-9][a-z0-9-]{0,62}`). */
export function instanceName(name: string = hostname()): string {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+/, "")
    .slice(0, 63);
  return s === "" ? "coordinator" : s;
}

/**
 * The coordinator's audit trail: every record is appended to the local hash chain first (fsync; the source of
 * truth, verifiable offline with `lanekeeper audit verify`; several coordinator processes may share it, see
 * {@link SharedAuditChain}), then published to the JetStream stream `LK_AUDIT`
 * on `lk.v1.audit.coordinator.<instance>` with the record hash as message id (so a re-publish is deduplicated).
 * A failed publish never fails the operation: the next append, or the next open, republishes every local record
 * the stream is missing.
 */
export class CoordinatorAudit implements AuditTrail {
  private streamBehind = true;
  /** The stream holds another chain under this subject: never publish into it. */
  private diverged = false;
  /** The highest chain seq this process knows to be in the stream. */
  private published = 0;
  private readonly subject: string;
  private readonly source: string;

  private constructor(
    private readonly log: SharedAuditChain,
    private readonly opts: CoordinatorAuditOptions,
    chainName: string,
  ) {
    this.subject = coordinatorAuditSubject(chainName);
    this.source = opts.source ?? "coordinator";
  }

  /** Open the local chain (verified on open; a broken chain throws) and bring the stream up to date. */
  static async open(opts: CoordinatorAuditOptions): Promise<CoordinatorAudit> {
    const log = await SharedAuditChain.open(opts.path, { mode: 0o600, clock: opts.clock ?? systemClock });
    // The stream copy follows the chain, not the process: every process appending to this file publishes on the
    // subject of the instance that first opened it, so the stream holds the one history the file holds.
    const chainName = await log.withLock(() => chainStreamName(opts.path, instanceName(opts.instance)));
    const audit = new CoordinatorAudit(log, opts, chainName);
    if (opts.jsm !== undefined) {
      try {
        await ensureAuditStream(opts.jsm, opts.replicas === undefined ? {} : { replicas: opts.replicas });
        await audit.log.withLock(() => audit.catchUp());
      } catch (err) {
        opts.log?.warn({ err: err instanceof Error ? err.message : String(err) }, "audit stream unavailable; records stay local until it is back");
      }
    }
    return audit;
  }

  /** The local chain's path. */
  get path(): string {
    return this.log.path;
  }

  /** The stream subject this instance publishes on. */
  get streamSubject(): string {
    return this.subject;
  }

  async append(entry: CoordinatorAuditEntry): Promise<AuditRecord> {
    return this.log.append({ ...entry, source: this.source }, (record) => this.copyToStream(record));
  }

  /**
   * Runs under the chain's file lock, so records of every process sharing the file reach the stream in chain
   * order: the record itself when it follows what this process last published, else everything the stream lacks.
   * A failure leaves the stream behind (caught up by the next append or start); it never fails the append.
   */
  private async copyToStream(record: AuditRecord): Promise<void> {
    if (this.opts.js === undefined || this.diverged) return;
    try {
      if (!this.streamBehind && record.seq === this.published + 1) {
        await this.publish(record);
        this.published = record.seq;
      } else if (this.opts.jsm !== undefined) {
        await this.catchUp();
      }
    } catch (err) {
      this.streamBehind = true;
      this.opts.log?.warn({ seq: record.seq, err: err instanceof Error ? err.message : String(err) }, "audit record not yet in the stream");
    }
  }

  /** The last `n` local records. */
  tail(n: number): Promise<AuditRecord[]> {
    return this.log.tail(n);
  }

  /** Wait for pending appends and close the local file. */
  async close(): Promise<void> {
    await this.log.close();
  }

  private async publish(record: AuditRecord): Promise<void> {
    const js = this.opts.js;
    if (js === undefined) return;
    await js.publish(this.subject, new TextEncoder().encode(canonicalJson(record)), { msgID: record.hash, timeout: 5_000 });
  }

  /** Republish every local record above the stream's last one for this subject. */
  private async catchUp(): Promise<void> {
    const jsm = this.opts.jsm;
    if (jsm === undefined || this.opts.js === undefined) return;
    const last = await lastStreamRecord(jsm, this.subject);
    const text = await readFile(this.log.path, "utf8");
    const lines = text.split("\n").filter((l) => l !== "");
    const from = last?.seq ?? 0;
    if (last !== undefined) {
      const mine = lines[last.seq - 1];
      if (mine === undefined || (JSON.parse(mine) as AuditRecord).hash !== last.hash) {
        // The stream holds a different chain under this name (local file replaced or another instance with the
        // same name): never interleave two chains; an operator must look.
        this.opts.log?.error({ subject: this.subject, streamSeq: last.seq }, "local audit chain differs from the stream copy; not publishing");
        this.diverged = true;
        return;
      }
    }
    const batch = lines.slice(from, from + MAX_AUDIT_CATCH_UP);
    for (const line of batch) await this.publish(JSON.parse(line) as AuditRecord);
    this.published = from + batch.length;
    this.streamBehind = lines.length - from > MAX_AUDIT_CATCH_UP;
  }
}

/**
 * The name the chain at `path` is published under in the stream (`<path>.stream`, written once, under the chain's
 * lock, by the first process to open the chain; `instance` then). Processes with other instance names that append
 * to the same file publish under this name too: one chain, one subject. Before this file existed each instance
 * published on its own subject, and a record another instance had already published (same hash, deduplicated by
 * the stream) left a gap in the other's copy.
 */
async function chainStreamName(path: string, instance: string): Promise<string> {
  const file = `${path}.stream`;
  try {
    const name = (await readFile(file, "utf8")).trim();
    if (/^[a-z0-9][a-z0-9-]{0,62}$/.test(name)) return name;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${instance}\n`, { mode: 0o600 });
  await rename(tmp, file);
  return instance;
}

/** An {@link AuditTrail} that keeps records in memory (tests, and `--dry-run` previews before writing). */
export class MemoryAuditTrail implements AuditTrail {
  readonly records: AuditRecord[] = [];

  append(entry: CoordinatorAuditEntry): Promise<AuditRecord> {
    const prev = this.records.at(-1);
    const record: AuditRecord = {
      ...entry,
      source: "coordinator",
      seq: (prev?.seq ?? 0) + 1,
      at: Date.now(),
      prevHash: prev?.hash ?? "0".repeat(64),
      hash: String(this.records.length + 1).padStart(64, "0"),
    };
    this.records.push(record);
    return Promise.resolve(record);
  }
}
