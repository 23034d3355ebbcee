/**
 * Typed errors with stable codes. Tests, the gRPC status mapping and the CLI exit-code mapping match on
 * `code` (and on `reason` for intent rejections), never on message text.
 *
 * Codes are string unions, one per package: {@link SharedErrorCode} here, extended by the agent's
 * `AgentErrorCode` and the coordinator's `CoordinatorErrorCode`. Each subclass names its package's union as the
 * type argument of {@link LanekeeperError}, so a misspelt code does not compile, and each CLI's exit-code table is
 * a `Record` over its union, so a new code does not compile until it has an exit code.
 */

/** Options accepted by every lanekeeper error. */
export interface LanekeeperErrorOptions {
  /** The underlying error, kept for logs. */
  cause?: unknown;
  /** Structured, secret-free context for logs and `--json` output. */
  details?: Readonly<Record<string, unknown>>;
  /** What the operator should do next, when the error knows better than its exit code's generic advice. */
  hint?: string;
}

/** Base class of every error lanekeeper throws on purpose. `code` is stable across releases. */
export class LanekeeperError<C extends string = SharedErrorCode> extends Error {
  /** Stable machine-readable code, e.g. `CONFIG_INVALID` or a {@link RejectReason}. */
  readonly code: C;
  /** Structured, secret-free context. */
  readonly details: Readonly<Record<string, unknown>> | undefined;
  /** What to do next, when the thrower knows; the CLIs fall back to advice by exit code. */
  readonly hint: string | undefined;

  // NoInfer: `new LanekeeperError("TYPO", ...)` must not infer C = "TYPO"; it falls back to SharedErrorCode.
  constructor(code: NoInfer<C>, message: string, options: LanekeeperErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details;
    this.hint = options.hint;
  }

  /**
   * `instanceof`, typed: `err instanceof LanekeeperError` narrows to `LanekeeperError<string>` (a code from any
   * package) rather than TypeScript's default `LanekeeperError<any>`; `err instanceof RejectError` still narrows
   * to `RejectError`. The check itself is the ordinary prototype-chain one.
   */
  static override [Symbol.hasInstance]<T>(this: abstract new (...args: never[]) => T, value: unknown): value is T {
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }
}

/**
 * Why an intent, envelope, key, name or label was refused. Values equal their names so they travel as-is in
 * `ResultPayload.reason_code`, audit records and logs.
 */
export enum RejectReason {
  ENVELOPE_TOO_LARGE = "ENVELOPE_TOO_LARGE",
  ENVELOPE_MALFORMED = "ENVELOPE_MALFORMED",
  ENVELOPE_VERSION = "ENVELOPE_VERSION",
  SIGNATURE_LENGTH = "SIGNATURE_LENGTH",
  KEY_ID_INVALID = "KEY_ID_INVALID",
  UNKNOWN_KEY = "UNKNOWN_KEY",
  KEY_REVOKED = "KEY_REVOKED",
  KEY_NOT_VALID_NOW = "KEY_NOT_VALID_NOW",
  BAD_SIGNATURE = "BAD_SIGNATURE",
  PAYLOAD_MALFORMED = "PAYLOAD_MALFORMED",
  ISSUER_MISMATCH = "ISSUER_MISMATCH",
  AUDIENCE_MISMATCH = "AUDIENCE_MISMATCH",
  SUBJECT_MISMATCH = "SUBJECT_MISMATCH",
  EXPIRED = "EXPIRED",
  NOT_YET_VALID = "NOT_YET_VALID",
  TTL_TOO_LONG = "TTL_TOO_LONG",
  BAD_TIME_WINDOW = "BAD_TIME_WINDOW",
  REPLAY = "REPLAY",
  SEQUENCE_TOO_LOW = "SEQUENCE_TOO_LOW",
  BEFORE_FLOOR = "BEFORE_FLOOR",
  STATE_LOST = "STATE_LOST",
  /** The intent's fencing token is below the highest this agent has seen: it comes from a superseded coordinator. */
  FENCING_TOKEN_STALE = "FENCING_TOKEN_STALE",
  CONTROL_DISABLED = "CONTROL_DISABLED",
  NOT_ALLOWED_ACTION = "NOT_ALLOWED_ACTION",
  NOT_ALLOWED_SCOPE = "NOT_ALLOWED_SCOPE",
  NOT_ALLOWED_POOL = "NOT_ALLOWED_POOL",
  NOT_ALLOWED_BACKEND = "NOT_ALLOWED_BACKEND",
  NOT_ALLOWED_IMAGE = "NOT_ALLOWED_IMAGE",
  MAX_LANES = "MAX_LANES",
  INVALID_NAME = "INVALID_NAME",
  INVALID_LABEL = "INVALID_LABEL",
  NOT_OWNED = "NOT_OWNED",
  FOREIGN_HOST = "FOREIGN_HOST",
  BAD_MARKER = "BAD_MARKER",
  SYMLINK = "SYMLINK",
  LANE_HELD = "LANE_HELD",
  LANE_NOT_FOUND = "LANE_NOT_FOUND",
  LANE_EXISTS = "LANE_EXISTS",
  JOB_RUNNING = "JOB_RUNNING",
  SEAL_FAILED = "SEAL_FAILED",
  NO_ACTION = "NO_ACTION",
  /** A key-set update whose version is not exactly the current version + 1 (rollback, replay or skip). */
  KEYSET_VERSION = "KEYSET_VERSION",
  /** A create whose runner URL is not exactly an allowed GitHub origin plus the scope's path. */
  GITHUB_ORIGIN_NOT_ALLOWED = "GITHUB_ORIGIN_NOT_ALLOWED",
  /** A runner download (or a redirect it took) whose URL is not on the agent's `runnerDownloads.origins`. */
  DOWNLOAD_ORIGIN_NOT_ALLOWED = "DOWNLOAD_ORIGIN_NOT_ALLOWED",
  /** An upgrade for a lane that is not drained and idle (not draining or stopped, or a job is running). */
  LANE_BUSY = "LANE_BUSY",
  /** A key-set update not signed by any root key: signed only by an online intent-signing key (two tiers). */
  KEYSET_NOT_ROOT_SIGNED = "KEYSET_NOT_ROOT_SIGNED",
  /** A key-set update signed only by keys the agent does not know, or to an agent with no root key pinned. */
  KEYSET_UNKNOWN_ROOT = "KEYSET_UNKNOWN_ROOT",
  /** A key-set update that names a new root key without that key's own signature, or that leaves no active root. */
  KEYSET_ROOT_CHANGE = "KEYSET_ROOT_CHANGE",
}

/** Every {@link RejectReason} value, for exhaustive tests and for validating reason codes read from the wire. */
export const REJECT_REASONS: readonly RejectReason[] = Object.freeze(Object.values(RejectReason));

/** Whether `s` is a known {@link RejectReason}. */
export function isRejectReason(s: string): s is RejectReason {
  return (REJECT_REASONS as readonly string[]).includes(s);
}

/** A refusal with a typed reason. `code` equals `reason`. */
export class RejectError extends LanekeeperError<`${RejectReason}`> {
  /** Why the input was refused. */
  readonly reason: RejectReason;

  constructor(reason: RejectReason, message: string, options: LanekeeperErrorOptions = {}) {
    super(reason, message, options);
    this.reason = reason;
  }
}

/** Whether `err` is a {@link RejectError}, optionally with the given reason. */
export function isRejectError(err: unknown, reason?: RejectReason): err is RejectError {
  return err instanceof RejectError && (reason === undefined || err.reason === reason);
}

/** One problem found in a config or policy file. */
export interface ConfigIssue {
  /** Dotted path with array indexes, e.g. `control.scopes[0]`; empty for the document itself. */
  readonly path: string;
  /** What is wrong and what to do about it. */
  readonly message: string;
  /** 1-based line in the file, when the problem has a place in it. */
  readonly line?: number;
  /** 1-based column in the file, with {@link ConfigIssue.line}. */
  readonly column?: number;
}

/** Options of {@link ConfigError}. */
export interface ConfigErrorOptions extends LanekeeperErrorOptions {
  /** The file the text came from (shared never reads files: the caller names it). */
  readonly file?: string | undefined;
}

/** `file:line:column: ` for an issue with a place, so editors and terminals can jump to it. */
function issuePlace(file: string | undefined, i: ConfigIssue): string {
  if (i.line === undefined) return "";
  return `${file ?? "line"}:${i.line}:${i.column ?? 1}: `;
}

/**
 * A config or policy file that cannot be used. The message names the file, then lists every issue as
 * `file:line:column: path: message` lines (the place when it is known).
 */
export class ConfigError extends LanekeeperError<SharedErrorCode> {
  /** Every problem found, in document order where possible. */
  readonly issues: readonly ConfigIssue[];
  /** The file the problems are in, when the caller named it. */
  readonly file: string | undefined;

  constructor(what: string, issues: readonly ConfigIssue[], options: ConfigErrorOptions = {}) {
    const file = options.file;
    const lines = issues.map((i) => `  ${issuePlace(file, i)}${i.path === "" ? (i.line === undefined ? "(document): " : "") : `${i.path}: `}${i.message}`);
    super("CONFIG_INVALID", `${what}${file === undefined ? "" : ` ${file}`} is invalid:\n${lines.join("\n")}`, options);
    this.file = file;
    this.issues = Object.freeze(
      issues.map((i) => Object.freeze({ path: i.path, message: i.message, ...(i.line === undefined ? {} : { line: i.line, column: i.column ?? 1 }) })),
    );
  }
}

/** Audit log I/O or chain problems (not tampering found by verification, which is a result, not an error). */
export class AuditError extends LanekeeperError<SharedErrorCode> {
  constructor(message: string, options: LanekeeperErrorOptions = {}) {
    super("AUDIT_FAILED", message, options);
  }
}

/** A key file or key encoding that cannot be used. */
export class KeyError extends LanekeeperError<SharedErrorCode> {
  constructor(message: string, options: LanekeeperErrorOptions = {}) {
    super("KEY_INVALID", message, options);
  }
}

/**
 * Codes of errors raised in `shared` itself, and the two codes every CLI uses for failures that are not
 * lanekeeper errors: `USAGE` (a bad command line) and `INTERNAL` (an unexpected exception, i.e. a bug).
 */
export const SHARED_OWN_ERROR_CODES = Object.freeze([
  "CONFIG_INVALID",
  "AUDIT_FAILED",
  "KEY_INVALID",
  "INVALID_PATH",
  "INVALID_URL",
  "ENROLLMENT_INVALID",
  "USAGE",
  "INTERNAL",
] as const);

/**
 * Every code an error raised in `shared` can carry: {@link SHARED_OWN_ERROR_CODES} and the {@link RejectReason}s
 * (as their string values, so both `RejectReason.JOB_RUNNING` and `"JOB_RUNNING"` type-check).
 */
export type SharedErrorCode = `${RejectReason}` | (typeof SHARED_OWN_ERROR_CODES)[number];

/** The one exit code for every {@link RejectReason}, as a typed table slice for a CLI's exit-code `Record`. */
export function rejectReasonsExitingWith<N extends number>(exitCode: N): Record<`${RejectReason}`, N> {
  return Object.fromEntries(REJECT_REASONS.map((r) => [r, exitCode])) as Record<`${RejectReason}`, N>;
}

/** A bad command line (unknown command or option, missing argument); exit code 2 in every CLI. */
export class UsageError extends LanekeeperError<SharedErrorCode> {
  constructor(message: string, options: LanekeeperErrorOptions = {}) {
    super("USAGE", message, options);
  }
}
