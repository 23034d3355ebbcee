/**
 * How the agent runs programs: argv arrays only, never a shell, always a timeout. Runtimes take a
 * {@link CommandRunner} so tests can point `systemctl` into a systemd sandbox (through `nsenter`) while
 * production uses plain {@link execFileRunner}.
 */
import { spawn } from "node:child_process";
import { CommandTimeoutError, RuntimeError } from "../errors.js";
import { MAX_CHILD_OUTPUT_BYTES } from "../limits.js";

/** Options of one command run. */
export interface CommandOptions {
  /** Kill the process (SIGKILL) after this long and throw {@link CommandTimeoutError}. */
  readonly timeoutMs: number;
  /**
   * The complete environment of the child. When absent the agent's environment is inherited. Secrets travel
   * here (never in argv): the child's environment is readable only by its own user and root.
   */
  readonly env?: Readonly<Record<string, string>>;
  /** Working directory. */
  readonly cwd?: string;
  /** Run as this uid/gid (the agent runs as root; lanes run as their configured user). */
  readonly uid?: number;
  /** See {@link CommandOptions.uid}. */
  readonly gid?: number;
  /** Called with the child's pid as soon as it exists, e.g. to journal it before waiting. */
  readonly onSpawn?: (pid: number) => void | Promise<void>;
}

/** What a finished command returned. A non-zero exit is a result, not an exception. */
export interface CommandResult {
  /** Exit code, or `null` when a signal ended the process. */
  readonly code: number | null;
  /** The terminating signal, if any. */
  readonly signal: NodeJS.Signals | null;
  /** Captured stdout (capped); for classification only, never logged raw. */
  readonly stdout: string;
  /** Captured stderr (capped); for classification only, never logged raw. */
  readonly stderr: string;
}

/** Runs one program with an argv array. */
export interface CommandRunner {
  /** Run `argv[0]` with `argv.slice(1)`. Rejects only when the program cannot start or times out. */
  run(argv: readonly string[], opts: CommandOptions): Promise<CommandResult>;
}

function capped(chunks: Buffer[], total: number): string {
  const buf = Buffer.concat(chunks);
  return (total > MAX_CHILD_OUTPUT_BYTES ? buf.subarray(buf.length - MAX_CHILD_OUTPUT_BYTES) : buf).toString("utf8");
}

/** The production runner: `child_process.spawn` without a shell, with a hard timeout. */
export const execFileRunner: CommandRunner = Object.freeze({
  run(argv: readonly string[], opts: CommandOptions): Promise<CommandResult> {
    const [file, ...args] = argv;
    if (file === undefined || file === "") return Promise.reject(new RuntimeError("empty command"));
    return new Promise<CommandResult>((resolve, reject) => {
      const child = spawn(file, args, {
        shell: false,
        stdio: ["ignore", "pipe", "pipe"],
        env: opts.env ?? process.env,
        ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
        ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
        ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let outLen = 0;
      let errLen = 0;
      const keep = (list: Buffer[], chunk: Buffer, len: number): number => {
        list.push(chunk);
        let total = len + chunk.length;
        // Keep only the tail: the end of a runner's output says why it failed.
        while (total - (list[0]?.length ?? 0) > MAX_CHILD_OUTPUT_BYTES && list.length > 1) total -= list.shift()?.length ?? 0;
        return total;
      };
      child.stdout.on("data", (c: Buffer) => (outLen = keep(out, c, outLen)));
      child.stderr.on("data", (c: Buffer) => (errLen = keep(err, c, errLen)));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill("SIGKILL");
      }, opts.timeoutMs);
      child.once("spawn", () => {
        if (opts.onSpawn && child.pid !== undefined) {
          Promise.resolve(opts.onSpawn(child.pid)).catch(() => undefined);
        }
      });
      child.once("error", (e) => {
        clearTimeout(timer);
        reject(new RuntimeError(`cannot run ${file}: ${e.message}`, { cause: e }));
      });
      child.once("close", (code, signal) => {
        clearTimeout(timer);
        if (timedOut) {
          reject(new CommandTimeoutError(`${file} ${args[0] ?? ""} did not finish within ${opts.timeoutMs} ms and was killed`));
          return;
        }
        resolve({ code, signal, stdout: capped(out, outLen), stderr: capped(err, errLen) });
      });
    });
  },
});

/**
 * A runner that prefixes every argv, e.g. `["nsenter", "-t", pid, "-m", "-p", "--"]` to run `systemctl` inside a
 * systemd sandbox's namespaces.
 */
export function prefixedRunner(prefix: readonly string[], inner: CommandRunner = execFileRunner): CommandRunner {
  return {
    run: (argv, opts) => inner.run([...prefix, ...argv], opts),
  };
}
