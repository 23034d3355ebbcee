/**
 * Job traces (`POST /_emulator/traces`): a list of jobs, each with its repository, `runs-on` labels, duration
 * and the time after the trace's start at which it is queued. The emulator queues each one on time and
 * reports, per job, when it was created, started and completed (or cancelled) and which runner ran it. A job
 * no runner ever matches stays `queued` (GitHub keeps it queued too, until its 24-hour limit) and is reported
 * as such, so a replay can tell a lost job from a slow one.
 */
import { plainError } from "./errors.js";
import type { JobSpec } from "./job-broker.js";
import { MAX_TRACE_JOBS } from "./limits.js";
import { iso } from "./representations.js";
import type { JobRecord, RepoRecord, RunnerConclusion } from "./state.js";

/** One job of a trace, as `POST /_emulator/traces` takes it. */
export interface TraceJobSpec {
  /** `owner/name` of a served repository. */
  repo: string;
  /** The job's `runs-on` labels (at least one). */
  labels: string[];
  /** Milliseconds after the trace's start at which the job is queued. */
  atMs: number;
  /** How long the runner works on it, ms. @default 0 */
  durationMs?: number;
  /** What the runner reports. @default "success" */
  conclusion?: RunnerConclusion;
  /** Job name. @default "trace-<trace id>-<index>" */
  name?: string;
}

/** A trace job's outcome as `GET /_emulator/traces/{id}` reports it. */
export interface TraceJobView {
  /** Position in the submitted list. */
  index: number;
  name: string;
  repo: string;
  labels: string[];
  atMs: number;
  durationMs: number;
  /** The emulator's job id once queued, else null (not due yet). */
  jobId: number | null;
  /** `pending` until queued, then the job's status. */
  status: "pending" | "queued" | "in_progress" | "completed";
  conclusion: RunnerConclusion | null;
  runnerId: number | null;
  runnerName: string | null;
  /** GitHub-style timestamps (whole seconds). */
  createdAt: string | null;
  startedAt: string | null;
  completedAt: string | null;
  /** The same times in epoch milliseconds, for measurements. */
  createdAtMs: number | null;
  startedAtMs: number | null;
  completedAtMs: number | null;
  /** Time from queued to started, ms (null until started; a job cancelled while queued has none). */
  queueWaitMs: number | null;
}

/** Counts over a trace's jobs. */
export interface TraceSummary {
  total: number;
  /** Not queued yet. */
  pending: number;
  /** Queued, no runner has started it. */
  queued: number;
  inProgress: number;
  succeeded: number;
  failed: number;
  cancelled: number;
}

/** `GET /_emulator/traces/{id}`. */
export interface TraceView {
  id: number;
  startedAt: string;
  summary: TraceSummary;
  jobs: TraceJobView[];
}

/** What a trace needs from the emulator. */
export interface TraceHost {
  repo(name: string): RepoRecord | undefined;
  createJob(repo: RepoRecord, spec: JobSpec): JobRecord;
  job(id: number): JobRecord | undefined;
  now(): number;
}

interface TraceEntry {
  spec: Required<Omit<TraceJobSpec, "conclusion">> & { conclusion: RunnerConclusion };
  repoRecord: RepoRecord;
  jobId: number | null;
  timer: NodeJS.Timeout | undefined;
}

interface Trace {
  id: number;
  startedAt: number;
  entries: TraceEntry[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Traces in flight and done, in memory (a reset forgets them and cancels what is not queued yet). */
export class TraceRunner {
  private readonly traces = new Map<number, Trace>();
  private nextId = 1;

  constructor(private readonly host: TraceHost) {}

  /** Validates a `POST /_emulator/traces` body and starts the trace; 400 with `path: message` otherwise. */
  start(body: unknown): { id: number; jobs: number; startedAt: string } {
    if (!isObject(body) || !Array.isArray(body.jobs)) throw plainError(400, "jobs: must be an array");
    if (body.jobs.length === 0 || body.jobs.length > MAX_TRACE_JOBS) throw plainError(400, `jobs: must hold 1 to ${MAX_TRACE_JOBS} jobs`);
    const id = this.nextId++;
    const entries = body.jobs.map((raw: unknown, i: number): TraceEntry => {
      const at = `jobs[${i}]`;
      if (!isObject(raw)) throw plainError(400, `${at}: must be an object`);
      for (const k of Object.keys(raw)) {
        if (!["repo", "labels", "atMs", "durationMs", "conclusion", "name"].includes(k)) throw plainError(400, `${at}.${k}: unknown key`);
      }
      const repo = typeof raw.repo === "string" ? this.host.repo(raw.repo) : undefined;
      if (!repo) throw plainError(400, `${at}.repo: not a served repository: ${JSON.stringify(raw.repo)}`);
      const labels = raw.labels;
      if (!Array.isArray(labels) || labels.length === 0 || !labels.every((l) => typeof l === "string" && l.trim() !== "")) {
        throw plainError(400, `${at}.labels: must be a non-empty array of non-empty strings`);
      }
      const num = (k: "atMs" | "durationMs", fallback?: number): number => {
        const v = raw[k] ?? fallback;
        if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw plainError(400, `${at}.${k}: must be a non-negative number`);
        return v;
      };
      const conclusion = raw.conclusion ?? "success";
      if (conclusion !== "success" && conclusion !== "failure" && conclusion !== "cancelled") throw plainError(400, `${at}.conclusion: must be success, failure or cancelled`);
      const name = raw.name ?? `trace-${id}-${i}`;
      if (typeof name !== "string" || name === "") throw plainError(400, `${at}.name: must be a non-empty string`);
      return {
        spec: { repo: `${repo.owner}/${repo.name}`, labels: labels as string[], atMs: num("atMs"), durationMs: num("durationMs", 0), conclusion, name },
        repoRecord: repo,
        jobId: null,
        timer: undefined,
      };
    });
    const trace: Trace = { id, startedAt: this.host.now(), entries };
    for (const e of entries) {
      e.timer = setTimeout(() => this.queue(e), e.spec.atMs);
    }
    this.traces.set(id, trace);
    return { id, jobs: entries.length, startedAt: iso(trace.startedAt) };
  }

  /** A trace's report, or 404. */
  view(id: number): TraceView {
    const trace = this.traces.get(id);
    if (!trace) throw plainError(404, `no trace ${id}`);
    const summary: TraceSummary = { total: trace.entries.length, pending: 0, queued: 0, inProgress: 0, succeeded: 0, failed: 0, cancelled: 0 };
    const jobs = trace.entries.map((e, index): TraceJobView => {
      const job = e.jobId === null ? undefined : this.host.job(e.jobId);
      const status = job?.status ?? "pending";
      if (status === "pending") summary.pending += 1;
      else if (status === "queued") summary.queued += 1;
      else if (status === "in_progress") summary.inProgress += 1;
      else if (job?.conclusion === "success") summary.succeeded += 1;
      else if (job?.conclusion === "cancelled") summary.cancelled += 1;
      else summary.failed += 1;
      const t = (ms: number | null | undefined): string | null => (ms == null ? null : iso(ms));
      // A job cancelled while queued gets `startedAt = completedAt` from the broker; it never waited for a runner to start it.
      const ran = job !== undefined && job.startedAt !== null && job.runnerId !== null;
      return {
        index,
        name: e.spec.name,
        repo: e.spec.repo,
        labels: [...e.spec.labels],
        atMs: e.spec.atMs,
        durationMs: e.spec.durationMs,
        jobId: e.jobId,
        status,
        conclusion: job?.conclusion ?? null,
        runnerId: job?.runnerId ?? null,
        runnerName: job?.runnerName ?? null,
        createdAt: t(job?.createdAt),
        startedAt: t(job?.startedAt),
        completedAt: t(job?.completedAt),
        createdAtMs: job?.createdAt ?? null,
        startedAtMs: job?.startedAt ?? null,
        completedAtMs: job?.completedAt ?? null,
        queueWaitMs: ran ? (job.startedAt as number) - job.createdAt : null,
      };
    });
    return { id, startedAt: iso(trace.startedAt), summary, jobs };
  }

  /** Stops queueing the jobs of a trace that are not due yet (404 if unknown); queued jobs stay. */
  stop(id: number): void {
    const trace = this.traces.get(id);
    if (!trace) throw plainError(404, `no trace ${id}`);
    for (const e of trace.entries) clearTimeout(e.timer);
  }

  /** Forgets every trace (reset, shutdown). */
  clear(): void {
    for (const t of this.traces.values()) for (const e of t.entries) clearTimeout(e.timer);
    this.traces.clear();
  }

  private queue(e: TraceEntry): void {
    e.timer = undefined;
    const job = this.host.createJob(e.repoRecord, { labels: e.spec.labels, durationMs: e.spec.durationMs, conclusion: e.spec.conclusion, name: e.spec.name });
    e.jobId = job.id;
  }
}
