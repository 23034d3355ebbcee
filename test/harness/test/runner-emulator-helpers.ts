/**
 * Shared pieces of the runner emulator tests: a fresh copy of the runner directory per runner, scripts run
 * to completion, long-lived runners with their output captured, and /proc lookups (process names, argv,
 * environment, process trees) that are how lanekeeper itself finds a job in progress.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { cp, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { makeTempDir, runCommand, waitForExit, waitUntil, type CommandResult, type ExitStatus } from "../src/process-util.js";
import { runnerEmulatorDir } from "../src/runner-image.js";

/**
 * Environment of every runner the tests start: the caller's environment without runner inputs, root
 * allowed (the tests run as root), and the test knobs that make polls and retries fast.
 */
export function runnerEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.toUpperCase().startsWith("ACTIONS_RUNNER_") && !k.startsWith("LK_RUNNER_") && !k.startsWith("RUNNER_")) env[k] = v;
  }
  Object.assign(env, {
    RUNNER_ALLOW_RUNASROOT: "1",
    LK_RUNNER_POLL_MS: "1000",
    LK_RUNNER_POLL_RETRY_MS: "200",
    LK_RUNNER_SESSION_RETRY_MS: "200",
    LK_RUNNER_RESTART_DELAY_S: "0",
  });
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Temp dirs made by {@link freshRunnerDir}, removed by {@link removeRunnerDirs}. */
const dirs: string[] = [];

/** A private copy of the runner emulator, as the systemd runtime makes one per lane. */
export async function freshRunnerDir(): Promise<string> {
  const base = await makeTempDir("lk-runner-");
  dirs.push(base);
  const dir = join(base, "runner");
  await cp(runnerEmulatorDir, dir, { recursive: true });
  return dir;
}

/** Removes every directory {@link freshRunnerDir} made. */
export async function removeRunnerDirs(): Promise<void> {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
}

/** Runs a script of the runner directory (`config.sh`, `run.sh`, `bin/Runner.Listener`) to completion. */
export function runScript(
  dir: string,
  script: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {},
): Promise<CommandResult> {
  return runCommand(join(dir, script), args, {
    cwd: dir,
    env: opts.env ?? runnerEnv(),
    timeoutMs: opts.timeoutMs ?? 60_000,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  });
}

/** A long-lived runner process (run.sh, runsvc.sh or Runner.Listener) whose output is captured. */
export class RunningRunner {
  private out = "";
  readonly child: ChildProcess;
  readonly exited: Promise<ExitStatus>;

  constructor(
    readonly dir: string,
    script: string,
    args: readonly string[],
    env: NodeJS.ProcessEnv,
  ) {
    this.child = spawn(join(dir, script), [...args], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout?.on("data", (c: Buffer) => (this.out += c.toString("utf8")));
    this.child.stderr?.on("data", (c: Buffer) => (this.out += c.toString("utf8")));
    this.exited = new Promise((resolve) => this.child.once("exit", (code, signal) => resolve({ code, signal })));
    running.add(this);
  }

  /** Everything printed so far (stdout and stderr interleaved). */
  get output(): string {
    return this.out;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Waits until the output matches `pattern`; fails early if the process exits first. */
  async waitForOutput(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    return waitUntil(() => this.out.match(pattern) ?? undefined, {
      timeoutMs,
      what: `runner output matching ${String(pattern)}`,
      abort: () => (this.child.exitCode !== null && !pattern.test(this.out) ? `the runner exited ${this.child.exitCode}` : undefined),
      diagnostics: () => `output so far:\n${this.out}`,
    });
  }

  /** Waits for the exit of the started process. */
  async waitForExit(timeoutMs = 20_000): Promise<ExitStatus> {
    return waitForExit(this.child, timeoutMs);
  }

  /** SIGKILLs the process and every descendant still alive (cleanup). */
  async kill(): Promise<void> {
    for (const pid of await processTree(this.pid)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    if (this.child.exitCode === null && this.child.signalCode === null) await this.exited;
    running.delete(this);
  }
}

const running = new Set<RunningRunner>();

// If the test process dies without its afterAll, runners must not outlive it: kill every tree synchronously.
process.once("exit", () => {
  for (const r of running) {
    for (const pid of processTreeSync(r.pid)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
});

function processTreeSync(root: number): number[] {
  const parents = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      parents.set(Number(name), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, ppid] of parents) if (ppid === out[i] && !out.includes(pid)) out.push(pid);
  return out;
}

/** Starts a runner script in `dir`; {@link killAllRunners} ends it if the test does not. */
export function startRunner(dir: string, script: string, args: readonly string[] = [], env: NodeJS.ProcessEnv = runnerEnv()): RunningRunner {
  return new RunningRunner(dir, script, args, env);
}

/** Kills every runner started by {@link startRunner} and its descendants. */
export async function killAllRunners(): Promise<void> {
  for (const r of [...running]) await r.kill();
}

/** One process as /proc shows it. */
export interface ProcInfo {
  pid: number;
  ppid: number;
  /** /proc/<pid>/comm (the kernel's process name). */
  comm: string;
  /** /proc/<pid>/cmdline split at NUL. */
  argv: string[];
}

/** Reads one process from /proc; undefined if it is gone. */
export async function procInfo(pid: number): Promise<ProcInfo | undefined> {
  try {
    const [stat, comm, cmdline] = await Promise.all([
      readFile(`/proc/${pid}/stat`, "utf8"),
      readFile(`/proc/${pid}/comm`, "utf8"),
      readFile(`/proc/${pid}/cmdline`, "utf8"),
    ]);
    // The command name in stat may contain spaces and parentheses: the fields after it start at the last ')'.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { pid, ppid: Number(rest[1]), comm: comm.trim(), argv: cmdline.split("\0").filter((a) => a !== "") };
  } catch {
    return undefined;
  }
}

/** Every live process. */
export async function allProcesses(): Promise<ProcInfo[]> {
  const pids = (await readdir("/proc")).filter((n) => /^\d+$/.test(n)).map(Number);
  const infos = await Promise.all(pids.map((p) => procInfo(p)));
  return infos.filter((i): i is ProcInfo => i !== undefined);
}

/** `root` and all its live descendants. */
export async function processTree(root: number): Promise<number[]> {
  const procs = await allProcesses();
  const out = [root];
  for (let i = 0; i < out.length; i++) {
    for (const p of procs) if (p.ppid === out[i] && !out.includes(p.pid)) out.push(p.pid);
  }
  return out.filter((p) => procs.some((x) => x.pid === p));
}

/** Processes named `comm` (per /proc/<pid>/comm) whose argv mentions `dir`: one runner's listener or worker. */
export async function findByComm(comm: string, dir: string): Promise<ProcInfo[]> {
  return (await allProcesses()).filter((p) => p.comm === comm && p.argv.some((a) => a.startsWith(dir)));
}

/** The environment of a live process, as NAME=value strings. */
export async function procEnviron(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/environ`, "utf8")).split("\0").filter((e) => e !== "");
}

/** POSTs to the emulator's REST API with the admin token; returns the parsed body. */
export async function restPost(apiUrl: string, token: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${apiUrl}${path}`, {
    method: "POST",
    headers: { authorization: `token ${token}`, accept: "application/vnd.github+json", "content-type": "application/json" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}
