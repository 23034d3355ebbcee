import { createInterface } from "node:readline/promises";
import { createLogger, type Logger } from "@lanekeeper/shared";
import { openCoordinator, type ContextSources, type CoordinatorContext } from "../apply/coordinator-context.js";
import type { CliIo } from "./cli-io.js";
import { policyPath, readPolicyFile } from "./policy-file.js";

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

/** The CLI's logger: pino to stderr, `warn` unless `LANEKEEPER_LOG_LEVEL` says otherwise; secrets redacted. */
export function cliLogger(io: CliIo): Logger {
  const level = io.env.LANEKEEPER_LOG_LEVEL ?? "warn";
  return createLogger({ component: "lanekeeper", level: level as "warn", destination: { write: (s: string): void => io.err(s) } });
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

/** Read the policy, open the coordinator, run `fn`, close. */
export async function withCoordinator<T>(
  opts: { readonly policy?: string | undefined; readonly rateLimitReserve?: number | undefined },
  io: CliIo,
  deps: CoordinatorCliDeps,
  fn: (ctx: CoordinatorContext, log: Logger) => Promise<T>,
): Promise<T> {
  const file = await readPolicyFile(policyPath(opts.policy, io.env, io.cwd));
  const log = cliLogger(io);
  const sources: ContextSources = {
    env: io.env,
    log,
    clock: { now: () => io.now() },
    ...(io.env.LANEKEEPER_INSTANCE === undefined ? {} : { instance: io.env.LANEKEEPER_INSTANCE }),
    ...(opts.rateLimitReserve === undefined ? {} : { rateLimitReserve: opts.rateLimitReserve }),
    ...(deps.fetch === undefined ? {} : { fetch: deps.fetch }),
  };
  const ctx = await (deps.open ?? openCoordinator)(file.policy, sources);
  try {
    return await fn(ctx, log);
  } finally {
    await ctx.close();
  }
}
