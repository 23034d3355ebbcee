import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import {
  checkChainAgainstAnchor,
  compareAuditHeads,
  formatAuditAnchor,
  verifyAuditChain,
  type AuditAnchor,
  type AuditChainResult,
  type AuditRecord,
} from "@lanekeeper/shared";
import { InvalidArgumentError } from "commander";
import { readAuditStream, verifyStreamChains, type StreamVerification } from "../audit/audit-stream.js";
import { MAX_AUDIT_STREAM_READ } from "../audit/limits.js";
import type { CliIo } from "./cli-io.js";
import { CliError } from "./cli-errors.js";
import { withCoordinator, type CoordinatorCliDeps } from "./coordinator-session.js";
import { ExitCode, exitCodeForCode } from "./exit-codes.js";
import { policyPath, readPolicyFile } from "./policy-file.js";
import { renderTable } from "./render-table.js";

/** Options of `lanekeeper audit verify` and `audit tail`. */
export interface AuditCommandOptions {
  readonly policy?: string;
  readonly json?: boolean;
  /** The chain to read instead of the policy's `coordinator.auditFile`. */
  readonly file?: string;
  /** Also (verify) or instead (tail) read the copy in the LK_AUDIT stream. */
  readonly stream?: boolean;
  /** tail: how many records. */
  readonly lines?: number;
  /** verify: check this agent's chain against the anchor the coordinator keeps for it. */
  readonly host?: string;
}

async function chainPath(opts: AuditCommandOptions, io: CliIo): Promise<string> {
  if (opts.file !== undefined) return resolve(io.cwd, opts.file);
  return (await readPolicyFile(policyPath(opts.policy, io.env, io.cwd))).policy.coordinator.auditFile;
}

/** The chain's text, or undefined when the file does not exist. */
async function readChainIfAny(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? "unreadable";
    if (why === "ENOENT") return undefined;
    throw new CliError("POLICY_UNREADABLE", `cannot read the audit chain ${path}: ${why}`);
  }
}

async function readChain(path: string): Promise<string> {
  return (await readChainIfAny(path)) ?? "";
}

/** The head of this coordinator's chain as the LK_AUDIT stream holds it: the anchor kept outside the file. */
function streamAnchor(records: readonly AuditRecord[]): AuditAnchor | undefined {
  const last = records.at(-1);
  if (last === undefined) return undefined;
  const first = records[0]?.seq === 1 ? records[0].hash : "";
  return { seq: last.seq, hash: last.hash, firstHash: first };
}

/**
 * `lanekeeper audit verify`: check the local hash chain (every record's hash, every link, the sequence) and name
 * the first broken line; a missing file is reported, never "intact". With `--stream`, also every chain in the
 * LK_AUDIT stream, and the local chain against this coordinator's head there (its anchor): a deleted file,
 * records cut off the end and a chain restarted from genesis are each reported with the records missing. With
 * `--host <id>`, an agent's chain against the anchor kept for it (see {@link runHostAuditVerify}).
 */
export async function runAuditVerify(opts: AuditCommandOptions, io: CliIo, deps: CoordinatorCliDeps = {}): Promise<ExitCode> {
  if (opts.host !== undefined) return runHostAuditVerify(opts, opts.host, io, deps);
  const path = await chainPath(opts, io);
  const text = await readChainIfAny(path);
  const local: AuditChainResult = verifyAuditChain(text ?? "");
  let stream: (StreamVerification & { readonly mine: number | null; readonly subject: string; readonly anchor: AuditAnchor | undefined }) | undefined;
  if (opts.stream === true) {
    stream = await withCoordinator(opts, io, deps, async (ctx) => {
      const v = await verifyStreamChains(ctx.jsm);
      const subject = ctx.audit.streamSubject;
      const mine = v.subjects.find((s) => s.subject === subject);
      const anchor = streamAnchor((await readAuditStream(ctx.jsm, { subject })).map((r) => r.record));
      return { ...v, subject, mine: mine?.result.count ?? null, anchor };
    });
  }
  const label = `audit chain ${path}`;
  const check = checkChainAgainstAnchor(text, stream?.anchor, label);
  // The stream may lag the file (a failed publish is caught up later): more local records than the anchor is fine.
  const ok = check.ok && (stream === undefined || stream.ok);
  if (opts.json === true) {
    io.out(`${JSON.stringify({ ...local, ok, status: check.status, ...(check.missing === undefined ? {} : { missing: check.missing }), message: check.message, file: path, ...(stream === undefined ? {} : { stream }) }, null, 2)}\n`);
  } else {
    let first: string;
    if (!local.ok) {
      const b = local.firstBroken;
      first = `${label}: BROKEN at line ${b.line}${b.seq === null ? "" : ` (seq ${b.seq})`}: ${b.why}; ${local.count} records verified before it`;
    } else if (check.status === "unanchored") {
      first =
        stream === undefined
          ? `${label}: ${local.count} records, intact (run with --stream to compare with the JetStream copy: a cut-off end is only visible there)`
          : `${label}: ${local.count} records, intact; the stream holds none of this coordinator's records yet`;
    } else {
      first = stream === undefined ? check.message : `${check.message} (anchor: the stream's copy, ${stream.subject})`;
    }
    io.out(`${first}\n`);
    if (stream !== undefined) {
      for (const s of stream.subjects) {
        io.out(
          s.result.ok
            ? `stream ${s.subject}: ${s.result.count} records, intact\n`
            : `stream ${s.subject}: BROKEN at record ${s.result.firstBroken.line}: ${s.result.firstBroken.why}\n`,
        );
      }
      if (check.ok && stream.mine !== null && stream.mine < local.count) {
        io.out(`stream ${stream.subject} holds ${stream.mine} of the ${local.count} records in ${path}; the rest are published with the next append\n`);
      }
    }
  }
  return ok ? ExitCode.OK : exitCodeForCode("AUDIT_BROKEN");
}

/**
 * `lanekeeper audit verify --host <id> [--file <copy of its audit.log>]`: the anchor the coordinator keeps for the
 * host (the highest audit head its signed inventories reported), whether a later report contradicted it, and
 * whether the host's latest inventory still holds it; with `--file`, that copy checked against the anchor. The
 * anchor is printed as `<seq>:<hash>:<firstHash>` for `lanekeeper-agent audit verify --anchor` on the host.
 */
async function runHostAuditVerify(opts: AuditCommandOptions, hostId: string, io: CliIo, deps: CoordinatorCliDeps): Promise<ExitCode> {
  const file = opts.file === undefined ? undefined : resolve(io.cwd, opts.file);
  const found = await withCoordinator(opts, io, deps, async (ctx) => {
    const anchor = await ctx.collector.anchors.get(hostId);
    const latest = await ctx.collector.latest(hostId);
    return { anchor, latestHead: latest?.snapshot.auditHead, latestAtMs: latest?.snapshot.takenAtMs };
  });
  const lines: string[] = [];
  let ok = true;
  let status = "intact";
  let missing: { fromSeq: number; toSeq: number } | undefined;
  const what = `host ${hostId}: audit chain`;
  if (found.anchor === undefined) {
    ok = false;
    status = "unanchored";
    lines.push(`${what}: NO ANCHOR: no signed inventory of this host has reported its audit head yet; nothing to compare with`);
  } else {
    const a = found.anchor;
    lines.push(`${what}: anchor ${formatAuditAnchor(a.anchor)} (record ${a.anchor.seq}, reported ${new Date(a.anchoredAtMs).toISOString()})`);
    if (a.conflict !== undefined) {
      ok = false;
      status = a.conflict.comparison.kind;
      missing = a.conflict.comparison.missing;
      lines.push(`${a.conflict.comparison.message} (reported ${new Date(a.conflict.takenAtMs).toISOString()})`);
    }
    if (found.latestHead !== undefined) {
      const c = compareAuditHeads(a.anchor, found.latestHead, `${what} now`);
      if ("missing" in c) {
        ok = false;
        status = c.kind;
        missing ??= c.missing;
        lines.push(c.message);
      } else if (a.conflict === undefined) {
        lines.push(`${what}: the latest inventory reports record ${found.latestHead.seq}, consistent with the anchor`);
      }
    }
    if (file !== undefined) {
      const check = checkChainAgainstAnchor(await readChainIfAny(file), a.anchor, `copy ${file}`);
      if (!check.ok) {
        ok = false;
        status = check.status;
        missing = check.missing ?? missing;
      }
      lines.push(check.message);
    }
    lines.push(`on the host: lanekeeper-agent audit verify --anchor ${formatAuditAnchor(a.anchor)}`);
  }
  if (opts.json === true) {
    io.out(`${JSON.stringify({ ok, hostId, status, ...(missing === undefined ? {} : { missing }), anchor: found.anchor ?? null, latestHead: found.latestHead ?? null, messages: lines }, null, 2)}\n`);
  } else {
    io.out(`${lines.join("\n")}\n`);
  }
  return ok ? ExitCode.OK : exitCodeForCode("AUDIT_BROKEN");
}

/** Default of `audit tail -n`. */
export const AUDIT_TAIL_DEFAULT = 20;

/**
 * The value of `audit tail -n`: a whole number from 0 (print nothing) to the most records read back at once.
 * Throws commander's `InvalidArgumentError`, so a bad value is a usage error (exit 2) naming the option.
 */
export function parseAuditTailCount(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) > MAX_AUDIT_STREAM_READ) throw new InvalidArgumentError(`must be a whole number from 0 to ${MAX_AUDIT_STREAM_READ}`);
  return Number(v);
}

/**
 * `lanekeeper audit tail [-n N]`: the last records of the local chain, or of the LK_AUDIT stream (every source).
 * `-n 0` prints nothing (`[]` with `--json`), as `tail -n 0` does.
 */
export async function runAuditTail(opts: AuditCommandOptions, io: CliIo, deps: CoordinatorCliDeps = {}): Promise<ExitCode> {
  const n = opts.lines ?? AUDIT_TAIL_DEFAULT;
  let records: (AuditRecord & { subject?: string })[];
  if (opts.stream === true) {
    records = await withCoordinator(opts, io, deps, async (ctx) =>
      n === 0 ? [] : (await readAuditStream(ctx.jsm, { limit: n, newest: true })).map((r) => ({ ...r.record, subject: r.subject })),
    );
  } else {
    const lines = (await readChain(await chainPath(opts, io))).split("\n").filter((l) => l !== "");
    // slice(-0) would be every line.
    records = (n === 0 ? [] : lines.slice(-n)).map((l) => JSON.parse(l) as AuditRecord);
  }
  if (opts.json === true) {
    io.out(`${JSON.stringify(records, null, 2)}\n`);
    return ExitCode.OK;
  }
  if (n === 0) return ExitCode.OK;
  io.out(
    renderTable(
      ["SEQ", "TIME", "SOURCE", "ACTION", "PHASE", "LANE", "HOST", "CODE", "MESSAGE"],
      records.map((r) => [
        String(r.seq),
        new Date(r.at).toISOString(),
        r.source,
        r.action,
        r.phase,
        r.laneId ?? "",
        r.hostId ?? "",
        r.reasonCode ?? "",
        (r.message ?? "").slice(0, 120),
      ]),
    ),
  );
  return ExitCode.OK;
}
