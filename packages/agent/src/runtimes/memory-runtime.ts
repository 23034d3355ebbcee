/**
 * An in-memory {@link LaneRuntime} with a fake runner process model, beside the real systemd and container
 * runtimes. It lets unit tests drive {@link LaneManager} in milliseconds and lets a fleet simulation run many
 * agents in one process. Time comes from an injected `Clock`; pids from a {@link MemoryProcessTable}; nothing
 * sleeps, nothing is random.
 *
 * The model follows the runner contract (`github-runner-contract.md`):
 * - `configure` is a `config.sh` child (its pid goes to `onChild`, so crash recovery can journal and kill it)
 *   that writes `.runner`; an ephemeral lane gets `.runner` from its JIT config at its first start;
 * - a started runner is a `Runner.Listener` that prints "Listening for Jobs"; a job is a live `Runner.Worker`
 *   (job evidence, reported as the real runtimes do: `cgroup` for systemd, `process-tree` for containers);
 * - when the listener returns, `run.sh` maps its code (section 2.4): 2, 3 and 4 restart the listener in place,
 *   7 exits 7, everything else exits 0; the lane's unit (`Restart=no`) or container is then stopped (exit 0) or
 *   failed (non-zero exit, or 128 + signal when the runner was killed);
 * - an ephemeral runner exits 0 after its one job and deletes `.runner`; a deleted registration makes the
 *   listener print the runner's "registration has been deleted" line and exit 1 (so `run.sh` exits 0).
 *
 * Ownership is modelled too: a unit or container this runtime created is `owned`; one planted with
 * {@link MemoryRuntime.plantForeign} is refused like a real one without a valid marker. Faults are injected one
 * call at a time with {@link MemoryRuntime.failNext}.
 */
import { type Clock, containerNameForLane, RejectError, RejectReason, systemClock, type UnmanagedRunner, unitNameForLane } from "@lanekeeper/shared";
import { RunnerConfigError, RuntimeError } from "../errors.js";
import type { LaneDirectories } from "../lanes/lane-directory.js";
import type { BackendName } from "../lanes/lane-marker.js";
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
import { MemoryProcessTable } from "./memory-processes.js";
import { JIT_ENV } from "../lanes/runner-cli.js";
import { REGISTRATION_DELETED_TEXT } from "../lanes/runner-settings.js";

/** The runtime methods a fault can be injected into. */
export type MemoryFaultPoint =
  | "create"
  | "configure"
  | "armJit"
  | "start"
  | "stop"
  | "restart"
  | "deregister"
  | "remove"
  | "inspect"
  | "jobEvidence";

/** Options of {@link MemoryRuntime}. */
export interface MemoryRuntimeOptions {
  /** The backend this runtime stands in for (unit or container names, job evidence source). @default "systemd" */
  readonly backend?: BackendName;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Shared with the `LaneManager` (its `processes` option) so recovery can kill a stray `config.sh`. */
  readonly processes?: MemoryProcessTable;
  /** First runner id handed out by the fake GitHub registration. @default 1 */
  readonly firstRunnerId?: number;
  /**
   * When given, a JIT config goes into the lane's 0600 env file and is wiped from it, as with the systemd
   * runtime, so the manager's wiping of used secrets is exercised. Without it the config is only flagged.
   */
  readonly dirs?: LaneDirectories;
}

/** What a test sees of one lane's unit or container. */
export interface MemoryLaneSnapshot {
  readonly activity: RuntimeActivity;
  readonly exitCode: number | undefined;
  /** `.runner` exists. */
  readonly configured: boolean;
  /** A JIT config waits in the lane's environment. */
  readonly jitArmed: boolean;
  readonly workerPids: readonly number[];
  /** Listener starts since the unit or container was created (including `run.sh` in-place restarts). */
  readonly starts: number;
}

interface MemoryLane {
  readonly laneId: string;
  readonly githubUrl: string;
  activity: RuntimeActivity;
  exitCode: number | undefined;
  startedAtMs: number | undefined;
  settings: RunnerSettings | undefined;
  jit: boolean;
  registrationDeleted: boolean;
  listenerPid: number | undefined;
  workerPids: number[];
  console: string[];
  starts: number;
}

/** Run.sh's result for a listener exit code (contract 2.4): `restart` or the code `run.sh` exits with. */
export function runShOutcome(listenerCode: number): "restart" | number {
  if (listenerCode === 2 || listenerCode === 3 || listenerCode === 4) return "restart";
  if (listenerCode === 7) return 7;
  return 0;
}

const SIGNALS: Readonly<Record<string, number>> = { SIGKILL: 9, SIGTERM: 15, SIGSEGV: 11, SIGABRT: 6 };

/** An in-memory lane backend with fake runners. */
export class MemoryRuntime implements LaneRuntime {
  readonly backend: BackendName;
  readonly processes: MemoryProcessTable;
  private readonly clock: Clock;
  private readonly dirs: LaneDirectories | undefined;
  private readonly lanes = new Map<string, MemoryLane>();
  private readonly foreign = new Map<string, RejectReason>();
  private readonly faults = new Map<MemoryFaultPoint, Error>();
  private nextRunnerId: number;

  constructor(opts: MemoryRuntimeOptions = {}) {
    this.backend = opts.backend ?? "systemd";
    this.clock = opts.clock ?? systemClock;
    this.processes = opts.processes ?? new MemoryProcessTable();
    this.nextRunnerId = opts.firstRunnerId ?? 1;
    this.dirs = opts.dirs;
  }

  // ------------------------------------------------------------------------------------------ test controls

  /** Make the next call of `point` throw `err` (default: a `RuntimeError`); one-shot. */
  failNext(point: MemoryFaultPoint, err?: Error): void {
    this.faults.set(point, err ?? new RuntimeError(`injected ${point} failure`));
  }

  /** A unit or container named like lane `laneId`'s that this agent does not own (`reason` as its check finds). */
  plantForeign(laneId: string, reason: RejectReason = RejectReason.NOT_OWNED): void {
    this.foreign.set(laneId, reason);
  }

  /** Lane ids with a unit or container of this runtime. */
  laneIds(): string[] {
    return [...this.lanes.keys()].sort();
  }

  /** The state of one lane's unit or container, or `undefined` when there is none. */
  snapshot(laneId: string): MemoryLaneSnapshot | undefined {
    const l = this.lanes.get(laneId);
    if (!l) return undefined;
    return {
      activity: l.activity,
      exitCode: l.exitCode,
      configured: l.settings !== undefined,
      jitArmed: l.jit,
      workerPids: [...l.workerPids],
      starts: l.starts,
    };
  }

  /** The runner picks up a job: a `Runner.Worker` starts. Returns its pid. */
  runJob(laneId: string, name = "build"): number {
    const l = this.running(laneId);
    const w = this.processes.spawn("Runner.Worker");
    l.workerPids.push(w.pid);
    this.print(l, `${this.utc()}: Running job: ${name}`);
    return w.pid;
  }

  /** The running job ends; an ephemeral runner then exits 0 and deletes `.runner`. */
  finishJob(laneId: string, result: "Succeeded" | "Failed" | "Canceled" = "Succeeded"): void {
    const l = this.running(laneId);
    this.killWorkers(l);
    this.print(l, `${this.utc()}: Job build completed with result: ${result}`);
    if (l.settings?.ephemeral) {
      l.settings = undefined;
      this.endRun(l, 0);
    }
  }

  /** The listener returns `listenerCode`; `run.sh` restarts it (2, 3, 4) or exits (see {@link runShOutcome}). */
  exitRunner(laneId: string, listenerCode: number): void {
    const l = this.running(laneId);
    this.killWorkers(l);
    const out = runShOutcome(listenerCode);
    if (out === "restart") {
      this.print(l, "Restarting runner...");
      this.launch(l);
      return;
    }
    this.print(l, "Exiting runner...");
    this.endRun(l, out);
  }

  /** The runner's process tree is killed by a signal (OOM killer, an operator's `kill`): the unit fails. */
  crash(laneId: string, signal: keyof typeof SIGNALS = "SIGKILL"): void {
    const l = this.running(laneId);
    this.killWorkers(l);
    this.endRun(l, 128 + (SIGNALS[signal] ?? 9));
  }

  /** GitHub deleted the lane's registration: the listener (now and at every later start) exits 1, printing why. */
  deleteRegistration(laneId: string): void {
    const l = this.mustGet(laneId);
    l.registrationDeleted = true;
    if (l.activity === "running") this.failSession(l);
  }

  // -------------------------------------------------------------------------------------------- LaneRuntime

  runtimeName(laneId: string): string {
    return this.backend === "systemd" ? unitNameForLane(laneId) : containerNameForLane(laneId);
  }

  checkOwnership(laneId: string): Promise<"owned" | "missing"> {
    const reason = this.foreign.get(laneId);
    if (reason !== undefined) {
      return Promise.reject(new RejectError(reason, `${this.runtimeName(laneId)} is not managed by this agent; it is left alone`, { details: { laneId } }));
    }
    return Promise.resolve(this.lanes.has(laneId) ? "owned" : "missing");
  }

  async create(lane: RuntimeLane): Promise<void> {
    const laneId = lane.record.laneId;
    this.fault("create");
    if ((await this.checkOwnership(laneId)) === "owned") {
      throw new RejectError(RejectReason.LANE_EXISTS, `${this.runtimeName(laneId)} exists already`, { details: { laneId } });
    }
    this.lanes.set(laneId, {
      laneId,
      githubUrl: lane.record.githubUrl,
      activity: "stopped",
      exitCode: undefined,
      startedAtMs: undefined,
      settings: undefined,
      jit: false,
      registrationDeleted: false,
      listenerPid: undefined,
      workerPids: [],
      console: [],
      starts: 0,
    });
  }

  async configure(lane: RuntimeLane, _registrationToken: Buffer, onChild?: (pid: number) => Promise<void>): Promise<void> {
    const l = await this.owned(lane.record.laneId);
    await this.configSh(l, onChild, "configure");
    l.settings = { agentId: this.nextRunnerId++, agentName: l.laneId, gitHubUrl: l.githubUrl, ephemeral: false };
  }

  async armJit(lane: RuntimeLane, jitConfig: Buffer): Promise<void> {
    const l = await this.owned(lane.record.laneId);
    this.fault("armJit");
    if (this.dirs) await this.dirs.writeEnv(l.laneId, { [JIT_ENV]: jitConfig });
    l.jit = true;
  }

  async clearSecrets(laneId: string): Promise<void> {
    if (this.dirs) await this.dirs.wipeEnv(laneId);
    const l = this.lanes.get(laneId);
    if (l) l.jit = false;
  }

  async start(laneId: string): Promise<void> {
    const l = await this.owned(laneId);
    this.fault("start");
    // `systemctl start` of an active unit does nothing.
    if (l.activity !== "running") this.launch(l);
  }

  async stop(laneId: string, guard?: () => Promise<void>): Promise<void> {
    const l = await this.owned(laneId);
    if (guard) await guard();
    this.fault("stop");
    this.terminate(l);
  }

  async restart(laneId: string, guard?: () => Promise<void>): Promise<void> {
    const l = await this.owned(laneId);
    if (guard) await guard();
    this.fault("restart");
    this.terminate(l);
    this.launch(l);
  }

  async deregister(lane: RuntimeLane, _removeToken: Buffer, onChild?: (pid: number) => Promise<void>): Promise<DeregisterOutcome> {
    const l = await this.owned(lane.record.laneId);
    if (!l.settings) return "not-configured";
    await this.configSh(l, onChild, "deregister");
    l.settings = undefined;
    return "removed";
  }

  async remove(laneId: string): Promise<void> {
    if ((await this.checkOwnership(laneId)) === "missing") return;
    this.fault("remove");
    const l = this.mustGet(laneId);
    this.terminate(l);
    this.lanes.delete(laneId);
  }

  async inspect(laneId: string): Promise<RuntimeStatus> {
    return (await this.inspectMany([laneId])).get(laneId) ?? { laneId, runtimeName: this.runtimeName(laneId), activity: "missing" };
  }

  inspectMany(laneIds: readonly string[]): Promise<Map<string, RuntimeStatus>> {
    const err = this.takeFault("inspect");
    if (err) return Promise.reject(err);
    const out = new Map<string, RuntimeStatus>();
    for (const laneId of laneIds) {
      const l = this.lanes.get(laneId);
      out.set(laneId, {
        laneId,
        runtimeName: this.runtimeName(laneId),
        activity: l ? l.activity : "missing",
        ...(l?.exitCode !== undefined ? { exitCode: l.exitCode } : {}),
        ...(l?.startedAtMs !== undefined ? { startedAtMs: l.startedAtMs } : {}),
      });
    }
    return Promise.resolve(out);
  }

  list(): Promise<RuntimeListing> {
    const kind = this.backend === "systemd" ? "systemd-unit" : "container";
    const unmanaged: UnmanagedRunner[] = [...this.foreign].map(([laneId, reason]) => ({
      kind,
      name: this.runtimeName(laneId),
      runnerName: "",
      githubUrl: "",
      reason: reason === RejectReason.NOT_OWNED ? "NO_MARKER" : reason,
      state: "",
    }));
    return Promise.resolve({ owned: this.laneIds().map((laneId) => ({ laneId, runtimeName: this.runtimeName(laneId) })), unmanaged });
  }

  jobEvidence(laneId: string): Promise<JobEvidence> {
    const err = this.takeFault("jobEvidence");
    if (err) return Promise.reject(err);
    const l = this.lanes.get(laneId);
    if (!l || (l.activity !== "running" && l.activity !== "stopping")) return Promise.resolve({ jobRunning: false, workerPids: [], source: "none" });
    const workers = l.workerPids.filter((pid) => this.processes.alive(pid));
    return Promise.resolve({ jobRunning: workers.length > 0, workerPids: workers, source: this.backend === "systemd" ? "cgroup" : "process-tree" });
  }

  runnerSettings(lane: RuntimeLane): Promise<RunnerSettings | undefined> {
    return Promise.resolve(this.lanes.get(lane.record.laneId)?.settings);
  }

  consoleTail(lane: RuntimeLane): Promise<string> {
    return Promise.resolve(this.lanes.get(lane.record.laneId)?.console.join("\n") ?? "");
  }

  engineName(): Promise<string> {
    return Promise.resolve("memory");
  }

  // ---------------------------------------------------------------------------------------------- the model

  private takeFault(point: MemoryFaultPoint): Error | undefined {
    const err = this.faults.get(point);
    this.faults.delete(point);
    return err;
  }

  private fault(point: MemoryFaultPoint): void {
    const err = this.takeFault(point);
    if (err) throw err;
  }

  private mustGet(laneId: string): MemoryLane {
    const l = this.lanes.get(laneId);
    if (!l) throw new RuntimeError(`${this.runtimeName(laneId)} does not exist`);
    return l;
  }

  private running(laneId: string): MemoryLane {
    const l = this.mustGet(laneId);
    if (l.activity !== "running") throw new RuntimeError(`the runner of ${laneId} is not running`);
    return l;
  }

  /** Ownership re-check before a mutation, as the real runtimes do. */
  private async owned(laneId: string): Promise<MemoryLane> {
    if ((await this.checkOwnership(laneId)) === "missing") {
      throw new RejectError(RejectReason.LANE_NOT_FOUND, `${this.runtimeName(laneId)} does not exist`, { details: { laneId } });
    }
    return this.mustGet(laneId);
  }

  /** A `config.sh` child: journaled through `onChild`; a kill while it runs (recovery) means it never finished. */
  private async configSh(l: MemoryLane, onChild: ((pid: number) => Promise<void>) | undefined, point: "configure" | "deregister"): Promise<void> {
    const child = this.processes.spawn("config.sh");
    if (onChild) await onChild(child.pid);
    if (!this.processes.alive(child.pid, child.startTime)) throw new RuntimeError(`config.sh of ${l.laneId} was killed`);
    this.processes.exit(child.pid);
    const err = this.takeFault(point);
    if (err) {
      throw new RunnerConfigError(point === "configure" ? "RUNNER_CONFIGURE_FAILED" : "RUNNER_REMOVE_FAILED", `${point} of lane ${l.laneId} failed: ${err.message}`, {
        details: { laneId: l.laneId },
      });
    }
  }

  private utc(): string {
    return `${new Date(this.clock.now()).toISOString().slice(0, 19).replace("T", " ")}Z`;
  }

  private print(l: MemoryLane, line: string): void {
    l.console.push(line);
  }

  /** Start the listener (a new run: the console tail starts afresh, as after the runtimes' start mark). */
  private launch(l: MemoryLane): void {
    if (l.activity !== "running") l.console = [];
    l.starts++;
    l.startedAtMs = this.clock.now();
    l.exitCode = undefined;
    this.print(l, "√ Connected to GitHub");
    if (!l.settings && l.jit) {
      // The runner writes .runner from its JIT config at its first start.
      l.settings = { agentId: this.nextRunnerId++, agentName: l.laneId, gitHubUrl: l.githubUrl, ephemeral: true };
    }
    if (!l.settings) {
      this.print(l, "An error occurred: Not configured. Run config.(sh/cmd) to configure the runner.");
      this.endRun(l, runShOutcome(1) as number);
      return;
    }
    if (l.registrationDeleted) {
      this.failSession(l);
      return;
    }
    if (l.listenerPid === undefined || !this.processes.alive(l.listenerPid)) l.listenerPid = this.processes.spawn("Runner.Listener").pid;
    l.activity = "running";
    this.print(l, `${this.utc()}: Listening for Jobs`);
  }

  private failSession(l: MemoryLane): void {
    this.killWorkers(l);
    this.print(l, `Failed to create a session. The runner ${REGISTRATION_DELETED_TEXT} from the server, please re-configure.`);
    this.endRun(l, runShOutcome(1) as number);
  }

  /** The main process ended with `code`: `Restart=no`, so the unit is inactive (0) or failed. */
  private endRun(l: MemoryLane, code: number): void {
    this.killWorkers(l);
    if (l.listenerPid !== undefined) this.processes.exit(l.listenerPid);
    l.listenerPid = undefined;
    l.activity = code === 0 ? "stopped" : "failed";
    l.exitCode = code;
  }

  /** SIGTERM from a stop: running jobs are cancelled and the listener exits 0. */
  private terminate(l: MemoryLane): void {
    if (l.activity !== "running") return;
    this.print(l, "Exiting...");
    this.endRun(l, 0);
  }

  private killWorkers(l: MemoryLane): void {
    for (const pid of l.workerPids) this.processes.exit(pid);
    l.workerPids = [];
  }
}
