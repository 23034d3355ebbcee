/**
 * Emulated workflow files for `workflow_dispatch` (test harness only; GitHub reads them from the repository).
 * A test defines a workflow through the control API (`PUT /_emulator/repos/{owner}/{repo}/workflows/{file}`):
 * its job's `runs-on` labels, any of which may be an input expression `${{ inputs.<name> }}`, how long the job
 * runs and how it ends. `POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches` then behaves as
 * GitHub documents: `ref` required, `inputs` an object of at most 10 (25 since 2025) strings, unknown workflow
 * 404, missing or unexpected inputs 422, 204 No Content on success, one run (`event: workflow_dispatch`) with
 * the job queued for runners that carry every label.
 */
import { basicError, plainError } from "./errors.js";
import type { RunnerConclusion } from "./state.js";

/** A workflow file as the control API defines it. */
export interface WorkflowDefinition {
  /** Numeric id (GitHub accepts the id or the file name as `workflow_id`). */
  readonly id: number;
  readonly file: string;
  readonly name: string;
  /** The job's `runs-on`; `${{ inputs.<name> }}` entries are filled from the dispatch inputs. */
  readonly runsOn: readonly string[];
  readonly durationMs: number;
  readonly conclusion: RunnerConclusion;
}

/** GitHub's cap on `workflow_dispatch` inputs. */
export const MAX_DISPATCH_INPUTS = 25;
const INPUT_EXPR = /^\$\{\{\s*inputs\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}$/;
const FILE = /^[A-Za-z0-9._-]+\.ya?ml$/;

/** The inputs a definition reads. */
export function workflowInputs(def: Pick<WorkflowDefinition, "runsOn">): string[] {
  return def.runsOn.flatMap((l) => {
    const m = INPUT_EXPR.exec(l);
    return m?.[1] === undefined ? [] : [m[1]];
  });
}

/** Workflow files per repository (by repository id), in memory. */
export class WorkflowRegistry {
  private readonly byRepo = new Map<number, Map<string, WorkflowDefinition>>();
  private nextId = 1;

  /** Define (or replace) a workflow file; answers the definition. */
  define(repoId: number, file: string, body: Record<string, unknown>): WorkflowDefinition {
    if (!FILE.test(file)) throw plainError(400, "file: must be a .yml or .yaml file name");
    const runsOn = body.runsOn;
    if (!Array.isArray(runsOn) || runsOn.length === 0 || !runsOn.every((l) => typeof l === "string" && l.trim() !== "")) {
      throw plainError(400, "runsOn: must be a non-empty array of non-empty strings");
    }
    const durationMs = body.durationMs ?? 0;
    if (typeof durationMs !== "number" || !Number.isFinite(durationMs) || durationMs < 0) throw plainError(400, "durationMs: must be a non-negative number");
    const conclusion = body.conclusion ?? "success";
    if (conclusion !== "success" && conclusion !== "failure" && conclusion !== "cancelled") throw plainError(400, "conclusion: must be success, failure or cancelled");
    const name = body.name ?? file;
    if (typeof name !== "string" || name === "") throw plainError(400, "name: must be a non-empty string");
    const repo = this.byRepo.get(repoId) ?? new Map<string, WorkflowDefinition>();
    this.byRepo.set(repoId, repo);
    const def: WorkflowDefinition = { id: repo.get(file)?.id ?? this.nextId++, file, name, runsOn: [...(runsOn as string[])], durationMs, conclusion };
    repo.set(file, def);
    return def;
  }

  /** The workflow named by id or file name, or undefined. */
  find(repoId: number, workflowId: string): WorkflowDefinition | undefined {
    const repo = this.byRepo.get(repoId);
    if (repo === undefined) return undefined;
    if (/^\d+$/.test(workflowId)) return [...repo.values()].find((d) => d.id === Number(workflowId));
    return repo.get(workflowId);
  }
}

/**
 * The `runs-on` labels of a dispatch: validates `inputs` as GitHub does (object of strings, no unexpected key,
 * every input the workflow reads present) and fills the input expressions. Throws the error to answer with.
 */
export function dispatchLabels(def: WorkflowDefinition, inputs: unknown, invalid: (detail: string) => Error): string[] {
  if (inputs !== undefined && (typeof inputs !== "object" || inputs === null || Array.isArray(inputs))) {
    throw invalid("For 'properties/inputs', the value is not an object.");
  }
  const given = (inputs ?? {}) as Record<string, unknown>;
  const keys = Object.keys(given);
  if (keys.length > MAX_DISPATCH_INPUTS) throw invalid(`you may only provide up to ${MAX_DISPATCH_INPUTS} inputs`);
  const wanted = new Set(workflowInputs(def));
  const unexpected = keys.filter((k) => !wanted.has(k));
  if (unexpected.length > 0) throw unprocessable(`Unexpected inputs provided: ${JSON.stringify(unexpected)}`);
  for (const k of keys) if (typeof given[k] !== "string") throw invalid(`For 'properties/${k}', the value is not a string.`);
  const missing = [...wanted].filter((k) => given[k] === undefined || given[k] === "");
  if (missing.length > 0) throw unprocessable(`Required input '${missing[0]}' not provided`);
  return def.runsOn.map((l) => {
    const m = INPUT_EXPR.exec(l);
    return m?.[1] === undefined ? l : (given[m[1]] as string);
  });
}

function unprocessable(message: string): Error {
  return basicError(422, message);
}
