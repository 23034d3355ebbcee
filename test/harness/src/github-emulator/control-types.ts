/**
 * Shapes of the control API under `/_emulator/` (documented in `test/harness/README.md`), shared by the
 * server (`control-api.ts`) and the typed client (`control-client.ts`).
 */
import type { Faults } from "./faults.js";
import type { TraceJobSpec, TraceJobView, TraceSummary, TraceView } from "./job-trace.js";
import type { RealismOptions, ResolvedRealism } from "./realism.js";
import type { EmulatorStats } from "./stats.js";
import type { JobStatus, RunnerConclusion } from "./state.js";
import type { WebhookDelivery } from "./webhooks.js";

export type { EmulatorStats, Faults, JobStatus, RealismOptions, ResolvedRealism, RunnerConclusion, TraceJobSpec, TraceJobView, TraceSummary, TraceView, WebhookDelivery };

/** Body of `POST /_emulator/repos/{owner}/{repo}/jobs`. */
export interface CreateJobRequest {
  /** The job's `runs-on` labels (at least one). */
  labels: string[];
  /** How long the emulated runner works on it, ms. @default 0 */
  durationMs?: number;
  /** What the emulated runner reports at the end. @default "success" */
  conclusion?: RunnerConclusion;
  /** Job name. @default "job-<n>" */
  name?: string;
}

/** A job as the control API reports it. */
export interface JobView {
  id: number;
  runId: number;
  /** `owner/name`. */
  repo: string;
  name: string;
  labels: string[];
  durationMs: number;
  /** What the runner was told to report. */
  plannedConclusion: RunnerConclusion;
  status: JobStatus;
  conclusion: RunnerConclusion | null;
  runnerId: number | null;
  runnerName: string | null;
  runnerGroupId: number | null;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
}

/** A runner registration as the control API reports it (server truth, no busy lag). */
export interface RunnerView {
  id: number;
  /** `repo` or `org`. */
  scopeKind: "repo" | "org";
  /** `owner/name` or the organization login. */
  scope: string;
  name: string;
  status: "online" | "offline";
  busy: boolean;
  ephemeral: boolean;
  labels: string[];
  os: string;
  version: string | null;
  groupId: number;
  jobId: number | null;
}
