import { InvalidArgumentError } from "commander";
import { cliErrorReport, renderCliError } from "@lanekeeper/shared";
import type { CoordinatorContext } from "../context/coordinator-context.js";
import type { CliIo } from "./cli-io.js";
import { CommandTimeoutError } from "./cli-errors.js";
import { READ_TIMEOUT_MS, withCoordinator, type CoordinatorCliDeps } from "./coordinator-session.js";
import { formatDuration, parseDuration } from "./duration.js";
import { ExitCode, exitCodeFor, hintFor } from "./exit-codes.js";

/** Default `status --watch --interval`. */
export const DEFAULT_WATCH_INTERVAL_MS = 5_000;
/** Shortest `--interval`: every round reads GitHub, and its rate limit is shared with `apply`. */
export const MIN_WATCH_INTERVAL_MS = 1_000;

/** Parse `--interval`: a duration of at least {@link MIN_WATCH_INTERVAL_MS}. */
export function parseWatchInterval(v: string): number {
  const ms = parseDuration(v);
  if (ms < MIN_WATCH_INTERVAL_MS) throw new InvalidArgumentError(`must be at least ${formatDuration(MIN_WATCH_INTERVAL_MS)}`);
  return ms;
}

/** The options a watched command shares. */
export interface WatchOptions {
  readonly policy?: string;
  readonly json?: boolean;
  /** Time between rounds (ms). */
  readonly interval?: number;
  /** Each round's deadline (ms), the opening of the connection included. */
  readonly timeout?: number;
  readonly inventoryWait?: number;
}

/** One round: observe and print through `io` (JSON on one line when `compactJson`), returning its exit code. */
export type WatchRound<O> = (ctx: CoordinatorContext, opts: O, io: CliIo, compactJson: boolean) => Promise<ExitCode>;

const STOPPED = Symbol("stopped");

/** `p`, or {@link STOPPED} as soon as `signal` aborts (`p` then goes on alone; its failure is ignored). */
function unlessStopped<T>(p: Promise<T>, signal: AbortSignal): Promise<T | typeof STOPPED> {
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.resolve(STOPPED);
  }
  return Promise.race([p, new Promise<typeof STOPPED>((resolve) => signal.addEventListener("abort", () => resolve(STOPPED), { once: true }))]);
}

/** Resolve after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** `p` within `ms`, else a {@link CommandTimeoutError} naming what the round waited on. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        t = setTimeout(() => reject(new CommandTimeoutError(`no answer within ${formatDuration(ms)} while ${what}`, { hint: "the next round tries again; check that NATS and the GitHub API answer, or raise --timeout" })), ms);
      }),
    ]);
  } finally {
    clearTimeout(t);
  }
}

/** What stops the watch: `deps.signal` when given (tests), else SIGINT or SIGTERM. */
function stopSignal(deps: CoordinatorCliDeps): { readonly signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  const given = deps.signal;
  if (given !== undefined) {
    if (given.aborted) ac.abort();
    given.addEventListener("abort", stop, { once: true });
    return { signal: ac.signal, dispose: () => given.removeEventListener("abort", stop) };
  }
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  return {
    signal: ac.signal,
    dispose: () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
    },
  };
}

/** An io that keeps what a round prints on stdout, so a round is shown whole (and the screen cleared just before). */
function bufferedIo(io: CliIo): { readonly io: CliIo; text(): string } {
  let out = "";
  return { io: { ...io, out: (t) => void (out += t), err: (t) => io.err(t) }, text: () => out };
}

/**
 * `status --watch`: one connection to NATS and GitHub, and a round every `interval` until Ctrl-C (SIGINT exits 0
 * once the connection is closed). Each round, and each attempt to connect, is bounded by `--timeout`; a round that
 * fails (or times out) is shown as the error and the watch goes on. On a terminal the screen is redrawn each
 * round; otherwise rounds are appended under a header line, and `--json` prints one JSON line per round (or an
 * `{"error": ...}` line). A policy that cannot be read ends the watch at once: it will not fix itself.
 */
export async function runStatusWatch<O extends WatchOptions>(opts: O, io: CliIo, deps: CoordinatorCliDeps, round: WatchRound<O>): Promise<ExitCode> {
  const stop = stopSignal(deps);
  const intervalMs = opts.interval ?? DEFAULT_WATCH_INTERVAL_MS;
  const roundMs = opts.timeout ?? READ_TIMEOUT_MS;
  const json = opts.json === true;
  let n = 0;
  const show = (stdout: string, stderr = ""): void => {
    if (io.stdoutIsTTY === true && !json) io.out("\x1b[H\x1b[2J");
    if (!json) io.out(`Every ${formatDuration(intervalMs)}: lanekeeper status, round ${n} at ${new Date(io.now()).toISOString()} (Ctrl-C to stop)\n\n`);
    io.out(stdout);
    if (stderr !== "") io.err(stderr);
  };
  const showFailure = (err: unknown): void => {
    const text = renderCliError(cliErrorReport(err, { exitCodeFor, hintFor }), json);
    show(text.stdout, `${text.stderr}${json ? "" : `still watching: next round in ${formatDuration(intervalMs)}\n`}`);
  };
  try {
    while (!stop.signal.aborted) {
      let connected = false;
      const session = withCoordinator({ policy: opts.policy, json, timeout: 0, openTimeout: roundMs }, io, deps, async (ctx) => {
        connected = true;
        while (!stop.signal.aborted) {
          n += 1;
          const buf = bufferedIo(io);
          // The first round waits for the agents' inventories; later ones see them as they arrive.
          const o = n === 1 ? opts : { ...opts, inventoryWait: 0 };
          try {
            const r = await unlessStopped(within(round(ctx, o, buf.io, json), roundMs, "observing NATS and GitHub"), stop.signal);
            if (r === STOPPED) break;
            show(buf.text());
          } catch (err) {
            showFailure(err);
          }
          await pause(intervalMs, stop.signal);
        }
      });
      try {
        const r = await unlessStopped(session, stop.signal);
        // Stopped inside a session: it ends its round at once; wait for it to close the connection.
        if (r === STOPPED && connected) await session.catch(() => undefined);
      } catch (err) {
        if (exitCodeFor(err) === ExitCode.CONFIG) throw err;
        n += 1;
        showFailure(err);
        await pause(intervalMs, stop.signal);
      }
    }
    return ExitCode.OK;
  } finally {
    stop.dispose();
  }
}
