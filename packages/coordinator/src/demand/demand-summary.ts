import type { DemandSnapshot } from "../observe/demand.js";

/** One line per scope of a demand snapshot, for `plan` and `apply`: how many jobs wait, run and completed recently. */
export function demandSummaryLines(d: DemandSnapshot, scopes: readonly string[], nowMs: number): string[] {
  return scopes.map((scope) => {
    const jobs = d.jobs.filter((j) => j.scope === scope);
    const n = (s: string): number => jobs.filter((j) => j.status === s).length;
    const at = d.reconciledAtMs[scope];
    const confirmed = at === undefined ? "never confirmed by the REST API" : `REST-confirmed ${Math.max(0, Math.round((nowMs - at) / 1000))} s ago`;
    return `demand of ${scope}: ${n("queued")} queued, ${n("in_progress")} in progress, ${n("completed")} completed recently (${confirmed})`;
  });
}
