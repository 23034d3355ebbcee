import type { DemandJob, DemandSource } from "../observe/demand.js";
import { MAX_JOB_LABELS } from "./limits.js";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** A GitHub workflow job (webhook `workflow_job` or REST `job`) that is not demand: why it was set aside. */
export type NotDemand = { readonly ignored: string };

const STATUSES = new Set<DemandJob["status"]>(["queued", "in_progress", "completed"]);

function timeMs(v: unknown): number | undefined {
  if (typeof v !== "string") return undefined;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : undefined;
}

/** Labels GitHub reports, bounded (count and length) so a hostile payload cannot bloat the store. */
function labelsOf(v: unknown): string[] | undefined {
  if (!Array.isArray(v)) return undefined;
  return v.filter((l): l is string => typeof l === "string" && l.length > 0 && l.length <= 256).slice(0, MAX_JOB_LABELS);
}

/**
 * The demand view of a GitHub workflow job object (the `workflow_job` of a webhook and the REST `job` have the
 * same shape). Jobs GitHub does not offer to runners yet (`waiting` for an environment approval, `requested`,
 * `pending`) are not demand. Throws `Error` when a field the store needs is missing or mistyped.
 */
export function demandJobOf(raw: unknown, where: { readonly scope: string; readonly repository: string; readonly source: DemandSource }): DemandJob | NotDemand {
  if (!isObj(raw)) throw new Error("workflow job is not an object");
  const { id, run_id: runId, status } = raw;
  if (typeof id !== "number" || !Number.isSafeInteger(id) || id <= 0) throw new Error("workflow job id is not a positive integer");
  if (typeof runId !== "number" || !Number.isSafeInteger(runId) || runId < 0) throw new Error("workflow job run_id is not an integer");
  if (typeof status !== "string") throw new Error("workflow job status is not a string");
  if (!STATUSES.has(status as DemandJob["status"])) return { ignored: `status ${status.slice(0, 32)}` };
  const st = status as DemandJob["status"];
  const labels = labelsOf(raw.labels);
  if (labels === undefined) throw new Error("workflow job labels are not a list");
  const createdAtMs = timeMs(raw.created_at);
  if (createdAtMs === undefined) throw new Error("workflow job created_at is not a time");
  // GitHub reports a queued job's started_at as its creation time: it means nothing until a runner took it.
  const startedAtMs = st === "queued" ? undefined : timeMs(raw.started_at);
  const completedAtMs = st === "completed" ? timeMs(raw.completed_at) : undefined;
  const runnerName = st !== "queued" && typeof raw.runner_name === "string" && raw.runner_name !== "" ? raw.runner_name.slice(0, 256) : undefined;
  return {
    id,
    runId,
    scope: where.scope,
    repository: where.repository,
    labels,
    status: st,
    ...(runnerName === undefined ? {} : { runnerName }),
    createdAtMs,
    ...(startedAtMs === undefined ? {} : { startedAtMs }),
    ...(completedAtMs === undefined ? {} : { completedAtMs }),
    source: where.source,
  };
}

/** Whether {@link demandJobOf} set the job aside. */
export function isNotDemand(x: DemandJob | NotDemand): x is NotDemand {
  return "ignored" in x;
}
