/**
 * Audit-chain anchors: a chain's head (sequence, hash, and the hash of its first record) kept OUTSIDE the chain
 * file, so deleting the file, cutting records off its end or starting it again from genesis cannot pass as an
 * intact chain. A hash chain alone proves only that what is there was not edited; it cannot know what is no
 * longer there. The agent keeps its head in `<stateDir>/audit.anchor.json` and reports it in every signed
 * inventory, where the coordinator keeps the highest it has seen per host; the coordinator's own head is the
 * last record of its chain in the JetStream audit stream. {@link checkChainAgainstAnchor} compares a chain with
 * one and says what is missing in plain words.
 */
import { open, readFile, rename } from "node:fs/promises";
import { AUDIT_GENESIS_HASH, AuditLog, verifyAuditChain, type AuditChainResult, type AuditChainHead, type AuditLogOptions, type AuditRecord } from "./audit.js";
import { AuditError } from "./errors.js";
import { isSha256Hex } from "./hex.js";

/**
 * A chain head kept outside the chain: the last record's seq (0: empty) and hash (the genesis hash when empty),
 * and the first record's hash ("" when unknown, e.g. an anchor typed in by hand, or the chain is empty).
 */
export type AuditAnchor = AuditChainHead;

/** What {@link checkChainAgainstAnchor} found. */
export type AnchorStatus =
  /** The chain verifies and holds the anchored record (and possibly more). */
  | "intact"
  /** The chain verifies, but there is no anchor to compare with: records cut off the end would go unnoticed. */
  | "unanchored"
  /** The file does not exist. */
  | "missing"
  /** The chain ends before the anchored record: records were cut off the end (or the file emptied). */
  | "truncated"
  /** The chain is not the anchored one: restarted from genesis or replaced. */
  | "restarted"
  /** The chain itself does not verify (edited, reordered, torn). */
  | "broken";

/** Outcome of {@link checkChainAgainstAnchor}. */
export interface AnchorCheck {
  readonly ok: boolean;
  readonly status: AnchorStatus;
  /** The plain verification of the chain text. */
  readonly chain: AuditChainResult;
  /** The head of what is in the file (seq 0 when missing or empty; up to the first broken record). */
  readonly head: AuditAnchor;
  readonly anchor?: AuditAnchor;
  /** Records known to have existed and not found in the file, inclusive. */
  readonly missing?: { readonly fromSeq: number; readonly toSeq: number };
  /** One sentence in plain words. */
  readonly message: string;
}


/** Whether `a` is a well-formed anchor (for values read from files, the wire or a command line). */
export function isAuditAnchor(a: unknown): a is AuditAnchor {
  if (a === null || typeof a !== "object") return false;
  const o = a as Record<string, unknown>;
  return (
    Number.isSafeInteger(o.seq) &&
    (o.seq as number) >= 0 &&
    typeof o.hash === "string" &&
    isSha256Hex(o.hash) &&
    typeof o.firstHash === "string" &&
    (o.firstHash === "" || isSha256Hex(o.firstHash))
  );
}

function records(text: string): AuditRecord[] {
  const out: AuditRecord[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    try {
      out.push(JSON.parse(line) as AuditRecord);
    } catch {
      break;
    }
  }
  return out;
}

/** The head of a chain's text (only meaningful for a chain that verifies). */
export function auditChainHead(text: string): AuditAnchor {
  const r = records(text);
  const last = r.at(-1);
  return { seq: last?.seq ?? 0, hash: last?.hash ?? AUDIT_GENESIS_HASH, firstHash: r[0]?.hash ?? "" };
}

const range = (from: number, to: number): string => (from === to ? `record ${from} is` : `records ${from} to ${to} are`);

/**
 * Compare a chain with the anchor kept outside it. `text` undefined means the file does not exist. Without an
 * anchor a complete chain is only `unanchored` (ok, but the message says that a cut-off end could not be seen);
 * a missing file is never ok.
 */
export function checkChainAgainstAnchor(text: string | undefined, anchor: AuditAnchor | undefined, what = "the audit chain"): AnchorCheck {
  const chain = verifyAuditChain(text ?? "");
  const all = records(text ?? "");
  const head = chain.ok ? auditChainHead(text ?? "") : { seq: chain.count, hash: all[chain.count - 1]?.hash ?? AUDIT_GENESIS_HASH, firstHash: all[0]?.hash ?? "" };
  const base = { chain, head, ...(anchor === undefined ? {} : { anchor }) };
  const anchored = anchor !== undefined && anchor.seq > 0;
  if (text === undefined) {
    return anchored
      ? { ...base, ok: false, status: "missing", missing: { fromSeq: 1, toSeq: anchor.seq }, message: `${what} is MISSING: the file does not exist, but the anchor says it held ${anchor.seq} records; ${range(1, anchor.seq)} gone (deleted)` }
      : { ...base, ok: false, status: "missing", message: `${what} is MISSING: the file does not exist (deleted, or never written); there is no anchor to say how many records it held` };
  }
  if (!chain.ok) {
    const b = chain.firstBroken;
    return { ...base, ok: false, status: "broken", message: `${what}: chain broken at line ${b.line}${b.seq === null ? "" : ` (seq ${b.seq})`}: ${b.why}; ${chain.count} records verified before it` };
  }
  if (!anchored) {
    return { ...base, ok: true, status: "unanchored", message: `${what}: ${chain.count} records, chain intact as far as it goes (no anchor to compare with, so records cut off the end could not be detected)` };
  }
  if (anchor.firstHash !== "" && head.firstHash !== "" && head.firstHash !== anchor.firstHash) {
    return {
      ...base,
      ok: false,
      status: "restarted",
      missing: { fromSeq: 1, toSeq: anchor.seq },
      message: `${what} was RESTARTED from genesis or replaced: its first record is not the anchored chain's first record; the anchored chain's ${range(1, anchor.seq)} not in this file (it holds ${chain.count} records of another chain)`,
    };
  }
  if (chain.count < anchor.seq) {
    return {
      ...base,
      ok: false,
      status: "truncated",
      missing: { fromSeq: chain.count + 1, toSeq: anchor.seq },
      message:
        chain.count === 0
          ? `${what} is TRUNCATED: the file is empty, but the anchor says it held ${anchor.seq} records; ${range(1, anchor.seq)} missing`
          : `${what} is TRUNCATED: it ends at record ${chain.count}, but the anchor says record ${anchor.seq} existed; ${range(chain.count + 1, anchor.seq)} missing`,
    };
  }
  const atAnchor = all[anchor.seq - 1];
  if (atAnchor?.hash !== anchor.hash) {
    return {
      ...base,
      ok: false,
      status: "restarted",
      missing: { fromSeq: 1, toSeq: anchor.seq },
      message: `${what} was RESTARTED or replaced: its record ${anchor.seq} is not the anchored record ${anchor.seq} (hash ${anchor.hash.slice(0, 12)}…), so the anchored chain is not in this file`,
    };
  }
  return { ...base, ok: true, status: "intact", message: `${what}: ${chain.count} records, chain intact and it holds the anchored record ${anchor.seq}` };
}

/** Parse an anchor written as `<seq>:<hash>` (as `lanekeeper audit verify --host` prints it). */
export function parseAuditAnchor(text: string): AuditAnchor | undefined {
  const m = /^(\d{1,15}):([0-9a-f]{64})(?::([0-9a-f]{64}))?$/.exec(text.trim());
  if (m === null) return undefined;
  return { seq: Number(m[1]), hash: m[2]!, firstHash: m[3] ?? "" };
}

/** Format an anchor as `<seq>:<hash>:<firstHash>` (what {@link parseAuditAnchor} reads). */
export function formatAuditAnchor(a: AuditAnchor): string {
  return a.firstHash === "" ? `${a.seq}:${a.hash}` : `${a.seq}:${a.hash}:${a.firstHash}`;
}

/** The anchor file's content (`<stateDir>/audit.anchor.json` on an agent). */
interface AnchorFile {
  format: 1;
  seq: number;
  hash: string;
  firstHash: string;
}

/** Read an anchor file; undefined when there is none. A file that is not an anchor throws `AuditError`. */
export async function readAuditAnchorFile(path: string): Promise<AuditAnchor | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new AuditError(`cannot read the audit anchor ${path}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!isAuditAnchor(parsed) || (parsed as { format?: unknown }).format !== 1) {
    throw new AuditError(`audit anchor ${path} is not a valid anchor file; keep it as evidence and move it aside to start over`);
  }
  return { seq: parsed.seq, hash: parsed.hash, firstHash: parsed.firstHash };
}

/** Write an anchor file atomically (temp file, fsync, rename), mode 0600. */
export async function writeAuditAnchorFile(path: string, a: AuditAnchor): Promise<void> {
  const body: AnchorFile = { format: 1, seq: a.seq, hash: a.hash, firstHash: a.firstHash };
  const tmp = `${path}.tmp`;
  const h = await open(tmp, "w", 0o600);
  try {
    await h.writeFile(`${JSON.stringify(body)}\n`);
    await h.sync();
  } finally {
    await h.close();
  }
  await rename(tmp, path);
}

/**
 * Open an {@link AuditLog} whose head is kept in `anchorPath` too (rewritten after every append). When the
 * anchor exists, a chain file that is missing, cut short or restarted against it is refused (`AuditError`
 * saying which records are gone): appending to it would bury the evidence. When there is no anchor yet (first
 * start, or an operator moved it aside), one is written from the chain as found.
 */
export async function openAnchoredAuditLog(path: string, anchorPath: string, opts: Omit<AuditLogOptions, "afterAppend"> = {}): Promise<AuditLog> {
  const anchor = await readAuditAnchorFile(anchorPath);
  if (anchor !== undefined) {
    // Before AuditLog.open creates anything: a deleted file must be reported as deleted, not as a new chain.
    const text = await readFile(path, "utf8").catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return undefined;
      throw err;
    });
    const check = checkChainAgainstAnchor(text, anchor, `audit log ${path}`);
    if (!check.ok && check.status !== "broken") {
      throw new AuditError(`${check.message}. Keep the file and ${anchorPath} as evidence; to start a new chain, move both aside`, {
        details: { path, status: check.status, ...(check.missing ?? {}) },
      });
    }
  }
  const log = await AuditLog.open(path, { ...opts, afterAppend: (head) => writeAuditAnchorFile(anchorPath, head) });
  if (anchor === undefined || anchor.seq !== log.head.seq) {
    try {
      await writeAuditAnchorFile(anchorPath, log.head);
    } catch (err) {
      await log.close();
      throw new AuditError(`cannot write the audit anchor ${anchorPath}`, { cause: err });
    }
  }
  return log;
}

/** How a reported head relates to the anchor kept for it (see {@link compareAuditHeads}). */
export type HeadComparison =
  | { readonly kind: "same" | "ahead" }
  | { readonly kind: "behind" | "restarted" | "replaced"; readonly missing: { readonly fromSeq: number; readonly toSeq: number }; readonly message: string };

/**
 * Compare a head a chain reports now with the anchor kept for it. `same` or `ahead` is consistent (a later head
 * of the same chain, as far as the first record tells); `behind` means records were cut off the end (or the
 * chain emptied), `restarted` a new chain from genesis, `replaced` a different record at the anchored seq.
 */
export function compareAuditHeads(anchor: AuditAnchor, reported: AuditAnchor, what = "the audit chain"): HeadComparison {
  if (anchor.seq === 0) return { kind: reported.seq === 0 ? "same" : "ahead" };
  if (reported.seq > 0 && anchor.firstHash !== "" && reported.firstHash !== "" && reported.firstHash !== anchor.firstHash) {
    return {
      kind: "restarted",
      missing: { fromSeq: 1, toSeq: anchor.seq },
      message: `${what} was RESTARTED from genesis: it now starts with another first record (${reported.seq} records), so the anchored ${range(1, anchor.seq)} no longer in it`,
    };
  }
  if (reported.seq < anchor.seq) {
    return {
      kind: "behind",
      missing: { fromSeq: reported.seq + 1, toSeq: anchor.seq },
      message:
        reported.seq === 0
          ? `${what} is EMPTY or deleted, but record ${anchor.seq} was seen before: ${range(1, anchor.seq)} missing`
          : `${what} went BACK from record ${anchor.seq} to record ${reported.seq}: ${range(reported.seq + 1, anchor.seq)} missing (deleted or cut off the end)`,
    };
  }
  if (reported.seq === anchor.seq && reported.hash !== anchor.hash) {
    return {
      kind: "replaced",
      missing: { fromSeq: 1, toSeq: anchor.seq },
      message: `${what} was REPLACED: its record ${anchor.seq} is not the one seen before`,
    };
  }
  return { kind: reported.seq === anchor.seq ? "same" : "ahead" };
}
