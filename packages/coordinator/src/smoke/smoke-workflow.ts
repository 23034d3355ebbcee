import type { GitHubWorkflows, WorkflowJobSummary } from "../github/github-workflows.js";
import { StepFailure } from "../apply/apply-errors.js";

/** The dispatched workflow's job, as the smoke run saw it end. */
export interface SmokeJob {
  readonly repo: string;
  readonly workflow: string;
  readonly ref: string;
  readonly runId: number;
  readonly jobId: number;
  readonly runnerName: string | null;
  readonly conclusion: string | null;
}

/** What {@link runSmokeWorkflow} needs. */
export interface SmokeWorkflowDeps {
  readonly workflows: GitHubWorkflows;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
}

/**
 * Dispatch the operator's workflow on `ref` with the smoke label as input `inputName` (the workflow's job says
 * `runs-on: ${{ inputs.<inputName> }}`), find the job GitHub queued for that label among the newest dispatched
 * runs, and wait until it ran on `laneId` and finished with `success`. A dispatch answers 204 without a run id, so
 * the job is recognised by the unique smoke label in its `runs-on`.
 */
export async function runSmokeWorkflow(
  deps: SmokeWorkflowDeps,
  wf: { readonly repo: string; readonly workflow: string; readonly ref: string; readonly inputName: string },
  label: string,
  laneId: string,
  timeoutMs: number,
  onJob: (job: WorkflowJobSummary) => void,
): Promise<SmokeJob> {
  // GitHub's run timestamps have one-second resolution and its clock is not ours: look back a little.
  const since = deps.now() - 60_000;
  await deps.workflows.dispatchWorkflow(wf.repo, wf.workflow, wf.ref, { [wf.inputName]: label });
  const until = deps.now() + timeoutMs;
  let job: WorkflowJobSummary | undefined;
  let lastStatus = "";
  for (;;) {
    if (job === undefined) {
      const runs = (await deps.workflows.listDispatchedRuns(wf.repo)).filter((r) => r.createdAtMs >= since).slice(0, 10);
      for (const run of runs) {
        job = (await deps.workflows.listRunJobs(wf.repo, run.id)).find((j) => j.labels.includes(label));
        if (job !== undefined) break;
      }
    } else {
      job = (await deps.workflows.listRunJobs(wf.repo, job.runId)).find((j) => j.id === job?.id) ?? job;
    }
    if (job !== undefined && job.status !== lastStatus) {
      lastStatus = job.status;
      onJob(job);
    }
    if (job?.status === "completed") break;
    if (deps.now() >= until) {
      const what = job === undefined ? "no job with the smoke label appeared (does the workflow's runs-on use the input?)" : `job ${job.id} is still ${job.status}`;
      throw new StepFailure("SMOKE_FAILED", `workflow ${wf.workflow} on ${wf.ref}: ${what} after ${Math.round(timeoutMs / 1000)} s`);
    }
    await deps.sleep(2_000);
  }
  const result: SmokeJob = { repo: wf.repo, workflow: wf.workflow, ref: wf.ref, runId: job.runId, jobId: job.id, runnerName: job.runnerName, conclusion: job.conclusion };
  if (job.runnerName !== laneId) {
    throw new StepFailure("SMOKE_FAILED", `job ${job.id} ran on ${job.runnerName ?? "no runner"}, not on the smoke lane ${laneId}`, { details: { job: result } });
  }
  if (job.conclusion !== "success") {
    throw new StepFailure("SMOKE_FAILED", `job ${job.id} ran on ${laneId} and ended ${job.conclusion ?? "without a conclusion"}`, { details: { job: result } });
  }
  return result;
}
