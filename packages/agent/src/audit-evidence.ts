/**
 * Where the agent keeps its audit evidence, and `lanekeeper-agent audit verify`'s check of it. The chain is
 * `<stateDir>/audit.log`; its head is kept apart in `<stateDir>/audit.anchor.json` (rewritten after every
 * append) and reported in every signed inventory, where the coordinator keeps the highest head it has seen
 * (`lanekeeper audit verify --host <id>` prints it as `<seq>:<hash>:<firstHash>`). Verifying against the local
 * anchor catches a deleted file, a cut-off end or a restarted chain when only the log was touched; verifying
 * against the coordinator's anchor (`--anchor`) also catches a local anchor deleted or rolled back with it.
 */
import { join } from "node:path";
import { readFile } from "node:fs/promises";
import { checkChainAgainstAnchor, readAuditAnchorFile, type AnchorCheck, type AuditAnchor } from "@lanekeeper/shared";

/** The agent's audit chain, in its state directory. */
export const AUDIT_LOG_FILE = "audit.log";
/** The chain's head, kept beside it in a separate file. */
export const AUDIT_ANCHOR_FILE = "audit.anchor.json";

/** The audit log path of a state directory. */
export function auditLogPath(stateDir: string): string {
  return join(stateDir, AUDIT_LOG_FILE);
}

/** The anchor path of a state directory. */
export function auditAnchorPath(stateDir: string): string {
  return join(stateDir, AUDIT_ANCHOR_FILE);
}

/** What `audit verify` checked, and against which anchor. */
export interface AgentAuditVerification extends AnchorCheck {
  readonly file: string;
  /** `coordinator` (given with --anchor), `local` (the anchor file) or `none`. */
  readonly anchorSource: "coordinator" | "local" | "none";
}

/**
 * Verify `file` against `anchor` when given (the coordinator's), else against the local anchor file (when
 * `anchorFile` is set and exists). A missing chain file is never ok.
 */
export async function verifyAgentAudit(file: string, opts: { anchor?: AuditAnchor; anchorFile?: string }): Promise<AgentAuditVerification> {
  const text = await readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });
  let anchor = opts.anchor;
  let anchorSource: AgentAuditVerification["anchorSource"] = anchor === undefined ? "none" : "coordinator";
  if (anchor === undefined && opts.anchorFile !== undefined) {
    anchor = await readAuditAnchorFile(opts.anchorFile);
    if (anchor !== undefined) anchorSource = "local";
  }
  return { ...checkChainAgainstAnchor(text, anchor, file), file, anchorSource };
}
