/**
 * Listener sessions, long polls, jobs and their scheduling. A queued job is handed to the longest-waiting
 * long poll of an idle, online runner whose labels match (see `scheduler.ts`); the runner is `busy` from that
 * moment until the job completes. Liveness: a session is alive while a poll is in flight or for
 * `offlineAfterMs` after the last one; a dead session is closed by {@link JobBroker.sweep}.
 *
 * What happens to a job when its runner's session ends, as GitHub does it:
 * - handed out but not started: the job goes back to the queue (GitHub retries acquiring it);
 * - running, and the session expired or the registration was replaced (crash, `kill -9`, network loss):
 *   the job fails, as GitHub's "The self-hosted runner lost communication with the server";
 * - running, and the runner deleted its session (graceful stop without a reported result): cancelled.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { basicError, plainError } from "./errors.js";
import { IDLE_EPHEMERAL_RUNNER_DELETION_MS, IDLE_RUNNER_DELETION_MS, SWEEP_EVERY_REQUEST_MAX, SWEEP_MIN_INTERVAL_MS } from "./limits.js";
import type { Clock } from "./options.js";
import type { Registry } from "./registry.js";
import { pickRunner, type WaitingRunner } from "./scheduler.js";
import type { EmulatorState, JobRecord, RepoRecord, RunnerConclusion, RunnerRecord, SessionRecord } from "./state.js";

/** What a long poll ends with. */
export type PollResult = { kind: "job"; job: JobRecord } | { kind: "none" } | { kind: "gone" };

/** `workflow_job` webhook actions. */
export type JobAction = "queued" | "in_progress" | "completed";

/** What the control API asks for when it queues a job. */
export interface JobSpec {
  labels: string[];
  durationMs: number;
  conclusion: RunnerConclusion;
  name: string;
  /** The run the job belongs to, when not the default `CI` push run (workflow dispatch). */
  run?: { name: string; event: string; headBranch: string; path: string; workflowId: number };
}

/** Callbacks of the broker. */
export interface BrokerHooks {
  /** A job changed state (webhooks). Called after the change. */
  jobEvent(action: JobAction, job: JobRecord): void;
  /** Something persisted changed. */
  changed(): void;
}

type SessionEnd = "deleted" | "expired" | "replaced" | "runner-deleted";

interface Listener {
  sessionId: string;
  runnerId: number;
  settle(result: PollResult): void;
}

/** Sessions, polls and jobs. */
export class JobBroker {
  /** Polls in flight, oldest first. */
  private listeners: Listener[] = [];
  private readonly inFlight = new Map<string, number>();
  private readonly watchers = new Set<() => void>();
  /**
   * Sessions by runner id, rebuilt after a change: `isOnline` runs for every runner of a listing and of each
   * sweep, and a scan of every session each time made that quadratic (a 20,000-runner fleet simulation).
   */
  private byRunner: Map<number, SessionRecord[]> | undefined;
  /** The emulator clock at the last {@link sweep}. */
  private lastSweepAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly state: EmulatorState,
    private readonly registry: Registry,
    private readonly clock: Clock,
    private readonly offlineAfterMs: () => number,
    private readonly hooks: BrokerHooks,
  ) {}

  // ---- sessions -----------------------------------------------------------------------------------

  /** True while a poll is in flight or the last poll is younger than `offlineAfterMs`. */
  sessionAlive(session: SessionRecord): boolean {
    return (this.inFlight.get(session.id) ?? 0) > 0 || this.clock.now() - session.lastPollAt < this.offlineAfterMs();
  }

  /** True when the runner has a live session (GitHub's `status: online`). */
  isOnline(runner: RunnerRecord): boolean {
    for (const s of this.sessionsOf(runner.id)) if (this.sessionAlive(s)) return true;
    return false;
  }

  private sessionsOf(runnerId: number): readonly SessionRecord[] {
    let index = this.byRunner;
    // The state may also be replaced wholesale (restore at start): a size that disagrees means rebuild.
    if (index === undefined || this.indexedSize !== this.state.sessions.size) {
      index = new Map();
      for (const s of this.state.sessions.values()) {
        const list = index.get(s.runnerId);
        if (list) list.push(s);
        else index.set(s.runnerId, [s]);
      }
      this.byRunner = index;
      this.indexedSize = this.state.sessions.size;
    }
    return index.get(runnerId) ?? [];
  }

  private indexedSize = -1;

  /** Opens a session: the runner goes online. 409 while another live session exists. */
  openSession(runner: RunnerRecord, version: string, os: string): SessionRecord {
    for (const s of [...this.sessionsOf(runner.id)]) {
      if (this.sessionAlive(s)) throw plainError(409, "A session for this runner already exists.");
      this.closeSession(s, "expired");
    }
    const now = this.clock.now();
    const session: SessionRecord = { id: randomUUID(), runnerId: runner.id, createdAt: now, lastPollAt: now };
    this.state.sessions.set(session.id, session);
    this.byRunner = undefined;
    runner.sessionLostAt = null;
    runner.version = version;
    runner.os = os;
    runner.lastSeenAt = now;
    this.hooks.changed();
    return session;
  }

  /** Records a heartbeat. */
  touch(session: SessionRecord): void {
    const now = this.clock.now();
    session.lastPollAt = now;
    const runner = this.state.runners.get(session.runnerId);
    if (runner) runner.lastSeenAt = now;
  }

  /**
   * Long poll: resolves with a job handed to this runner, `none` after `waitMs` (or when the client goes
   * away), or `gone` if the registration is deleted meanwhile. A newer poll of the same session ends the
   * older one with `none`.
   */
  poll(session: SessionRecord, waitMs: number, signal: AbortSignal): Promise<PollResult> {
    this.touch(session);
    if (!this.state.runners.has(session.runnerId)) return Promise.resolve({ kind: "gone" });
    for (const old of this.listeners.filter((l) => l.sessionId === session.id)) old.settle({ kind: "none" });
    this.inFlight.set(session.id, (this.inFlight.get(session.id) ?? 0) + 1);
    return new Promise<PollResult>((resolve) => {
      let done = false;
      const timer = setTimeout(() => listener.settle({ kind: "none" }), waitMs);
      const onAbort = (): void => listener.settle({ kind: "none" });
      const listener: Listener = {
        sessionId: session.id,
        runnerId: session.runnerId,
        settle: (result) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          signal.removeEventListener("abort", onAbort);
          this.listeners = this.listeners.filter((l) => l !== listener);
          const left = (this.inFlight.get(session.id) ?? 1) - 1;
          if (left > 0) this.inFlight.set(session.id, left);
          else this.inFlight.delete(session.id);
          // The end of a poll is a heartbeat too: a killed runner is noticed offlineAfterMs after it.
          if (this.state.sessions.has(session.id)) this.touch(session);
          resolve(result);
        },
      };
      if (signal.aborted) {
        listener.settle({ kind: "none" });
        return;
      }
      signal.addEventListener("abort", onAbort);
      this.listeners.push(listener);
      this.schedule();
    });
  }

  /** Ends a session and settles its job per the rules in this file's header. */
  closeSession(session: SessionRecord, why: SessionEnd): void {
    if (!this.state.sessions.delete(session.id)) return;
    this.byRunner = undefined;
    for (const l of this.listeners.filter((x) => x.sessionId === session.id)) {
      l.settle(why === "deleted" ? { kind: "none" } : { kind: "gone" });
    }
    const runner = this.state.runners.get(session.runnerId);
    if (runner) {
      runner.lastSeenAt = why === "expired" ? session.lastPollAt : this.clock.now();
      // Only a session that died without a goodbye lingers as `online` (realism's online lag).
      if (why === "expired") runner.sessionLostAt = this.clock.now();
    }
    for (const job of [...this.state.jobs.values()]) {
      if (job.sessionId !== session.id || job.status === "completed") continue;
      if (job.status === "queued") this.requeue(job);
      else this.finish(job, why === "deleted" ? "cancelled" : "failure");
    }
    this.hooks.changed();
    this.schedule();
  }

  /** Ends every session of a deleted or replaced registration. */
  onRunnerGone(runner: RunnerRecord, why: "deleted" | "replaced"): void {
    for (const s of [...this.sessionsOf(runner.id)]) this.closeSession(s, why === "deleted" ? "runner-deleted" : "replaced");
  }

  /**
   * Closes dead sessions and deletes registrations GitHub would have removed (14 days offline, 1 day for
   * ephemeral runners). Cheap; called before every request and on a timer.
   */
  sweep(): void {
    this.lastSweepAt = this.clock.now();
    for (const s of [...this.state.sessions.values()]) if (!this.sessionAlive(s)) this.closeSession(s, "expired");
    const now = this.clock.now();
    for (const runner of [...this.state.runners.values()]) {
      if (runner.jobId !== null || this.isOnline(runner)) continue;
      const idle = now - (runner.lastSeenAt ?? runner.createdAt);
      if (idle > (runner.ephemeral ? IDLE_EPHEMERAL_RUNNER_DELETION_MS : IDLE_RUNNER_DELETION_MS)) this.registry.deleteRunner(runner);
    }
  }

  /** {@link sweep} before a request: always in a small emulator, at most every SWEEP_MIN_INTERVAL_MS in a big one. */
  sweepBeforeRequest(): void {
    const big = this.state.runners.size + this.state.sessions.size > SWEEP_EVERY_REQUEST_MAX;
    if (big && this.clock.now() - this.lastSweepAt < SWEEP_MIN_INTERVAL_MS) return;
    this.sweep();
  }

  /** Ends every poll (server shutdown). */
  shutdown(): void {
    for (const l of [...this.listeners]) l.settle({ kind: "none" });
  }

  // ---- jobs ---------------------------------------------------------------------------------------

  /** Queues a job (in a new workflow run of `repo`). */
  createJob(repo: RepoRecord, spec: JobSpec): JobRecord {
    const now = this.clock.now();
    repo.runNumber += 1;
    const run = {
      id: this.state.next("run"),
      repoId: repo.id,
      runNumber: repo.runNumber,
      name: spec.run?.name ?? "CI",
      headSha: randomBytes(20).toString("hex"),
      createdAt: now,
      ...(spec.run === undefined ? {} : { event: spec.run.event, headBranch: spec.run.headBranch, path: spec.run.path, workflowId: spec.run.workflowId }),
    };
    this.state.runs.set(run.id, run);
    const job: JobRecord = {
      id: this.state.next("job"),
      runId: run.id,
      repoId: repo.id,
      name: spec.name,
      labels: [...spec.labels],
      durationMs: spec.durationMs,
      plannedConclusion: spec.conclusion,
      status: "queued",
      conclusion: null,
      runnerId: null,
      runnerName: null,
      runnerGroupId: null,
      runnerGroupName: null,
      sessionId: null,
      createdAt: now,
      startedAt: null,
      completedAt: null,
    };
    this.state.jobs.set(job.id, job);
    this.emit("queued", job);
    this.schedule();
    return job;
  }

  /** Cancels a job nobody has taken yet; 409 once a runner has it. */
  cancelQueuedJob(job: JobRecord): void {
    if (job.status !== "queued" || job.runnerId !== null) throw plainError(409, `Job ${job.id} is already ${job.status === "queued" ? "assigned" : job.status}.`);
    const now = this.clock.now();
    Object.assign(job, { status: "completed", conclusion: "cancelled", startedAt: now, completedAt: now });
    this.emit("completed", job);
  }

  /** The runner says it started the job; 404 unless the job was handed to this session. */
  jobStarted(jobId: number, session: SessionRecord): void {
    const job = this.jobOfSession(jobId, session);
    this.touch(session);
    if (job.status !== "queued") return;
    job.status = "in_progress";
    job.startedAt = this.clock.now();
    this.emit("in_progress", job);
  }

  /** The runner reports the job's result; 404 unless the job was handed to this session. */
  jobCompleted(jobId: number, session: SessionRecord, conclusion: RunnerConclusion): void {
    const job = this.jobOfSession(jobId, session);
    this.touch(session);
    if (job.status !== "completed") this.finish(job, conclusion);
  }

  /** Calls `fn` after every job change until the returned function is called. */
  watchJobs(fn: () => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  private jobOfSession(jobId: number, session: SessionRecord): JobRecord {
    const job = this.state.jobs.get(jobId);
    if (!job || job.sessionId !== session.id) throw basicError(404, "Not Found");
    return job;
  }

  private emit(action: JobAction | "changed", job: JobRecord): void {
    if (action !== "changed") this.hooks.jobEvent(action, job);
    this.hooks.changed();
    for (const w of [...this.watchers]) w();
  }

  private requeue(job: JobRecord): void {
    const runner = job.runnerId === null ? undefined : this.state.runners.get(job.runnerId);
    if (runner && runner.jobId === job.id) Object.assign(runner, { jobId: null, assignedAt: null, releasedAt: this.clock.now() });
    Object.assign(job, { runnerId: null, runnerName: null, runnerGroupId: null, runnerGroupName: null, sessionId: null });
    this.emit("changed", job);
  }

  private finish(job: JobRecord, conclusion: RunnerConclusion): void {
    const now = this.clock.now();
    Object.assign(job, { status: "completed", conclusion, completedAt: now, startedAt: job.startedAt ?? now });
    const runner = job.runnerId === null ? undefined : this.state.runners.get(job.runnerId);
    if (runner && runner.jobId === job.id) Object.assign(runner, { jobId: null, assignedAt: null, releasedAt: now });
    this.emit("completed", job);
    // GitHub removes an ephemeral runner's registration once its one job is done.
    if (runner?.ephemeral) this.registry.deleteRunner(runner);
    else this.schedule();
  }

  /** Hands queued jobs to waiting runners, oldest job first. */
  private schedule(): void {
    const queued = [...this.state.jobs.values()].filter((j) => j.status === "queued" && j.runnerId === null).sort((a, b) => a.id - b.id);
    for (const job of queued) {
      if (this.listeners.length === 0) return;
      const repo = this.registry.repoById(job.repoId);
      if (!repo) continue;
      const waiting: (WaitingRunner & { listener: Listener })[] = [];
      for (const listener of this.listeners) {
        const runner = this.state.runners.get(listener.runnerId);
        if (runner) waiting.push({ runner, group: this.registry.groupOfRunner(runner), listener });
      }
      const pick = pickRunner(job, repo, waiting) as (WaitingRunner & { listener: Listener }) | undefined;
      if (!pick) continue;
      const group = pick.group;
      Object.assign(job, {
        runnerId: pick.runner.id,
        runnerName: pick.runner.name,
        runnerGroupId: group.id,
        runnerGroupName: group.name,
        sessionId: pick.listener.sessionId,
      });
      Object.assign(pick.runner, { jobId: job.id, assignedAt: this.clock.now() });
      this.emit("changed", job);
      pick.listener.settle({ kind: "job", job });
    }
  }
}
