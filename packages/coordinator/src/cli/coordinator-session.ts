import { createInterface } from "node:readline/promises";
import type { Logger } from "@lanekeeper/shared";
import { openCoordinator, type ContextSources, type CoordinatorContext } from "../context/coordinator-context.js";
import type { CliIo } from "./cli-io.js";
import { CommandTimeoutError } from "./cli-errors.js";
import { cliLogger, type CliLogStyle } from "./cli-logger.js";
import { formatDuration } from "./duration.js";
import { policyPath, readPolicyFile } from "./policy-file.js";
import { DEFAULT_NATS_OPEN_WAIT_MS } from "../limits.js";

/** What the coordinator commands let a test inject. */
export interface CoordinatorCliDeps {
  /** Open the coordinator (default: {@link openCoordinator}). */
  readonly open?: typeof openCoordinator;
  /**
   * Ask the operator a yes/no question. Default: a prompt on the terminal when stdin is a TTY; undefined when it
   * is not, which makes commands that need confirmation refuse unless `--yes` is given.
   */
  readonly confirm?: ((question: string) => Promise<boolean>) | null;
  readonly fetch?: typeof fetch;
  /** Ends `serve` (default: SIGINT or SIGTERM). */
  readonly signal?: AbortSignal;
}

/** The default confirmation: a terminal prompt, or none when stdin is not a terminal. */
export function terminalConfirm(): ((question: string) => Promise<boolean>) | undefined {
  if (process.stdin.isTTY !== true) return undefined;
  return async (question) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    try {
      const answer = await rl.question(`${question} [y/N] `);
      return /^y(es)?$/i.test(answer.trim());
    } finally {
      rl.close();
    }
  };
}

/** Default `--timeout` of the coordinator commands that only read (`status`, `plan`, `audit --stream`). */
export const READ_TIMEOUT_MS = 60_000;
/** Default `--timeout` of the commands that act (`apply`, `lanes ...`): long enough for drains and verifications. */
export const ACT_TIMEOUT_MS = 3_600_000;

/** Options every coordinator command passes to {@link withCoordinator}. */
export interface SessionOptions {
  readonly policy?: string | undefined;
  readonly rateLimitReserve?: number | undefined;
  /** The whole command's deadline in ms (`--timeout`); 0 bounds only the opening (for `serve`). */
  readonly timeout?: number | undefined;
  /** `--json`: stderr then carries JSON lines only (progress events and log lines). */
  readonly json?: boolean | undefined;
  /** How log lines reach stderr. @default "json" with `json`, else "human" */
  readonly logStyle?: CliLogStyle;
  /** With `timeout` 0: the opening's deadline in ms (default {@link READ_TIMEOUT_MS}). */
  readonly openTimeout?: number | undefined;
  /** How long opening retries NATS that does not answer (default: three quarters of the opening's deadline, at most 45 s). */
  readonly natsWait?: number | undefined;
}

/**
 * Read the policy, open the coordinator, run `fn`, close; all of it within `opts.timeout` (default
 * `defaultTimeoutMs`). When the deadline passes the command fails with {@link CommandTimeoutError} naming what it
 * was waiting on, instead of hanging on a NATS server or GitHub API that accepted the connection but never answered.
 */
export async function withCoordinator<T>(
  opts: SessionOptions,
  io: CliIo,
  deps: CoordinatorCliDeps,
  fn: (ctx: CoordinatorContext, log: Logger) => Promise<T>,
  defaultTimeoutMs: number = READ_TIMEOUT_MS,
): Promise<T> {
  const file = await readPolicyFile(policyPath(opts.policy, io.env, io.cwd));
  const log = cliLogger(io, opts.logStyle ?? (opts.json === true ? "json" : "human"));
  const sources: ContextSources = {
    env: io.env,
    log,
    clock: { now: () => io.now() },
    ...(io.env.LANEKEEPER_INSTANCE === undefined ? {} : { instance: io.env.LANEKEEPER_INSTANCE }),
    ...(opts.rateLimitReserve === undefined ? {} : { rateLimitReserve: opts.rateLimitReserve }),
    ...(deps.fetch === undefined ? {} : { fetch: deps.fetch }),
  };
  const wholeMs = opts.timeout ?? defaultTimeoutMs;
  // `serve` runs until stopped: only its opening is bounded (by the read default).
  const openMs = wholeMs === 0 ? (opts.openTimeout ?? READ_TIMEOUT_MS) : wholeMs;
  // NATS retries stop well inside the deadline, so the error says why NATS did not answer (NATS_UNAVAILABLE).
  const natsWaitMs = opts.natsWait ?? Math.min(DEFAULT_NATS_OPEN_WAIT_MS, Math.floor(openMs * 0.75));
  const nats = file.policy.coordinator.natsUrl;
  const gh = file.policy.github.apiUrl;
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = (ms: number, what: string): Promise<never> =>
    new Promise((_, reject) => {
      timer = setTimeout(() => {
        reject(new CommandTimeoutError(`no answer within ${formatDuration(ms)} while ${what}`, { hint: "check that NATS and the GitHub API answer from this machine, or raise --timeout" }));
      }, Math.max(0, ms - (Date.now() - started)));
    });
  const opening = (deps.open ?? openCoordinator)(file.policy, { ...sources, natsWaitMs });
  let ctx: CoordinatorContext;
  try {
    ctx = await Promise.race([opening, deadline(openMs, `connecting to NATS at ${nats} (and GitHub at ${gh})`)]);
  } catch (err) {
    // A late open must not leave a connection behind.
    opening.then((c) => c.close(), () => undefined).catch(() => undefined);
    throw err;
  } finally {
    clearTimeout(timer);
  }
  try {
    if (wholeMs === 0) return await fn(ctx, log);
    return await Promise.race([fn(ctx, log), deadline(wholeMs, `observing and acting (NATS at ${nats}, GitHub at ${gh})`)]);
  } finally {
    clearTimeout(timer);
    await Promise.race([ctx.close(), new Promise((r) => setTimeout(r, 2_000).unref())]);
  }
}
