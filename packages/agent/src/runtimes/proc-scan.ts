/**
 * Reading `/proc` and cgroupfs: process trees, cgroup members, command lines and start times. This is how the
 * agent finds a live `Runner.Worker` (local job evidence) without asking GitHub, whose `busy` flag lags.
 */
import { readdir, readFile } from "node:fs/promises";
import { basename, join } from "node:path";

/** The `/proc/<pid>/stat` fields the agent uses. */
export interface ProcStat {
  readonly pid: number;
  readonly ppid: number;
  /** Start time in clock ticks since boot: with the pid, identifies a process across pid reuse. */
  readonly startTime: number;
}

/** Parse `/proc/<pid>/stat` text (the command name may contain spaces and parentheses). */
export function parseProcStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  const pid = Number.parseInt(text.slice(0, text.indexOf(" ")), 10);
  const rest = text.slice(close + 2).split(" ");
  // rest[0] is the state (field 3); ppid is field 4, starttime field 22.
  const ppid = Number.parseInt(rest[1] ?? "", 10);
  const startTime = Number.parseInt(rest[19] ?? "", 10);
  if (!Number.isFinite(pid) || !Number.isFinite(ppid) || !Number.isFinite(startTime)) return undefined;
  return { pid, ppid, startTime };
}

/** `/proc/<pid>/stat` of one process, or `undefined` if it is gone. */
export async function readProcStat(pid: number, procRoot = "/proc"): Promise<ProcStat | undefined> {
  try {
    return parseProcStat(await readFile(join(procRoot, String(pid), "stat"), "utf8"));
  } catch {
    return undefined;
  }
}

/** A process's argv, or `undefined` if it is gone (kernel threads have an empty one). */
export async function readCmdline(pid: number, procRoot = "/proc"): Promise<string[] | undefined> {
  try {
    const raw = await readFile(join(procRoot, String(pid), "cmdline"));
    return raw.toString("utf8").split("\0").filter((s, i, a) => !(s === "" && i === a.length - 1));
  } catch {
    return undefined;
  }
}

/**
 * Whether an argv is the runner's job worker: `Runner.Worker spawnclient …` (the real .NET binary), or an
 * interpreter (`node`, `dotnet`, a shell) running a script named `Runner.Worker[.js|.mjs]` (the emulator, or a
 * wrapper). Any other program that merely mentions the name (`grep Runner.Worker`) is not.
 */
export function isRunnerWorkerArgv(argv: readonly string[]): boolean {
  const first = basename(argv[0] ?? "");
  if (first === "Runner.Worker") return true;
  if (!/^(node|nodejs|dotnet|bash|sh)$/.test(first)) return false;
  return /^Runner\.Worker(\.(c?js|mjs|dll|sh))?$/.test(basename(argv[1] ?? ""));
}

/** A process's kernel name (`comm`), or `undefined` if it is gone. */
export async function readComm(pid: number, procRoot = "/proc"): Promise<string | undefined> {
  try {
    return (await readFile(join(procRoot, String(pid), "comm"), "utf8")).trim();
  } catch {
    return undefined;
  }
}

/** Every live pid on the host. */
export async function allPids(procRoot = "/proc"): Promise<number[]> {
  const entries = await readdir(procRoot);
  return entries.filter((e) => /^\d+$/.test(e)).map((e) => Number.parseInt(e, 10));
}

/** `root` and all its descendants (by parent pid), from one scan of `/proc`. */
export async function processTree(root: number, procRoot = "/proc"): Promise<number[]> {
  const children = new Map<number, number[]>();
  for (const pid of await allPids(procRoot)) {
    const st = await readProcStat(pid, procRoot);
    if (!st) continue;
    const list = children.get(st.ppid) ?? [];
    list.push(pid);
    children.set(st.ppid, list);
  }
  const out: number[] = [];
  const queue = [root];
  const seen = new Set<number>();
  while (queue.length > 0) {
    const p = queue.shift() as number;
    if (seen.has(p)) continue;
    seen.add(p);
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

/** Where cgroup hierarchies may be mounted: cgroup v2, the hybrid `unified` tree, and the v1 `systemd` tree. */
export const CGROUP_ROOTS: readonly string[] = Object.freeze(["/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup"]);

async function walkCgroup(dir: string, out: Set<number>, depth: number): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(join(dir, "cgroup.procs"), "utf8");
  } catch {
    return false;
  }
  for (const l of text.split("\n")) if (/^\d+$/.test(l)) out.add(Number.parseInt(l, 10));
  if (depth > 8) return true;
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) if (e.isDirectory()) await walkCgroup(join(dir, e.name), out, depth + 1);
  return true;
}

/**
 * Pids in a cgroup (recursively), as seen from the agent's pid namespace (the kernel translates them). Returns
 * `undefined` when no hierarchy has that cgroup.
 */
export async function cgroupPids(cgroupPath: string, roots: readonly string[] = CGROUP_ROOTS): Promise<number[] | undefined> {
  if (!cgroupPath.startsWith("/") || cgroupPath.split("/").includes("..")) return undefined;
  for (const root of roots) {
    const out = new Set<number>();
    if (await walkCgroup(join(root, cgroupPath), out, 0)) return [...out];
  }
  return undefined;
}

/** The `Runner.Worker` pids among `pids`. */
export async function runnerWorkers(pids: readonly number[], procRoot = "/proc"): Promise<number[]> {
  const found: number[] = [];
  for (const pid of pids) {
    // The real binary (and the emulator, which sets it) is named Runner.Worker in the kernel.
    if ((await readComm(pid, procRoot)) === "Runner.Worker") {
      found.push(pid);
      continue;
    }
    const argv = await readCmdline(pid, procRoot);
    if (argv && isRunnerWorkerArgv(argv)) found.push(pid);
  }
  return found;
}

/** Whether `pid` is still the process that had `startTime` (guards against pid reuse). */
export async function isSameProcess(pid: number, startTime: number, procRoot = "/proc"): Promise<boolean> {
  const st = await readProcStat(pid, procRoot);
  return st !== undefined && st.startTime === startTime;
}
