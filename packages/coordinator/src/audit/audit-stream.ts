import { auditRecordHash, LanekeeperError, verifyAuditChain, type AuditChainResult, type AuditRecord } from "@lanekeeper/shared";
import type { JetStreamManager } from "nats";
import { AUDIT_STREAM, AUDIT_STREAM_SUBJECTS, MAX_AUDIT_STREAM_READ } from "./limits.js";
import type { CoordinatorErrorCode } from "../error-codes.js";

/** The audit stream could not be created, read or written. */
export class AuditStreamError extends LanekeeperError<CoordinatorErrorCode> {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("AUDIT_STREAM_UNAVAILABLE", message, options);
  }
}

/** Whether an error is JetStream's "no message found" / "stream not found" answer. */
function isNotFound(err: unknown): boolean {
  const e = err as { api_error?: { err_code?: number; code?: number }; code?: string; message?: string };
  return e.api_error?.code === 404 || e.code === "404" || /no message found|not found/i.test(e.message ?? "");
}

/**
 * Create the `LK_AUDIT` stream (subjects `lk.v1.audit.>`) unless it exists. Audit records are append-only:
 * the stream denies deletes and purges, so a compromised coordinator cannot quietly drop a record from the
 * copy other machines read.
 */
export async function ensureAuditStream(jsm: JetStreamManager, opts: { replicas?: number } = {}): Promise<void> {
  try {
    await jsm.streams.info(AUDIT_STREAM);
    return;
  } catch (err) {
    if (!isNotFound(err)) throw new AuditStreamError(`cannot read stream ${AUDIT_STREAM}`, { cause: err });
  }
  try {
    await jsm.streams.add({
      name: AUDIT_STREAM,
      subjects: [...AUDIT_STREAM_SUBJECTS],
      num_replicas: opts.replicas ?? 1,
      deny_delete: true,
      deny_purge: true,
      duplicate_window: 120 * 1_000_000_000,
    });
  } catch (err) {
    // Another coordinator may have created it in between.
    try {
      await jsm.streams.info(AUDIT_STREAM);
    } catch {
      throw new AuditStreamError(`cannot create stream ${AUDIT_STREAM}`, { cause: err });
    }
  }
}

/** The last audit record on `subject`, or undefined when the stream has none there. */
export async function lastStreamRecord(jsm: JetStreamManager, subject: string): Promise<AuditRecord | undefined> {
  try {
    const m = await jsm.streams.getMessage(AUDIT_STREAM, { last_by_subj: subject });
    return JSON.parse(new TextDecoder().decode(m.data)) as AuditRecord;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw new AuditStreamError(`cannot read ${subject} from ${AUDIT_STREAM}`, { cause: err });
  }
}

/** One record read back from the stream, with its subject. */
export interface StreamAuditRecord {
  readonly subject: string;
  readonly streamSeq: number;
  readonly record: AuditRecord;
  /** The exact line as published (what the hash chain covers). */
  readonly line: string;
}

/**
 * Read audit records from the stream, oldest first, optionally only one subject; at most `limit` (the newest
 * ones when `newest` is set).
 */
export async function readAuditStream(
  jsm: JetStreamManager,
  opts: { subject?: string; limit?: number; newest?: boolean } = {},
): Promise<StreamAuditRecord[]> {
  let info;
  try {
    info = await jsm.streams.info(AUDIT_STREAM);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw new AuditStreamError(`cannot read stream ${AUDIT_STREAM}`, { cause: err });
  }
  const limit = Math.min(opts.limit ?? MAX_AUDIT_STREAM_READ, MAX_AUDIT_STREAM_READ);
  const first = info.state.first_seq;
  const last = info.state.last_seq;
  const out: StreamAuditRecord[] = [];
  const dec = new TextDecoder();
  const collect = async (seq: number): Promise<void> => {
    let m;
    try {
      m = await jsm.streams.getMessage(AUDIT_STREAM, { seq });
    } catch (err) {
      if (isNotFound(err)) return;
      throw new AuditStreamError(`cannot read message ${seq} of ${AUDIT_STREAM}`, { cause: err });
    }
    if (opts.subject !== undefined && m.subject !== opts.subject) return;
    const line = dec.decode(m.data);
    out.push({ subject: m.subject, streamSeq: m.seq, record: JSON.parse(line) as AuditRecord, line });
  };
  if (opts.newest === true) {
    for (let s = last; s >= first && s > 0 && out.length < limit; s--) await collect(s);
    out.reverse();
  } else {
    for (let s = first; s <= last && s > 0 && out.length < limit; s++) await collect(s);
  }
  return out;
}

/** Result of {@link verifyStreamChains}: one chain per subject. */
export interface StreamVerification {
  readonly subjects: readonly { readonly subject: string; readonly result: AuditChainResult }[];
  readonly ok: boolean;
}

/**
 * Verify every hash chain in the stream, one per subject (each coordinator instance and agent writes its own
 * chain). A stream copy that starts after the chain's first record (records lost before the stream existed)
 * is checked from its first record on.
 */
export async function verifyStreamChains(jsm: JetStreamManager): Promise<StreamVerification> {
  const all = await readAuditStream(jsm);
  const bySubject = new Map<string, string[]>();
  for (const r of all) {
    const list = bySubject.get(r.subject) ?? [];
    list.push(r.line);
    bySubject.set(r.subject, list);
  }
  const subjects = [...bySubject.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([subject, lines]) => ({ subject, result: verifyFrom(lines) }));
  return { subjects, ok: subjects.every((s) => s.result.ok) };
}

/** verifyAuditChain over lines whose first record may not be the genesis record (a stream created late). */
function verifyFrom(lines: readonly string[]): AuditChainResult {
  const first = lines[0];
  if (first === undefined) return verifyAuditChain("");
  if ((JSON.parse(first) as AuditRecord).seq === 1) return verifyAuditChain(`${lines.join("\n")}\n`);
  let prev: AuditRecord | undefined;
  let count = 0;
  for (const [i, line] of lines.entries()) {
    const rec = JSON.parse(line) as AuditRecord;
    const { hash, ...rest } = rec;
    if (auditRecordHash(rest) !== hash) {
      return { ok: false, count, firstBroken: { line: i + 1, seq: rec.seq, why: "hash does not match the record's content (edited)" } };
    }
    if (prev !== undefined && (rec.prevHash !== prev.hash || rec.seq !== prev.seq + 1)) {
      return { ok: false, count, firstBroken: { line: i + 1, seq: rec.seq, why: "does not link to the record before it (missing, inserted or reordered)" } };
    }
    prev = rec;
    count++;
  }
  return { ok: true, count, lastHash: prev?.hash ?? "" };
}
