import type { ChildProcess, SpawnOptions } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { chmod, mkdir, readFile, readdir, readlink, rm, rmdir, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { LauncherError } from "./launcher-error.js";
import { stateDirFor } from "./state-root.js";
import { SYSTEMD_BOOT_TIMEOUT_MS, SYSTEMD_COMMAND_TIMEOUT_MS, SYSTEMD_STOP_TIMEOUT_MS } from "./launcher-limits.js";
import {
  dieWithParent,
  forgetOnExit,
  killOnExit,
  makeTempDir,
  pidExists,
  readTail,
  runCommand,
  spawnChild,
  waitForExit,
  waitUntil,
  type CommandResult,
} from "./process-util.js";

/** Options of {@link startSystemdSandbox}. */
export interface SystemdSandboxOptions {
  /** Unit files written into the unit directory before boot: file name → content. */
  units?: Record<string, string>;
  /**
   * Parent of the sandbox directory. It must not be under /tmp or /var/tmp, which the sandbox replaces
   * with private ones. @default $LK_SANDBOX_DIR, else `/var/lib/lanekeeper-test/sd` (see state-root.ts)
   */
  baseDir?: string;
  /** How long to wait for systemd to answer `is-system-running`. @default SYSTEMD_BOOT_TIMEOUT_MS */
  bootTimeoutMs?: number;
  /**
   * Give the sandbox a private copy of /etc (with an empty /etc/systemd/system), so `useradd`, installers
   * and `systemctl enable` inside never touch the host's. With `false`, only /etc/systemd/system is private.
   * @default true
   */
  privateEtc?: boolean;
  /**
   * More directories in systemd's unit path, after the sandbox's own (e.g. `/usr/lib/systemd/system`, where
   * packages put their units; mount an empty directory over it inside first, or the host's units load too).
   */
  extraUnitPaths?: readonly string[];
}

/** Options of {@link SystemdSandbox.exec} and {@link SystemdSandbox.spawn}. */
export interface SandboxCommandOptions {
  /** Working directory inside the sandbox. @default the caller's, which is the same path inside */
  cwd?: string;
  /** Environment. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** exec only: kill and reject after this long. @default SYSTEMD_COMMAND_TIMEOUT_MS */
  timeoutMs?: number;
  /** exec only: bytes for stdin. */
  input?: string | Uint8Array;
  /** spawn only: stdio as for child_process.spawn. @default ["ignore", "pipe", "pipe"] */
  stdio?: SpawnOptions["stdio"];
}

/** A real systemd, PID 1 of its own PID, mount, cgroup, UTS and IPC namespaces, sharing the host network. */
export interface SystemdSandbox {
  /** Host PID of the sandbox's systemd (PID 1 inside). */
  pid: number;
  /** The sandbox directory; the same path inside and outside the sandbox. Removed by stop(). */
  root: string;
  /** Directory in systemd's unit path, writable from the host: point the agent's `unitDir` here. */
  unitDir: string;
  /**
   * Host path of what the sandbox sees as /etc/systemd/system (also in the unit path): `systemctl enable`
   * writes its symlinks here instead of into the host's /etc.
   */
  configUnitDir: string;
  /** Host path of the sandbox's private /etc (`privateEtc`), or undefined when it shares the host's. */
  etcDir: string | undefined;
  /** systemd's own log (its /dev/kmsg is this file): unit state changes, start failures. */
  logPath: string;
  /**
   * Host path of the sandbox's cgroup (cgroup v2). systemd inside sees it as /sys/fs/cgroup, so a unit's
   * `ControlGroup` (e.g. `/system.slice/x.service`) is at `cgroupPath + ControlGroup` on the host.
   */
  cgroupPath: string;
  /** Runs a command inside the namespaces and collects its output; resolves with any exit code. */
  exec(cmd: string, args?: readonly string[], opts?: SandboxCommandOptions): Promise<CommandResult>;
  /**
   * Starts a long-running command inside the namespaces (e.g. the agent). `kill()` on the returned child
   * reaches the command itself, not only the nsenter in front of it; it dies with the sandbox at the latest.
   */
  spawn(cmd: string, args?: readonly string[], opts?: SandboxCommandOptions): ChildProcess;
  /** `systemctl <args>` inside the sandbox. */
  systemctl(...args: string[]): Promise<CommandResult>;
  /** Writes a unit file into {@link SystemdSandbox.unitDir} (call `systemctl daemon-reload` after). */
  writeUnit(name: string, content: string): Promise<string>;
  /** `systemctl show -p …` as a record. */
  unitProperties(unit: string, properties: readonly string[]): Promise<Record<string, string>>;
  /**
   * Polls until the unit's ActiveState or SubState equals `state` (e.g. "active", "inactive", "failed",
   * "running", "exited"). Rejects with the unit's status on timeout.
   */
  waitForUnitState(unit: string, state: string, timeoutMs?: number): Promise<void>;
  /** Host PIDs of every process in the unit's cgroup (and its sub-cgroups), read from the host. */
  unitHostPids(unit: string): Promise<number[]>;
  /** Host PID → PID inside the sandbox (from /proc/<pid>/status NSpid), or undefined if not in it. */
  sandboxPidOf(hostPid: number): Promise<number | undefined>;
  /** Kills everything in the sandbox (SIGKILL of its PID 1), removes its cgroup and directory. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Targets systemd needs to boot without errors; all empty. The sandbox boots `lk-sandbox.target`, which
 * pulls in nothing, so only units a test starts ever run.
 */
const STUB_TARGETS = [
  "default",
  "sysinit",
  "basic",
  "multi-user",
  "graphical",
  "network",
  "network-pre",
  "network-online",
  "nss-lookup",
  "nss-user-lookup",
  "remote-fs",
  "remote-fs-pre",
  "local-fs",
  "local-fs-pre",
  "sockets",
  "timers",
  "paths",
  "slices",
  "swap",
  "time-sync",
  "getty",
  "emergency",
  "rescue",
  "shutdown",
  "umount",
  "final",
];
const SANDBOX_TARGET = "lk-sandbox.target";

/**
 * Stage 1, PID 1 of the new PID/mount/UTS/IPC namespaces. Everything it mounts is private to the new mount
 * namespace. The private /tmp, /var/tmp and /dev/shm keep systemd and PrivateTmp= away from the host's; the private
 * /etc (or only /etc/systemd/system), /home and /var/lib/systemd catch `systemctl enable`, `useradd -m`,
 * installers and systemd's state. systemd logs to /dev/kmsg, here a file, instead of the host's kernel log. Then it moves itself
 * into the sandbox's own cgroup and enters a new cgroup namespace, so systemd's cgroup tree lives below that
 * cgroup instead of at the root of the host's hierarchy (where it would escape the test's memory cgroup
 * and collide with any other sandbox).
 */
const BOOT_STAGE1 = `#!/bin/bash
set -euo pipefail
root="$1" cgroup="$2" target="$3" shared="\${4:-}"
mount --make-rprivate /
# A checkout under /tmp, /var/tmp or /home would vanish below the private mounts: keep a view of it first.
if [ -n "$shared" ]; then mkdir -p "$root/shared"; mount --bind "$shared" "$root/shared"; fi
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
mount --bind "$root/var-tmp" /var/tmp
if [ -d "$root/etc" ]; then
  mount --bind "$root/etc" /etc
else
  mount --bind "$root/etc-systemd-system" /etc/systemd/system
fi
mount --bind "$root/home" /home
mount --bind "$root/var-lib-systemd" /var/lib/systemd
if [ -n "$shared" ]; then mkdir -p "$shared"; mount --bind "$root/shared" "$shared"; fi
if [ -e /dev/console ]; then mount --bind "$root/console.log" /dev/console; fi
if [ -e /dev/kmsg ]; then mount --bind "$root/systemd.log" /dev/kmsg; fi
# Cut from the host first (above), then shared again inside, as on a systemd host (systemd skips this step
# in a container): LoadCredential= and similar mount in a child namespace and rely on propagation back.
mount --make-rshared /
echo 0 > "$cgroup/cgroup.procs"
exec unshare --cgroup -- /bin/bash "$root/boot-stage2.sh" "$root" "$target"
`;

/**
 * Stage 2, inside the new cgroup namespace: a fresh cgroup2 mount whose root is the sandbox's cgroup, then
 * systemd. `container=` tells systemd it is in a container, which among other things keeps its shutdown
 * path from unmounting or remounting file systems (remount-ro acts on the shared superblock).
 */
const BOOT_STAGE2 = `#!/bin/bash
set -euo pipefail
root="$1" target="$2"
umount -R /sys/fs/cgroup
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup
SYSTEMD_UNIT_PATH=$(cat "$root/unit-path")
export SYSTEMD_UNIT_PATH
export container=lanekeeper-sandbox
# No generators: they would turn the host's fstab, init.d scripts and more into units.
export SYSTEMD_GENERATOR_PATH="$root/no-generators" SYSTEMD_ENVIRONMENT_GENERATOR_PATH="$root/no-generators"
exec /lib/systemd/systemd --system --unit="$target" --log-target=kmsg --show-status=no
`;

/** The repository checkout the harness runs from. */
const CHECKOUT = fileURLToPath(new URL("../../../", import.meta.url)).replace(/\/$/, "");

/**
 * The checkout, when it lies below a directory the sandbox replaces (/tmp, /var/tmp, /home): the sandbox mounts
 * it at the same path inside, so the agent and the CLIs run from it there as from anywhere else. Empty otherwise.
 */
function hiddenCheckout(): string {
  return /^\/(tmp|var\/tmp|home)\//.test(CHECKOUT) ? CHECKOUT : "";
}

/** In each sandbox directory: PID of the test process that owns it. */
const OWNER_FILE = "owner.pid";
/** In each sandbox directory: host path of its cgroup. */
const CGROUP_FILE = "cgroup.path";

/**
 * Removes what sandboxes of dead test processes left behind (a worker killed by a signal runs no cleanup;
 * its sandbox's processes died with it, see `--kill-child`). Sandboxes of live processes are left alone.
 */
async function sweepStaleSandboxes(baseDir: string): Promise<void> {
  for (const name of await readdir(baseDir).catch(() => [] as string[])) {
    if (!name.startsWith("lk-sd-")) continue;
    const dir = join(baseDir, name);
    const owner = Number((await readFile(join(dir, OWNER_FILE), "utf8").catch(() => "")).trim());
    if (!Number.isInteger(owner) || owner <= 0 || pidExists(owner)) continue;
    const cg = (await readFile(join(dir, CGROUP_FILE), "utf8").catch(() => "")).trim();
    if (cg.startsWith("/sys/fs/cgroup/") && basename(cg) === `lk-sandbox-${name}`) {
      if ((await cgroupPids(cg)).length > 0) continue;
      await removeCgroupTree(cg);
    }
    await rm(dir, { recursive: true, force: true });
  }
}

/** The default parent of sandbox directories. */
export function defaultSandboxBaseDir(): string {
  return process.env.LK_SANDBOX_DIR ?? stateDirFor("sd");
}

/**
 * Boots a real systemd (`/lib/systemd/systemd --system`) as PID 1 of new namespaces
 * (`unshare --pid --fork --mount-proc --mount --uts --ipc`, then `--cgroup`), with a unit path holding only
 * {@link SystemdSandbox.unitDir}, stub targets and a private /etc/systemd/system. Resolves once
 * `systemctl is-system-running` answers `running` or `degraded`. See test/harness/README.md, "Launchers",
 * for what works inside (cgroups, User=, hardening directives) and how to see unit processes from outside.
 */
export async function startSystemdSandbox(opts: SystemdSandboxOptions = {}): Promise<SystemdSandbox> {
  if (process.getuid?.() !== 0) throw new LauncherError("UNSUPPORTED_HOST", "the systemd sandbox needs root");
  const baseDir = resolve(opts.baseDir ?? defaultSandboxBaseDir());
  if (/^\/(var\/)?tmp(\/|$)/.test(baseDir)) {
    throw new LauncherError(
      "BAD_OPTIONS",
      `baseDir ${baseDir} is under /tmp or /var/tmp, which the sandbox replaces with private directories; ` +
        "the unit directory would not be the same path inside",
    );
  }
  await mkdir(baseDir, { recursive: true });
  await sweepStaleSandboxes(baseDir);
  const root = await makeTempDir("lk-sd-", baseDir);
  await writeFile(join(root, OWNER_FILE), `${process.pid}\n`);
  // Units with User= must traverse the sandbox directory to reach files a test puts there.
  await chmod(root, 0o755);
  const unitDir = join(root, "units");
  const privateEtc = opts.privateEtc ?? true;
  const etcDir = privateEtc ? join(root, "etc") : undefined;
  const configUnitDir = etcDir !== undefined ? join(etcDir, "systemd", "system") : join(root, "etc-systemd-system");
  const logPath = join(root, "systemd.log");
  let cgroupPath: string | undefined;
  let child: ChildProcess | undefined;
  try {
    await mkdir(unitDir, { mode: 0o755 });
    if (etcDir !== undefined) {
      const copy = await runCommand("cp", ["-a", "--", "/etc", etcDir]);
      if (copy.code !== 0) throw new LauncherError("LAUNCH_FAILED", `cannot copy /etc: ${copy.stderr.trim()}`);
      // The host's enabled units and aliases must not exist inside: only the test's units do.
      await rm(configUnitDir, { recursive: true, force: true });
    }
    await mkdir(configUnitDir, { mode: 0o755 });
    await mkdir(join(root, "home"), { mode: 0o755 });
    await mkdir(join(root, "var-lib-systemd"), { mode: 0o755 });
    await mkdir(join(root, "no-generators"));
    await mkdir(join(root, "var-tmp"));
    await chmod(join(root, "var-tmp"), 0o1777);
    await writeFile(join(root, "console.log"), "");
    await writeFile(logPath, "");
    await writeFile(join(root, "boot-stage1.sh"), BOOT_STAGE1, { mode: 0o755 });
    await writeFile(join(root, "boot-stage2.sh"), BOOT_STAGE2, { mode: 0o755 });
    await writeFile(join(root, "unit-path"), ["/etc/systemd/system", unitDir, ...(opts.extraUnitPaths ?? [])].join(":"));
    for (const t of STUB_TARGETS) {
      await writeFile(join(unitDir, `${t}.target`), `[Unit]\nDescription=${t} (lanekeeper sandbox stub)\n`);
    }
    await writeFile(join(unitDir, SANDBOX_TARGET), "[Unit]\nDescription=lanekeeper test sandbox\n");
    for (const [name, content] of Object.entries(opts.units ?? {})) await writeUnitFile(unitDir, name, content);

    cgroupPath = join(await hostCgroup2Dir(), `lk-sandbox-${basename(root)}`);
    await writeFile(join(root, CGROUP_FILE), cgroupPath);
    await mkdir(cgroupPath);

    const bootLog = join(root, "boot.log");
    const logFd = openSync(bootLog, "a");
    try {
      const argv = dieWithParent("unshare", [
        "--pid",
        "--fork",
        "--kill-child=SIGKILL",
        "--mount-proc",
        "--mount",
        "--uts",
        "--ipc",
        "--",
        "/bin/bash",
        join(root, "boot-stage1.sh"),
        root,
        cgroupPath,
        SANDBOX_TARGET,
        hiddenCheckout(),
      ]);
      child = spawnChild(argv.cmd, argv.args, { stdio: ["ignore", logFd, logFd] });
    } finally {
      closeSync(logFd);
    }
    const unshare = child;
    if (unshare.pid === undefined) throw new LauncherError("LAUNCH_FAILED", "cannot run unshare");
    killOnExit(unshare.pid);
    const bootTimeoutMs = opts.bootTimeoutMs ?? SYSTEMD_BOOT_TIMEOUT_MS;
    const diagnostics = async (): Promise<string> =>
      `boot log:\n${await readTail(bootLog, 2000)}\nsystemd log:\n${await readTail(logPath, 3000)}`;
    const abort = (): string | undefined =>
      unshare.exitCode !== null || unshare.signalCode !== null
        ? `the sandbox exited (code ${unshare.exitCode}, signal ${unshare.signalCode})`
        : undefined;
    const pid = await waitUntil(() => systemdChild(unshare.pid!), {
      timeoutMs: bootTimeoutMs,
      what: "the sandbox's PID 1 to exec systemd",
      abort,
      diagnostics,
    });
    killOnExit(pid);
    const sandbox = makeSandbox({ pid, root, unitDir, configUnitDir, etcDir, logPath, cgroupPath, unshare });
    await waitUntil(
      async () => {
        const r = await sandbox.systemctl("is-system-running");
        const state = r.stdout.trim();
        return state === "running" || state === "degraded" ? state : undefined;
      },
      { timeoutMs: bootTimeoutMs, what: "systemd in the sandbox to finish booting", abort, diagnostics },
    );
    return sandbox;
  } catch (e) {
    await teardown({ root, cgroupPath, unshare: child, pid: undefined });
    throw e;
  }
}

interface SandboxParts {
  pid: number;
  root: string;
  unitDir: string;
  configUnitDir: string;
  etcDir: string | undefined;
  logPath: string;
  cgroupPath: string;
  unshare: ChildProcess;
}

function makeSandbox(parts: SandboxParts): SystemdSandbox {
  const { pid, root, unitDir, configUnitDir, etcDir, logPath, cgroupPath, unshare } = parts;
  let stopped = false;
  // Commands join the sandbox's cgroup before entering its namespaces, so inside they see a cgroup below
  // their namespace root (like any process on a real host) and die with the sandbox.
  const harnessCgroup = join(cgroupPath, "lk-harness");
  const nsenterArgv = (cmd: string, args: readonly string[], cwd: string | undefined): string[] => [
    "-c",
    'mkdir -p "$0" && echo $$ > "$0/cgroup.procs" && exec "$@"',
    harnessCgroup,
    "nsenter",
    "-t",
    String(pid),
    "--mount",
    "--pid",
    "--cgroup",
    "--uts",
    "--ipc",
    ...(cwd !== undefined ? [`--wd=${cwd}`] : []),
    "--",
    "/usr/bin/setpriv",
    "--pdeathsig",
    "KILL",
    "--",
    cmd,
    ...args,
  ];

  const sandbox: SystemdSandbox = {
    pid,
    root,
    unitDir,
    configUnitDir,
    etcDir,
    logPath,
    cgroupPath,
    exec(cmd, args = [], o = {}) {
      return runCommand("/bin/sh", nsenterArgv(cmd, args, o.cwd), {
        timeoutMs: o.timeoutMs ?? SYSTEMD_COMMAND_TIMEOUT_MS,
        ...(o.env !== undefined ? { env: o.env } : {}),
        ...(o.input !== undefined ? { input: o.input } : {}),
      });
    },
    spawn(cmd, args = [], o = {}) {
      const c = spawnChild("/bin/sh", nsenterArgv(cmd, args, o.cwd), {
        stdio: o.stdio ?? ["ignore", "pipe", "pipe"],
        ...(o.env !== undefined ? { env: o.env } : {}),
      });
      // nsenter forks the command into the PID namespace and only waits for it; deliver signals to the
      // command itself. nsenter then exits the way the command did, so 'exit' still reports it.
      const kill = c.kill.bind(c);
      c.kill = (signal?: NodeJS.Signals | number): boolean => {
        const inner = c.pid !== undefined ? firstChild(c.pid) : undefined;
        if (inner === undefined) return kill(signal);
        try {
          process.kill(inner, signal ?? "SIGTERM");
          return true;
        } catch {
          return kill(signal);
        }
      };
      return c;
    },
    systemctl(...args) {
      return sandbox.exec("systemctl", args);
    },
    writeUnit(name, content) {
      return writeUnitFile(unitDir, name, content);
    },
    async unitProperties(unit, properties) {
      const r = await sandbox.systemctl("show", unit, ...properties.map((p) => `--property=${p}`));
      if (r.code !== 0) {
        throw new LauncherError("COMMAND_FAILED", `systemctl show ${unit} failed (${r.code}): ${r.stderr.trim()}`);
      }
      const out: Record<string, string> = {};
      for (const line of r.stdout.split("\n")) {
        const i = line.indexOf("=");
        if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
      }
      return out;
    },
    async waitForUnitState(unit, state, timeoutMs = SYSTEMD_BOOT_TIMEOUT_MS) {
      await waitUntil(
        async () => {
          const p = await sandbox.unitProperties(unit, ["ActiveState", "SubState"]);
          return p.ActiveState === state || p.SubState === state;
        },
        {
          timeoutMs,
          what: `${unit} to reach ${state}`,
          diagnostics: async () => (await sandbox.systemctl("status", "--no-pager", "--full", unit)).stdout,
        },
      );
    },
    async unitHostPids(unit) {
      const { ControlGroup: cg } = await sandbox.unitProperties(unit, ["ControlGroup"]);
      if (!cg) return [];
      return cgroupPids(join(cgroupPath, cg));
    },
    async sandboxPidOf(hostPid) {
      let status: string;
      try {
        status = await readFile(`/proc/${hostPid}/status`, "utf8");
      } catch {
        return undefined;
      }
      const ns = status.match(/^NSpid:\s+(.*)$/m)?.[1]?.trim().split(/\s+/).map(Number);
      // NSpid lists the PID in each namespace from the host's down; ours is one level below the host.
      return ns !== undefined && ns.length >= 2 && (await inSandbox(hostPid, pid)) ? ns[1] : undefined;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await teardown({ root, cgroupPath, unshare, pid });
    },
  };
  return sandbox;
}

/** True when `hostPid` lives in the PID namespace of the sandbox whose PID 1 is `sandboxPid`. */
async function inSandbox(hostPid: number, sandboxPid: number): Promise<boolean> {
  try {
    return (await readlink(`/proc/${hostPid}/ns/pid`)) === (await readlink(`/proc/${sandboxPid}/ns/pid`));
  } catch {
    return false;
  }
}

async function writeUnitFile(unitDir: string, name: string, content: string): Promise<string> {
  if (!/^[A-Za-z0-9:_.@-]+\.(service|socket|target|timer|path|mount|slice|scope)$/.test(name)) {
    throw new LauncherError("BAD_OPTIONS", `not a unit file name: ${JSON.stringify(name)}`);
  }
  const path = join(unitDir, name);
  await writeFile(path, content, { mode: 0o644 });
  return path;
}

/** The single child of `parentPid` once it runs systemd (the sandbox's PID 1 after its boot script). */
async function systemdChild(parentPid: number): Promise<number | undefined> {
  const child = firstChild(parentPid);
  if (child === undefined) return undefined;
  const exe = await readlink(`/proc/${child}/exe`).catch(() => "");
  return exe.endsWith("/systemd/systemd") ? child : undefined;
}

function firstChild(pid: number): number | undefined {
  try {
    // Synchronous on purpose: used from ChildProcess.kill, which is synchronous.
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8");
    const first = text.trim().split(/\s+/)[0];
    return first ? Number(first) : undefined;
  } catch {
    return undefined;
  }
}

/** Directory of the test process's own cgroup in the host's cgroup v2 hierarchy. */
async function hostCgroup2Dir(): Promise<string> {
  const mountinfo = await readFile("/proc/self/mountinfo", "utf8");
  let mountPoint: string | undefined;
  for (const line of mountinfo.split("\n")) {
    const [left, right] = line.split(" - ");
    if (right?.startsWith("cgroup2 ")) {
      mountPoint = left?.split(" ")[4];
      break;
    }
  }
  if (mountPoint === undefined) {
    throw new LauncherError("UNSUPPORTED_HOST", "no cgroup v2 hierarchy is mounted; the systemd sandbox needs one");
  }
  const own = (await readFile("/proc/self/cgroup", "utf8")).match(/^0::(.*)$/m)?.[1];
  if (own === undefined) throw new LauncherError("UNSUPPORTED_HOST", "this process is in no cgroup v2 cgroup");
  return join(mountPoint, own);
}

/** Every PID in a cgroup and its descendants. */
async function cgroupPids(dir: string): Promise<number[]> {
  const pids: number[] = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return pids;
  }
  const procs = await readFile(join(dir, "cgroup.procs"), "utf8").catch(() => "");
  for (const line of procs.split("\n")) if (line.trim()) pids.push(Number(line));
  for (const e of entries) if (e.isDirectory()) pids.push(...(await cgroupPids(join(dir, e.name))));
  return pids;
}

/** Removes a cgroup tree bottom-up (a cgroup can be removed only when empty and without children). */
async function removeCgroupTree(dir: string): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) await removeCgroupTree(join(dir, e.name));
  await rmdir(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== "ENOENT") throw e;
  });
}

async function teardown(t: {
  root: string;
  cgroupPath: string | undefined;
  unshare: ChildProcess | undefined;
  pid: number | undefined;
}): Promise<void> {
  // SIGKILL of a PID namespace's init makes the kernel kill every process in the namespace. SIGTERM would
  // not stop anything: to systemd as PID 1 it means "re-execute yourself".
  if (t.pid !== undefined && pidExists(t.pid)) process.kill(t.pid, "SIGKILL");
  if (t.unshare) {
    if (t.unshare.exitCode === null && t.unshare.signalCode === null && t.pid === undefined) t.unshare.kill("SIGKILL");
    await waitForExit(t.unshare, SYSTEMD_STOP_TIMEOUT_MS);
    if (t.unshare.pid !== undefined) forgetOnExit(t.unshare.pid);
  }
  if (t.pid !== undefined) forgetOnExit(t.pid);
  if (t.cgroupPath !== undefined) {
    const cg = t.cgroupPath;
    await waitUntil(async () => (await cgroupPids(cg)).length === 0, {
      timeoutMs: SYSTEMD_STOP_TIMEOUT_MS,
      what: `the processes in ${cg} to die`,
      diagnostics: async () => `left: ${(await cgroupPids(cg)).join(" ")}`,
    });
    await removeCgroupTree(cg);
  }
  await rm(t.root, { recursive: true, force: true });
}
