/**
 * The one interface both lane backends implement. A runtime owns the unit or container of a lane and how the
 * runner inside it is configured; the lane directory, state, audit and serialization belong to
 * {@link LaneManager}. Every mutating method re-checks the runtime's ownership marker right before it acts and
 * throws `RejectError` (`NOT_OWNED`, `FOREIGN_HOST`, `BAD_MARKER`, `SYMLINK`, `INVALID_NAME`) instead of touching
 * anything it does not own.
 */
import type { RunnerDownload, UnmanagedRunner } from "@lanekeeper/shared";
import type { SwapStep } from "../lanes/lane-directory.js";
import type { BackendName, LaneRecord } from "../lanes/lane-marker.js";

/** What a runtime needs to build a lane. */
export interface RuntimeLane {
  readonly record: LaneRecord;
  /** `<laneRoot>/<laneId>`. */
  readonly laneDir: string;
  /** systemd: where to fetch `record.runnerVersion` (from the create intent); absent = an operator-staged version. */
  readonly runnerDownload?: RunnerDownload | undefined;
}

/** Coarse state of a unit or container. */
export type RuntimeActivity = "running" | "starting" | "stopping" | "stopped" | "failed" | "missing";

/** What a runtime sees of one lane right now. */
export interface RuntimeStatus {
  readonly laneId: string;
  readonly runtimeName: string;
  readonly activity: RuntimeActivity;
  /** Exit code of the last main process run (run.sh or the container command), when known. */
  readonly exitCode?: number;
  /** When the current (or last) run started, ms since the epoch, when known. */
  readonly startedAtMs?: number;
}

/** Local evidence of a running job: a live `Runner.Worker`. */
export interface JobEvidence {
  readonly jobRunning: boolean;
  /** Host pids of the `Runner.Worker` processes found. */
  readonly workerPids: readonly number[];
  /** Where the agent looked. */
  readonly source: "cgroup" | "process-tree" | "none";
}

/** The parts of the runner's `.runner` file the agent reads (no secret lives there). */
export interface RunnerSettings {
  readonly agentId: number;
  readonly agentName: string;
  readonly gitHubUrl: string;
  readonly ephemeral: boolean;
}

/** What a runtime found on the host. */
export interface RuntimeListing {
  /** Objects carrying a valid marker of this host (their lane directories are checked separately). */
  readonly owned: readonly { readonly laneId: string; readonly runtimeName: string }[];
  /** Everything runner-like that is not ours: reported, never touched. */
  readonly unmanaged: readonly UnmanagedRunner[];
}

/** Result of deregistering a runner. */
export type DeregisterOutcome = "removed" | "not-configured";

/** One lane backend: systemd units or containers. */
export interface LaneRuntime {
  readonly backend: BackendName;
  /** The unit or container name of a lane. */
  runtimeName(laneId: string): string;
  /**
   * Check the marker of the lane's unit or container. `missing` when there is none; throws `RejectError` when
   * something exists that this agent does not own.
   */
  checkOwnership(laneId: string): Promise<"owned" | "missing">;
  /** Create the unit or container (not started). Refuses when anything of that name exists. */
  create(lane: RuntimeLane): Promise<void>;
  /**
   * Register a persistent runner with a registration token (`config.sh --unattended ...`), the token only in
   * the child's environment. Containers configure inside the container and are left running.
   */
  configure(lane: RuntimeLane, registrationToken: Buffer, onChild?: (pid: number) => Promise<void>): Promise<void>;
  /** Hand an ephemeral runner its JIT config for the next start (never on a command line). */
  armJit(lane: RuntimeLane, jitConfig: Buffer): Promise<void>;
  /** Remove secrets the runner no longer needs (an env file after the runner wrote `.runner`). */
  clearSecrets(laneId: string): Promise<void>;
  start(laneId: string): Promise<void>;
  /**
   * Stop the lane. `guard` runs after the ownership re-check, immediately before the stop is issued (the
   * "last instant" job-evidence check); if it throws, nothing is stopped.
   */
  stop(laneId: string, guard?: () => Promise<void>): Promise<void>;
  /** Restart the lane; `guard` as for {@link LaneRuntime.stop}. */
  restart(laneId: string, guard?: () => Promise<void>): Promise<void>;
  /** Deregister with a remove token (`config.sh remove`). The lane must be stopped. */
  deregister(lane: RuntimeLane, removeToken: Buffer, onChild?: (pid: number) => Promise<void>): Promise<DeregisterOutcome>;
  /** Delete the unit or container (stopping it first). Missing is fine. */
  remove(laneId: string): Promise<void>;
  inspect(laneId: string): Promise<RuntimeStatus>;
  /** Inspect many lanes in one engine or systemctl call (the health loop). */
  inspectMany(laneIds: readonly string[]): Promise<Map<string, RuntimeStatus>>;
  /** Owned and unmanaged runner objects of this backend. */
  list(): Promise<RuntimeListing>;
  /** A live `Runner.Worker` in the lane's cgroup or container. */
  jobEvidence(laneId: string): Promise<JobEvidence>;
  /** The runner's `.runner` settings, or `undefined` when it is not configured. */
  runnerSettings(lane: RuntimeLane): Promise<RunnerSettings | undefined>;
  /** The runner's console output of its latest run (tail), for classifying why it stopped. */
  consoleTail(lane: RuntimeLane): Promise<string>;
  /**
   * Swap a stopped lane's runner for `runnerVersion` (fetched from `download`, or operator-staged), keeping its
   * registration (`.runner`, `.credentials`, ...) and work directory. `onStep` is awaited after each durable step
   * (see `LaneDirectories.swapRunner`); the old tree is kept as `runner.old` until the caller commits or rolls back.
   * Absent on runtimes that cannot.
   */
  swapRunner?(lane: RuntimeLane, runnerVersion: string, download: RunnerDownload | undefined, onStep?: (step: SwapStep) => Promise<void>): Promise<void>;
  /** The container engine behind this runtime (`podman`, `docker`), for capabilities; absent for systemd. */
  engineName?(): Promise<string>;
}
