/**
 * Systemd lanes: one `lanekeeper-lane-<laneId>.service` per lane in the configured unit directory, carrying the
 * ownership keys, hardening and `Restart=no` (the agent restarts with backoff and a cap). `systemctl` runs through
 * an injected {@link CommandRunner} with argv arrays, `--` before unit names and a timeout. The runner is
 * configured by running the lane's own `config.sh` as a child of the agent, the token only in its environment.
 */
import { appendFile, open, readdir, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import { RejectError, RejectReason, type RunnerDownload, type UnmanagedRunner, unitNameForLane } from "@lanekeeper/shared";
import { readSmallFile, unlinkDurable, writeFileAtomic } from "../atomic-file.js";
import { execFileRunner, type CommandRunner } from "./command-runner.js";
import { RunnerConfigError, RuntimeError } from "../errors.js";
import type { LaneDirectories, SwapStep } from "../lanes/lane-directory.js";
import type { LaneRecord, MarkerSigner } from "../lanes/lane-marker.js";
import type {
  DeregisterOutcome,
  JobEvidence,
  LaneRuntime,
  RunnerSettings,
  RuntimeActivity,
  RuntimeLane,
  RuntimeListing,
  RuntimeStatus,
} from "./lane-runtime.js";
import { CONSOLE_TAIL_BYTES, MAX_RUNNER_FILE_BYTES, MAX_UNIT_FILE_BYTES, RUNNER_CONFIG_TIMEOUT_MS, SYSTEMCTL_TIMEOUT_MS } from "../limits.js";
import { CGROUP_ROOTS, cgroupPids, runnerWorkers } from "./proc-scan.js";
import { classifyRunnerFailure, configureArgs, JIT_ENV, TOKEN_ENV } from "../lanes/runner-cli.js";
import { parseRunnerSettings } from "../lanes/runner-settings.js";
import { checkPathUnder } from "../safe-path.js";
import { parseUnitFile, renderLaneUnit, unitMarkerKeys } from "./systemd-unit.js";
import type { UserAccount } from "../lanes/user-account.js";
import type { RunnerDist } from "../runner-dist/runner-dist.js";

/** Options of {@link SystemdRuntime}. */
export interface SystemdRuntimeOptions {
  readonly hostId: string;
  /** Where lane units are written. @default "/etc/systemd/system" */
  readonly unitDir: string;
  readonly signer: MarkerSigner;
  readonly dirs: LaneDirectories;
  /** Directory holding the runner versions (operator-staged `<runnerVersion>/`, or verified downloads). */
  readonly runnerDistPath: string;
  /**
   * Verified runner downloads (fetch, check, unpack, share). Unset: only operator-staged
   * `<runnerDistPath>/<runnerVersion>/` trees are used, and a create carrying a download is refused.
   */
  readonly runnerDist?: RunnerDist;
  /** The user lanes run as (`User=`) and `config.sh` runs as. */
  readonly user: UserAccount;
  /** Runs `systemctl` (argv starts with {@link SystemdRuntimeOptions.systemctlPath}). @default execFileRunner */
  readonly systemctl?: CommandRunner;
  /** Runs `config.sh` on this host. @default execFileRunner */
  readonly commands?: CommandRunner;
  /** @default "systemctl" */
  readonly systemctlPath?: string;
  /** cgroup hierarchy mount points searched for a unit's processes. */
  readonly cgroupRoots?: readonly string[];
  /** Unit hardening lines; defaults to `LANE_UNIT_HARDENING`. */
  readonly hardening?: readonly string[];
  /** Search path given to `config.sh`. */
  readonly path?: string;
}

/** Marker line the agent appends to a lane's console log before each start, so a tail covers one run. */
export const CONSOLE_START_MARK = "=== lanekeeper-agent: runner start ===";
/** Console logs are cut back to their tail when they grow past this at a start. */
const CONSOLE_ROTATE_BYTES = 4 * 1024 * 1024;

const SHOW_PROPS = ["Id", "LoadState", "ActiveState", "SubState", "ExecMainStatus", "ExecMainCode", "ExecMainStartTimestamp", "FragmentPath", "ControlGroup"];

type ShowBlock = Readonly<Record<string, string>>;

/** Parse `systemctl show` output: blocks separated by blank lines, `Key=value` lines. */
export function parseShowOutput(text: string): ShowBlock[] {
  const blocks: Record<string, string>[] = [];
  let cur: Record<string, string> | undefined;
  for (const line of text.split("\n")) {
    if (line.trim() === "") {
      cur = undefined;
      continue;
    }
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    if (!cur) {
      cur = Object.create(null) as Record<string, string>;
      blocks.push(cur);
    }
    cur[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return blocks;
}

function activityOf(b: ShowBlock | undefined): RuntimeActivity {
  if (!b || b.LoadState === "not-found" || b.LoadState === undefined) return "missing";
  switch (b.ActiveState) {
    case "active":
      return "running";
    case "activating":
    case "reloading":
      return "starting";
    case "deactivating":
      return "stopping";
    case "failed":
      return "failed";
    default:
      return "stopped";
  }
}

function exitCodeOf(b: ShowBlock | undefined): number | undefined {
  const status = Number.parseInt(b?.ExecMainStatus ?? "", 10);
  const code = Number.parseInt(b?.ExecMainCode ?? "", 10);
  if (!Number.isFinite(status) || !Number.isFinite(code) || code === 0) return undefined;
  // CLD_EXITED = 1: a plain exit status; otherwise the status is a signal number (shell convention 128+n).
  return code === 1 ? status : 128 + status;
}

function timestampOf(v: string | undefined): number | undefined {
  if (!v || v === "n/a") return undefined;
  // "Fri 2026-11-27 20:56:55 UTC": drop the weekday.
  const t = Date.parse(v.replace(/^[A-Za-z]{3} /, ""));
  return Number.isFinite(t) ? t : undefined;
}

/** The systemd backend. */
export class SystemdRuntime implements LaneRuntime {
  readonly backend = "systemd" as const;
  private readonly systemctlRunner: CommandRunner;
  private readonly commands: CommandRunner;
  private readonly systemctlPath: string;
  /** Control group of each unit as systemd last reported it (a unit's cgroup path does not change). */
  private readonly cgroups = new Map<string, string>();

  constructor(private readonly opts: SystemdRuntimeOptions) {
    this.systemctlRunner = opts.systemctl ?? execFileRunner;
    this.commands = opts.commands ?? execFileRunner;
    this.systemctlPath = opts.systemctlPath ?? "systemctl";
  }

  runtimeName(laneId: string): string {
    return unitNameForLane(laneId);
  }

  private unitPath(laneId: string): string {
    return join(this.opts.unitDir, this.runtimeName(laneId));
  }

  private async systemctl(args: readonly string[], what: string): Promise<string> {
    const res = await this.systemctlRunner.run([this.systemctlPath, ...args], { timeoutMs: SYSTEMCTL_TIMEOUT_MS });
    if (res.code !== 0) {
      const first = (res.stderr.split("\n").find((l) => l.trim() !== "") ?? "").slice(0, 200);
      throw new RuntimeError(`systemctl ${what} failed (exit ${res.code ?? res.signal ?? "?"}): ${first}`);
    }
    return res.stdout;
  }

  private async show(units: readonly string[], props: readonly string[] = SHOW_PROPS): Promise<ShowBlock[]> {
    if (units.length === 0) return [];
    const out = await this.systemctl(["show", `--property=${props.join(",")}`, "--", ...units], "show");
    return parseShowOutput(out);
  }

  /**
   * Read the unit file and check its marker. `missing` when no file; throws `RejectError` for a symlink, a
   * unit without markers, another host's or lane's marker, or a marker that does not verify.
   */
  async checkOwnership(laneId: string): Promise<"owned" | "missing"> {
    const name = this.runtimeName(laneId);
    const st = await checkPathUnder(this.opts.unitDir, name);
    if (st === "missing") return "missing";
    if (st !== "file") throw new RejectError(RejectReason.NOT_OWNED, `${this.unitPath(laneId)} is not a regular file`, { details: { laneId } });
    let buf: Buffer | undefined;
    try {
      buf = await readSmallFile(this.unitPath(laneId), MAX_UNIT_FILE_BYTES);
    } catch (err) {
      throw new RejectError(RejectReason.NOT_OWNED, `${this.unitPath(laneId)} cannot be read safely`, { cause: err, details: { laneId } });
    }
    if (!buf) return "missing";
    this.verifyUnitText(buf.toString("utf8"), laneId, name);
    return "owned";
  }

  private verifyUnitText(text: string, laneId: string, name: string): void {
    const keys = unitMarkerKeys(parseUnitFile(text));
    const details = { laneId, unit: name };
    if (keys.lane === undefined && keys.host === undefined && !keys.duplicated) {
      throw new RejectError(RejectReason.NOT_OWNED, `unit ${name} has no lanekeeper marker; it is not managed and is left alone`, { details });
    }
    if (keys.duplicated) throw new RejectError(RejectReason.BAD_MARKER, `unit ${name} repeats a marker key`, { details });
    if (keys.host !== this.opts.hostId) {
      throw new RejectError(RejectReason.FOREIGN_HOST, `unit ${name} carries the marker of host ${keys.host ?? "(none)"}`, { details });
    }
    if (keys.lane !== laneId) throw new RejectError(RejectReason.BAD_MARKER, `unit ${name} carries the marker of lane ${keys.lane ?? "(none)"}`, { details });
    if (keys.marker === undefined || !this.opts.signer.verifyRuntimeMarker(keys.marker, laneId, "systemd", name)) {
      throw new RejectError(RejectReason.BAD_MARKER, `unit ${name} has a marker that does not verify with this agent's key`, { details });
    }
  }

  /**
   * Ownership check right before a mutation: the file's marker, and that systemd really loads this unit from our
   * file (a same-named unit earlier in systemd's search path would shadow it).
   */
  private async assertOwned(laneId: string): Promise<string> {
    const name = this.runtimeName(laneId);
    if ((await this.checkOwnership(laneId)) === "missing") {
      throw new RejectError(RejectReason.LANE_NOT_FOUND, `unit ${name} does not exist`, { details: { laneId } });
    }
    const [b] = await this.show([name], ["LoadState", "FragmentPath"]);
    if (b?.LoadState === "loaded" && b.FragmentPath !== undefined && b.FragmentPath !== this.unitPath(laneId)) {
      throw new RejectError(RejectReason.NOT_OWNED, `systemd loads ${name} from ${b.FragmentPath}, not from the agent's unit directory`, {
        details: { laneId, fragmentPath: b.FragmentPath },
      });
    }
    return name;
  }

  async create(lane: RuntimeLane): Promise<void> {
    const r = lane.record;
    const name = this.runtimeName(r.laneId);
    const existing = await this.checkOwnership(r.laneId);
    if (existing === "owned") throw new RejectError(RejectReason.LANE_EXISTS, `unit ${name} exists already`, { details: { laneId: r.laneId } });
    const [loaded] = await this.show([name], ["LoadState", "FragmentPath"]);
    if (loaded?.LoadState === "loaded" && loaded.FragmentPath !== undefined && loaded.FragmentPath !== "") {
      throw new RejectError(RejectReason.NOT_OWNED, `systemd already has a unit ${name} (${loaded.FragmentPath}); it is left alone`, {
        details: { laneId: r.laneId },
      });
    }
    const dirs = this.opts.dirs;
    await this.withRunnerDist(r.laneId, r.runnerVersion, lane.runnerDownload, (dist) => dirs.copyRunner(r.laneId, dist, this.opts.user.uid, this.opts.user.gid));
    await dirs.writeEnv(r.laneId, {});
    await dirs.touchLog(r.laneId);
    const text = renderLaneUnit({
      laneId: r.laneId,
      hostId: this.opts.hostId,
      marker: this.opts.signer.runtimeMarker(r.laneId, "systemd", name),
      description: `lanekeeper lane ${r.laneId} (${r.scope} ${r.pool})`,
      user: this.opts.user.name,
      runnerDir: dirs.runnerDir(r.laneId),
      envFile: dirs.envFile(r.laneId),
      logFile: dirs.logFile(r.laneId),
      allowRoot: this.opts.user.uid === 0,
      cpuMillis: r.cpuMillis,
      memoryBytes: r.memoryBytes,
      ...(this.opts.hardening ? { hardening: this.opts.hardening } : {}),
    });
    // Re-check right before writing: nothing may have appeared at the unit path meanwhile.
    if ((await checkPathUnder(this.opts.unitDir, name)) !== "missing") {
      throw new RejectError(RejectReason.NOT_OWNED, `${this.unitPath(r.laneId)} appeared while the lane was being created`, {
        details: { laneId: r.laneId },
      });
    }
    await writeFileAtomic(this.unitPath(r.laneId), text, 0o644);
    await this.systemctl(["daemon-reload"], "daemon-reload");
  }

  /** Run `fn` with the unpacked tree of `version` (verified download or operator-staged), kept from pruning meanwhile. */
  private async withRunnerDist(laneId: string, version: string, download: RunnerDownload | undefined, fn: (dist: string) => Promise<void>): Promise<void> {
    if (this.opts.runnerDist !== undefined) {
      const rd = this.opts.runnerDist;
      const dist = await rd.resolve(version, download);
      await rd.using(dist, () => fn(dist));
      return;
    }
    if (download !== undefined) {
      throw new RejectError(RejectReason.NOT_ALLOWED_ACTION, "this agent has no runner download cache configured", { details: { laneId } });
    }
    const dist = join(this.opts.runnerDistPath, version);
    const distStat = await stat(join(dist, "run.sh")).catch(() => undefined);
    if (!distStat?.isFile()) {
      throw new RejectError(RejectReason.NOT_ALLOWED_ACTION, `runner version ${version} is not installed under ${this.opts.runnerDistPath}`, {
        details: { laneId },
      });
    }
    await fn(dist);
  }

  async swapRunner(lane: RuntimeLane, runnerVersion: string, download: RunnerDownload | undefined, onStep?: (step: SwapStep) => Promise<void>): Promise<void> {
    const r = lane.record;
    await this.opts.dirs.read(r.laneId, { backend: "systemd", runtimeName: this.runtimeName(r.laneId) });
    if ((await this.checkOwnership(r.laneId)) !== "owned") throw new RejectError(RejectReason.LANE_NOT_FOUND, `unit of lane ${r.laneId} does not exist`);
    await this.withRunnerDist(r.laneId, runnerVersion, download, (dist) => this.opts.dirs.swapRunner(r.laneId, dist, this.opts.user.uid, this.opts.user.gid, onStep));
  }

  private runnerEnv(extra: Record<string, string>): Record<string, string> {
    return {
      PATH: this.opts.path ?? process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
      HOME: this.opts.user.home,
      LANG: "C.UTF-8",
      ...(this.opts.user.uid === 0 ? { RUNNER_ALLOW_RUNASROOT: "1" } : {}),
      ...extra,
    };
  }

  async configure(lane: RuntimeLane, registrationToken: Buffer, onChild?: (pid: number) => Promise<void>): Promise<void> {
    const r = lane.record;
    await this.opts.dirs.read(r.laneId, { backend: "systemd", runtimeName: this.runtimeName(r.laneId) });
    await this.runConfigSh(r, configureArgs(r), registrationToken, onChild, "RUNNER_CONFIGURE_FAILED", "registering");
  }

  /** Runs the lane's `config.sh` as the lane user, the token only in its environment; a failure is classified. */
  private async runConfigSh(
    r: LaneRecord,
    args: readonly string[],
    token: Buffer,
    onChild: ((pid: number) => Promise<void>) | undefined,
    code: "RUNNER_CONFIGURE_FAILED" | "RUNNER_REMOVE_FAILED",
    verb: string,
  ): Promise<void> {
    const laneId = r.laneId;
    const runnerDir = this.opts.dirs.runnerDir(laneId);
    const res = await this.commands.run([join(runnerDir, "config.sh"), ...args], {
      cwd: runnerDir,
      env: this.runnerEnv({ [TOKEN_ENV]: token.toString("utf8") }),
      uid: this.opts.user.uid,
      gid: this.opts.user.gid,
      timeoutMs: RUNNER_CONFIG_TIMEOUT_MS,
      ...(onChild ? { onSpawn: onChild } : {}),
    });
    if (res.code !== 0) {
      const f = classifyRunnerFailure(`${res.stdout}\n${res.stderr}`, r);
      throw new RunnerConfigError(code, `${verb} lane ${laneId} failed: ${f.text}`, {
        details: { laneId, runnerCode: f.code, exitCode: res.code },
      });
    }
  }

  async armJit(lane: RuntimeLane, jitConfig: Buffer): Promise<void> {
    await this.opts.dirs.writeEnv(lane.record.laneId, { [JIT_ENV]: jitConfig });
  }

  async clearSecrets(laneId: string): Promise<void> {
    await this.opts.dirs.wipeEnv(laneId);
  }

  private async markConsole(laneId: string): Promise<void> {
    const log = this.opts.dirs.logFile(laneId);
    if ((await checkPathUnder(this.opts.dirs.root, join(laneId, "runner.log"))) !== "file") return;
    const st = await stat(log);
    if (st.size > CONSOLE_ROTATE_BYTES) await truncate(log, 0);
    await appendFile(log, `${CONSOLE_START_MARK}\n`);
  }

  async start(laneId: string): Promise<void> {
    const name = await this.assertOwned(laneId);
    await this.markConsole(laneId);
    await this.systemctl(["start", "--", name], `start ${name}`);
  }

  async stop(laneId: string, guard?: () => Promise<void>): Promise<void> {
    const name = await this.assertOwned(laneId);
    if (guard) await guard();
    await this.systemctl(["stop", "--", name], `stop ${name}`);
  }

  async restart(laneId: string, guard?: () => Promise<void>): Promise<void> {
    const name = await this.assertOwned(laneId);
    await this.markConsole(laneId);
    if (guard) await guard();
    await this.systemctl(["restart", "--", name], `restart ${name}`);
  }

  async deregister(lane: RuntimeLane, removeToken: Buffer, onChild?: (pid: number) => Promise<void>): Promise<DeregisterOutcome> {
    const r = lane.record;
    await this.opts.dirs.read(r.laneId, { backend: "systemd", runtimeName: this.runtimeName(r.laneId) });
    if (!(await this.runnerSettings(lane))) return "not-configured";
    await this.runConfigSh(r, ["remove"], removeToken, onChild, "RUNNER_REMOVE_FAILED", "deregistering");
    return "removed";
  }

  async remove(laneId: string): Promise<void> {
    const name = this.runtimeName(laneId);
    if ((await this.checkOwnership(laneId)) === "missing") return;
    await this.assertOwned(laneId);
    await this.systemctl(["stop", "--", name], `stop ${name}`);
    // reset-failed fails harmlessly when the unit is not in the failed state.
    await this.systemctlRunner.run([this.systemctlPath, "reset-failed", "--", name], { timeoutMs: SYSTEMCTL_TIMEOUT_MS }).catch(() => undefined);
    // Re-check once more right before the unlink: the file must still be ours.
    await this.checkOwnership(laneId);
    await unlinkDurable(this.unitPath(laneId));
    await this.systemctl(["daemon-reload"], "daemon-reload");
  }

  async inspect(laneId: string): Promise<RuntimeStatus> {
    const all = await this.inspectMany([laneId]);
    return all.get(laneId) ?? { laneId, runtimeName: this.runtimeName(laneId), activity: "missing" };
  }

  async inspectMany(laneIds: readonly string[]): Promise<Map<string, RuntimeStatus>> {
    const names = laneIds.map((id) => this.runtimeName(id));
    const blocks = await this.show(names);
    const byName = new Map(blocks.map((b) => [b.Id ?? "", b]));
    const out = new Map<string, RuntimeStatus>();
    laneIds.forEach((laneId, i) => {
      const runtimeName = names[i] ?? "";
      const b = byName.get(runtimeName);
      if (b?.ControlGroup) this.cgroups.set(runtimeName, b.ControlGroup);
      const exitCode = exitCodeOf(b);
      const startedAtMs = timestampOf(b?.ExecMainStartTimestamp);
      out.set(laneId, {
        laneId,
        runtimeName,
        activity: activityOf(b),
        ...(exitCode !== undefined ? { exitCode } : {}),
        ...(startedAtMs !== undefined ? { startedAtMs } : {}),
      });
    });
    return out;
  }

  async list(): Promise<RuntimeListing> {
    const entries = await readdir(this.opts.unitDir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return [] as string[];
      throw err;
    });
    const owned: { laneId: string; runtimeName: string }[] = [];
    const unmanaged: UnmanagedRunner[] = [];
    const foreignRunnerUnits: string[] = [];
    for (const name of entries.sort()) {
      const m = /^lanekeeper-lane-([a-z0-9][a-z0-9-]{0,62})\.service$/.exec(name);
      if (m?.[1]) {
        try {
          await this.checkOwnership(m[1]);
          owned.push({ laneId: m[1], runtimeName: name });
        } catch (err) {
          const reason = err instanceof RejectError ? (err.reason === RejectReason.NOT_OWNED ? "NO_MARKER" : err.reason) : "UNREADABLE";
          unmanaged.push({ kind: "systemd-unit", name, runnerName: "", githubUrl: "", reason, state: "" });
        }
      } else if (/^actions\.runner\..+\.service$/.test(name)) {
        foreignRunnerUnits.push(name);
      }
    }
    const states = new Map<string, string>();
    if (foreignRunnerUnits.length > 0 || unmanaged.length > 0) {
      const blocks = await this.show([...foreignRunnerUnits, ...unmanaged.map((u) => u.name)], ["Id", "ActiveState", "WorkingDirectory"]).catch(
        () => [],
      );
      for (const b of blocks) if (b.Id) states.set(b.Id, b.ActiveState ?? "");
      for (const name of foreignRunnerUnits) {
        const info = await this.handmadeRunnerInfo(name, blocks.find((b) => b.Id === name)?.WorkingDirectory);
        unmanaged.push({ kind: "systemd-unit", name, ...info, reason: "NO_MARKER", state: states.get(name) ?? "" });
      }
      for (const u of unmanaged) if (u.state === "") u.state = states.get(u.name) ?? "";
    }
    return { owned, unmanaged };
  }

  /** Runner name and URL of a hand-made runner unit, read (never written) from its `.runner`. */
  private async handmadeRunnerInfo(unit: string, workingDirectory: string | undefined): Promise<{ runnerName: string; githubUrl: string }> {
    let dir = workingDirectory;
    if (!dir) {
      const text = (await readSmallFile(join(this.opts.unitDir, unit), MAX_UNIT_FILE_BYTES).catch(() => undefined))?.toString("utf8");
      dir = text ? parseUnitFile(text).get("Service.WorkingDirectory")?.[0] : undefined;
    }
    if (!dir?.startsWith("/")) return { runnerName: "", githubUrl: "" };
    const buf = await readSmallFile(join(dir, ".runner"), MAX_RUNNER_FILE_BYTES).catch(() => undefined);
    const s = buf ? parseRunnerSettings(buf.toString("utf8")) : undefined;
    return { runnerName: s?.agentName ?? "", githubUrl: s?.gitHubUrl ?? "" };
  }

  async jobEvidence(laneId: string): Promise<JobEvidence> {
    const name = this.runtimeName(laneId);
    const roots = this.opts.cgroupRoots ?? CGROUP_ROOTS;
    // Fast path (inventory of many lanes): the known cgroup, read directly. Only an existing cgroup is trusted;
    // a missing one falls through to asking systemd, which is authoritative.
    const known = this.cgroups.get(name);
    if (known) {
      const pids = await cgroupPids(known, roots);
      if (pids !== undefined) {
        const workers = await runnerWorkers(pids);
        return { jobRunning: workers.length > 0, workerPids: workers, source: "cgroup" };
      }
    }
    const [b] = await this.show([name], ["ActiveState", "ControlGroup"]);
    const cg = b?.ControlGroup ?? "";
    if (cg === "") {
      if (b?.ActiveState === "active" || b?.ActiveState === "deactivating" || b?.ActiveState === "activating") {
        throw new RuntimeError(`unit ${name} is ${b.ActiveState} but has no control group: job evidence unavailable`);
      }
      return { jobRunning: false, workerPids: [], source: "none" };
    }
    this.cgroups.set(name, cg);
    const pids = await cgroupPids(cg, roots);
    if (pids === undefined) throw new RuntimeError(`control group ${cg} of ${name} is not readable: job evidence unavailable`);
    const workers = await runnerWorkers(pids);
    return { jobRunning: workers.length > 0, workerPids: workers, source: "cgroup" };
  }

  async runnerSettings(lane: RuntimeLane): Promise<RunnerSettings | undefined> {
    const laneId = lane.record.laneId;
    const rel = join(laneId, "runner", ".runner");
    if ((await checkPathUnder(this.opts.dirs.root, rel)) !== "file") return undefined;
    const buf = await readSmallFile(join(this.opts.dirs.root, rel), MAX_RUNNER_FILE_BYTES);
    return buf ? parseRunnerSettings(buf.toString("utf8")) : undefined;
  }

  async consoleTail(lane: RuntimeLane): Promise<string> {
    const laneId = lane.record.laneId;
    if ((await checkPathUnder(this.opts.dirs.root, join(laneId, "runner.log"))) !== "file") return "";
    const buf = await readTail(this.opts.dirs.logFile(laneId), CONSOLE_TAIL_BYTES);
    const at = buf.lastIndexOf(CONSOLE_START_MARK);
    return at >= 0 ? buf.slice(at + CONSOLE_START_MARK.length) : buf;
  }
}

async function readTail(path: string, bytes: number): Promise<string> {
  const fh = await open(path, "r");
  try {
    const st = await fh.stat();
    const len = Math.min(bytes, st.size);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, st.size - len);
    return buf.toString("utf8");
  } finally {
    await fh.close();
  }
}
