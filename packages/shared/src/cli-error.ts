/**
 * The one error style of the `lanekeeper` and `lanekeeper-agent` command lines. Both CLIs turn a failure into a
 * {@link CliErrorReport} and print it with {@link renderCliError}, so an operator (or a script) sees the same
 * shape from either tool:
 *
 * ```text
 * error: host h9 is not enrolled (see `lanekeeper hosts list`) (HOST_NOT_FOUND)
 * hint: check the host id, lane id or file named above
 * ```
 *
 * and with `--json`, on stdout: `{"error":{"code":"HOST_NOT_FOUND","message":"…","hint":"…","exitCode":6}}`.
 */
import { LanekeeperError, UsageError } from "./errors.js";

/** Exit codes that mean the same in every lanekeeper CLI. Each CLI's own codes start at 4. */
export const COMMON_EXIT_CODES = Object.freeze({
  /** Success. */
  OK: 0,
  /** An unexpected error (a bug, or an environment problem with no better code). */
  FAILURE: 1,
  /** A bad command line: unknown command or option, missing argument, bad option value. */
  USAGE: 2,
  /** The config (agent.yaml) or policy (lanekeeper.yaml) is invalid or unreadable. */
  CONFIG: 3,
} as const);

/** A failure as a CLI reports it. */
export interface CliErrorReport {
  /** Stable code: an error's `code`, `USAGE` for a bad command line, `INTERNAL` for an unexpected exception. */
  readonly code: string;
  /** What went wrong; may span lines (a config error lists one `path: message` per line). */
  readonly message: string;
  /** One line saying what to do next. */
  readonly hint: string;
  /** The process exit code. */
  readonly exitCode: number;
}

/** What a CLI supplies to turn any thrown value into a {@link CliErrorReport}. */
export interface CliErrorPolicy {
  /** The CLI's exit-code mapping. */
  exitCodeFor(err: unknown): number;
  /** Generic advice by exit code, used when the error carries no `hint` of its own. */
  hintFor(exitCode: number): string;
}

/**
 * Describe a thrown value: a {@link LanekeeperError} by its code, message and hint; anything else as `INTERNAL`
 * (a bug), whose message is prefixed so it is not mistaken for an expected refusal.
 */
export function cliErrorReport(err: unknown, policy: CliErrorPolicy): CliErrorReport {
  const exitCode = policy.exitCodeFor(err);
  if (err instanceof LanekeeperError) {
    return { code: err.code, message: err.message, hint: err.hint ?? policy.hintFor(exitCode), exitCode };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: "INTERNAL", message: `unexpected error: ${message}`, hint: policy.hintFor(exitCode), exitCode };
}

/**
 * A bad command line as a {@link UsageError}. `message` is commander's (its leading `error: ` is dropped, since
 * the renderer adds its own); `help` is how to get help, e.g. `lanekeeper-agent --help`.
 */
export function usageError(message: string, help: string): UsageError {
  return new UsageError(message.trim().replace(/^error: /, ""), { hint: `see ${help}` });
}

/** What to write where: the text for stdout and the text for stderr (either may be empty). */
export interface RenderedCliError {
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Render a failure. Human form, on stderr: `error: <first line of the message> (<code>)`, any further message
 * lines indented beneath it, then `hint: <what to do>`. JSON form (`json: true`), on stdout, one line:
 * `{"error":{"code","message","hint","exitCode"}}`. Pure: the caller writes the text.
 */
export function renderCliError(report: CliErrorReport, json: boolean): RenderedCliError {
  if (json) {
    const { code, message, hint, exitCode } = report;
    return { stdout: `${JSON.stringify({ error: { code, message, hint, exitCode } })}\n`, stderr: "" };
  }
  const [first = "", ...rest] = report.message.trimEnd().split("\n");
  const head = `error: ${first.replace(/:$/, "")} (${report.code})\n`;
  const body = rest.map((l) => `  ${l.trimStart()}\n`).join("");
  return { stdout: "", stderr: `${head}${body}hint: ${report.hint}\n` };
}
