import { GitHubApiError } from "./github-errors.js";

/** One workflow run, as far as `lanekeeper smoke` needs it. */
export interface WorkflowRunSummary {
  readonly id: number;
  readonly event: string;
  readonly createdAtMs: number;
}

/** One job of a workflow run: its `runs-on` labels and the runner that took it. */
export interface WorkflowJobSummary {
  readonly id: number;
  readonly runId: number;
  readonly name: string;
  readonly status: string;
  readonly conclusion: string | null;
  readonly labels: readonly string[];
  readonly runnerName: string | null;
}

/**
 * The workflow calls `lanekeeper smoke` makes (repository scopes only): dispatch a workflow on a ref
 * (`POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches`, 204 No Content), then find the job it
 * queued among the newest runs. Kept apart from {@link GitHubClient}: nothing else in the coordinator starts jobs.
 */
export interface GitHubWorkflows {
  /** Dispatch `workflow` (file name or id) on `ref` with `inputs`; never retried (a retry could start a second run). */
  dispatchWorkflow(repo: string, workflow: string, ref: string, inputs: Readonly<Record<string, string>>): Promise<void>;
  /** The newest runs of the repository's `workflow_dispatch` events (one page). */
  listDispatchedRuns(repo: string): Promise<readonly WorkflowRunSummary[]>;
  /** The jobs of a run (one page). */
  listRunJobs(repo: string, runId: number): Promise<readonly WorkflowJobSummary[]>;
}

/** Whether a GitHub client also makes the workflow calls. */
export function hasWorkflows(x: object): x is GitHubWorkflows {
  const o = x as Partial<GitHubWorkflows>;
  return typeof o.dispatchWorkflow === "function" && typeof o.listDispatchedRuns === "function" && typeof o.listRunJobs === "function";
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const malformed = (op: string, what: string): GitHubApiError => new GitHubApiError({ operation: op }, `GitHub sent a malformed response (${what})`, "GITHUB_MALFORMED");

/** Parse `{total_count, workflow_runs}`. */
export function parseWorkflowRuns(raw: unknown, op: string): WorkflowRunSummary[] {
  if (!isObj(raw) || !Array.isArray(raw.workflow_runs)) throw malformed(op, "expected {total_count, workflow_runs}");
  return raw.workflow_runs.map((r): WorkflowRunSummary => {
    if (!isObj(r) || typeof r.id !== "number" || typeof r.created_at !== "string") throw malformed(op, "workflow run");
    return { id: r.id, event: typeof r.event === "string" ? r.event : "", createdAtMs: Date.parse(r.created_at) };
  });
}

/** Parse `{total_count, jobs}`. */
export function parseWorkflowJobs(raw: unknown, op: string): WorkflowJobSummary[] {
  if (!isObj(raw) || !Array.isArray(raw.jobs)) throw malformed(op, "expected {total_count, jobs}");
  return raw.jobs.map((j): WorkflowJobSummary => {
    if (!isObj(j) || typeof j.id !== "number" || typeof j.status !== "string" || !Array.isArray(j.labels)) throw malformed(op, "workflow job");
    return {
      id: j.id,
      runId: typeof j.run_id === "number" ? j.run_id : 0,
      name: typeof j.name === "string" ? j.name : "",
      status: j.status,
      conclusion: typeof j.conclusion === "string" ? j.conclusion : null,
      labels: j.labels.filter((l): l is string => typeof l === "string"),
      runnerName: typeof j.runner_name === "string" ? j.runner_name : null,
    };
  });
}
