import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, open, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { LauncherError } from "./launcher-error.js";
import { COMMAND_OUTPUT_CAP_BYTES, POLL_INTERVAL_MAX_MS, POLL_INTERVAL_MIN_MS } from "./launcher-limits.js";

/** What a finished command left behind. */
export interface CommandResult {
  /** Exit code, or `null` when a signal ended it. */
  code: number | null;
  /** Signal that ended it, if any. */
  signal: NodeJS.Signals | null;
  /** Captured standard output (UTF-8, capped at {@link COMMAND_OUTPUT_CAP_BYTES}). */
  stdout: string;
  /** Captured standard error (UTF-8, capped at {@link COMMAND_OUTPUT_CAP_BYTES}). */
  stderr: string;
}

/** Options of {@link runCommand}. */
export interface RunCommandOptions {
  /** Kill the command (SIGKILL) and reject after this long. @default 60_000 */
  timeoutMs?: number;
  /** Environment; @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Working directory. */
  cwd?: string;
  /** Bytes written to the command's stdin, which is then closed. */
  input?: string | Uint8Array;
}

/**
 * Runs `cmd` with an argv array (never a shell) and collects its output. Resolves with any exit code:
 * callers decide what a non-zero code means. Rejects only when the program cannot be started or times out.
 */
export function runCommand(cmd: string, args: readonly string[], opts: RunCommandOptions = {}): Promise<CommandResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise<CommandResult>((resolve, reject) => {
    const child = spawn(cmd, [...args], {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out = new CappedBuffer(COMMAND_OUTPUT_CAP_BYTES);
    const err = new CappedBuffer(COMMAND_OUTPUT_CAP_BYTES);
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new LauncherError("COMMAND_FAILED", `cannot run ${cmd}: ${e.message}`, { cause: e }));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(
          new LauncherError(
            "COMMAND_FAILED",
            `${cmd} ${args.join(" ")} did not finish within ${timeoutMs} ms; stderr: ${err.text().slice(-500)}`,
          ),
        );
        return;
      }
      resolve({ code, signal, stdout: out.text(), stderr: err.text() });
    });
    child.stdin.on("error", () => {
      // A command that exits without reading its stdin closes the pipe; its exit status tells the story.
    });
    child.stdin.end(opts.input ?? "");
  });
}

/** Keeps the first `cap` bytes of a stream, so a chatty child cannot exhaust the test's memory. */
class CappedBuffer {
  private readonly chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly cap: number) {}

  push(chunk: Buffer): void {
    if (this.size >= this.cap) return;
    const room = this.cap - this.size;
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(part);
    this.size += part.length;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

/** Options of {@link waitUntil}. */
export interface WaitUntilOptions {
  /** Give up after this long. */
  timeoutMs: number;
  /** Names the awaited condition in the timeout error ("nats-server to accept connections"). */
  what: string;
  /** Extra text for the timeout error, computed only on timeout (e.g. a log tail). */
  diagnostics?: () => Promise<string> | string;
  /** Stop early: return a message to fail at once (e.g. "the process exited"), or undefined to go on. */
  abort?: () => string | undefined;
}

/**
 * Polls `probe` until it returns a value other than `undefined`/`false`, with a short interval that grows
 * to {@link POLL_INTERVAL_MAX_MS}: fast on an idle machine, gentle on a loaded 2-core one. Exceptions from
 * the probe count as "not yet"; the last one is attached to the timeout error.
 */
export async function waitUntil<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  opts: WaitUntilOptions,
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let interval = POLL_INTERVAL_MIN_MS;
  let lastError: unknown;
  for (;;) {
    const aborted = opts.abort?.();
    if (aborted !== undefined) {
      throw new LauncherError("LAUNCH_FAILED", `while waiting for ${opts.what}: ${aborted}${await extra(opts)}`);
    }
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const last = lastError instanceof Error ? `; last error: ${lastError.message}` : "";
      throw new LauncherError(
        "START_TIMEOUT",
        `timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${last}${await extra(opts)}`,
        { cause: lastError },
      );
    }
    await delay(Math.min(interval, Math.max(1, deadline - Date.now())));
    interval = Math.min(interval * 2, POLL_INTERVAL_MAX_MS);
  }
}

async function extra(opts: WaitUntilOptions): Promise<string> {
  if (!opts.diagnostics) return "";
  try {
    const text = await opts.diagnostics();
    return text ? `\n${text}` : "";
  } catch {
    return "";
  }
}

/** How a child ended. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Resolves when `child` has exited (at once if it already has); rejects with `STOP_TIMEOUT` after
 * `timeoutMs`.
 */
export function waitForExit(child: ChildProcess, timeoutMs: number): Promise<ExitStatus> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise<ExitStatus>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off("exit", onExit);
      reject(new LauncherError("STOP_TIMEOUT", `process ${child.pid ?? "?"} did not exit within ${timeoutMs} ms`));
    }, timeoutMs);
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      resolve({ code, signal });
    };
    child.once("exit", onExit);
  });
}

/**
 * Ends `child`: `signal` first (default SIGTERM), SIGKILL after `graceMs`. Resolves once it has exited.
 */
export async function terminate(
  child: ChildProcess,
  opts: { signal?: NodeJS.Signals; graceMs?: number } = {},
): Promise<ExitStatus> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return { code: child.exitCode, signal: child.signalCode };
  }
  child.kill(opts.signal ?? "SIGTERM");
  try {
    return await waitForExit(child, opts.graceMs ?? 10_000);
  } catch {
    child.kill("SIGKILL");
    return waitForExit(child, 10_000);
  }
}

/** True while a process with this PID exists (zombies included). */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Creates a fresh private (0700) directory `<base>/<prefix>XXXXXX`. */
export function makeTempDir(prefix: string, base: string = tmpdir()): Promise<string> {
  return mkdtemp(join(base, prefix));
}

/** The last `bytes` bytes of a (log) file, or "" when it does not exist. */
export async function readTail(path: string, bytes = 4096): Promise<string> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    return "";
  }
  const fh = await open(path, "r");
  try {
    const len = Math.min(bytes, size);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    return buf.toString("utf8");
  } finally {
    await fh.close();
  }
}

const orphanGuard = new Set<number>();
let guardInstalled = false;

/**
 * Remembers a PID to SIGKILL if the test process exits without stopping it (a crashed or killed worker),
 * so no nats-server or sandbox outlives the test run. {@link forgetOnExit} when stopped normally.
 */
export function killOnExit(pid: number): void {
  orphanGuard.add(pid);
  if (guardInstalled) return;
  guardInstalled = true;
  process.once("exit", () => {
    for (const p of orphanGuard) {
      try {
        process.kill(p, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  });
}

/** Drops a PID registered with {@link killOnExit}. */
export function forgetOnExit(pid: number): void {
  orphanGuard.delete(pid);
}

/** `spawn` with the defaults launchers want: argv array, no shell, piped stdio unless told otherwise. */
export function spawnChild(cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  return spawn(cmd, [...args], { stdio: ["ignore", "pipe", "pipe"], ...opts });
}

const SETPRIV = "/usr/bin/setpriv";

/**
 * Wraps a command so the kernel SIGKILLs it when the spawning thread dies (`setpriv --pdeathsig KILL`,
 * util-linux): a test worker killed by a signal skips every `afterAll` and `exit` hook, and would otherwise
 * leave a nats-server or podman service running. Without setpriv the command is returned unchanged.
 */
export function dieWithParent(cmd: string, args: readonly string[]): { cmd: string; args: string[] } {
  if (!existsSync(SETPRIV)) return { cmd, args: [...args] };
  return { cmd: SETPRIV, args: ["--pdeathsig", "KILL", "--", cmd, ...args] };
}
