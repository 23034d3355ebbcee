import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { verifyAuditChain, type AuditChainResult, type AuditRecord } from "@lanekeeper/shared";
import { readAuditStream, verifyStreamChains, type StreamVerification } from "../audit/audit-stream.js";
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
}

async function chainPath(opts: AuditCommandOptions, io: CliIo): Promise<string> {
  if (opts.file !== undefined) return resolve(io.cwd, opts.file);
  return (await readPolicyFile(policyPath(opts.policy, io.env, io.cwd))).policy.coordinator.auditFile;
}

async function readChain(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? "unreadable";
    if (why === "ENOENT") return "";
    throw new CliError("POLICY_UNREADABLE", `cannot read the audit chain ${path}: ${why}`);
  }
}

/**
 * `lanekeeper audit verify`: check the local hash chain (every record's hash, every link, the sequence) and name
 * the first broken line; with `--stream`, also every chain in the LK_AUDIT stream and that the stream holds as
 * many of this coordinator's records as the file.
 */
export async function runAuditVerify(opts: AuditCommandOptions, io: CliIo, deps: CoordinatorCliDeps = {}): Promise<ExitCode> {
  const path = await chainPath(opts, io);
  const local: AuditChainResult = verifyAuditChain(await readChain(path));
  let stream: (StreamVerification & { readonly mine: number | null; readonly subject: string }) | undefined;
  if (opts.stream === true) {
    stream = await withCoordinator(opts, io, deps, async (ctx) => {
      const v = await verifyStreamChains(ctx.jsm);
      const mine = v.subjects.find((s) => s.subject === ctx.audit.streamSubject);
      return { ...v, subject: ctx.audit.streamSubject, mine: mine?.result.count ?? null };
    });
  }
  const streamOk = stream === undefined || (stream.ok && (!local.ok || stream.mine === null || stream.mine === local.count));
  const ok = local.ok && streamOk;
  if (opts.json === true) {
    io.out(`${JSON.stringify({ ...local, ok, file: path, ...(stream === undefined ? {} : { stream }) }, null, 2)}\n`);
  } else {
    if (local.ok) io.out(`audit chain ${path}: ${local.count} records, intact\n`);
    else {
      const b = local.firstBroken;
      io.out(`audit chain ${path}: BROKEN at line ${b.line}${b.seq === null ? "" : ` (seq ${b.seq})`}: ${b.why}; ${local.count} records verified before it\n`);
    }
    if (stream !== undefined) {
      for (const s of stream.subjects) {
        io.out(
          s.result.ok
            ? `stream ${s.subject}: ${s.result.count} records, intact\n`
            : `stream ${s.subject}: BROKEN at record ${s.result.firstBroken.line}: ${s.result.firstBroken.why}\n`,
        );
      }
      if (local.ok && stream.mine !== null && stream.mine !== local.count) {
        io.out(`stream ${stream.subject} holds ${stream.mine} of this coordinator's ${local.count} records (the next append republishes the rest)\n`);
      }
    }
  }
  return ok ? ExitCode.OK : exitCodeForCode("AUDIT_BROKEN");
}

/** `lanekeeper audit tail [-n N]`: the last records of the local chain, or of the LK_AUDIT stream (every source). */
export async function runAuditTail(opts: AuditCommandOptions, io: CliIo, deps: CoordinatorCliDeps = {}): Promise<ExitCode> {
  const n = Math.max(1, opts.lines ?? 20);
  let records: (AuditRecord & { subject?: string })[];
  if (opts.stream === true) {
    records = await withCoordinator(opts, io, deps, async (ctx) =>
      (await readAuditStream(ctx.jsm, { limit: n, newest: true })).map((r) => ({ ...r.record, subject: r.subject })),
    );
  } else {
    const text = await readChain(await chainPath(opts, io));
    records = text
      .split("\n")
      .filter((l) => l !== "")
      .slice(-n)
      .map((l) => JSON.parse(l) as AuditRecord);
  }
  if (opts.json === true) {
    io.out(`${JSON.stringify(records, null, 2)}\n`);
    return ExitCode.OK;
  }
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
