import type { GroupSummary } from "../plan/plan-types.js";
import { formatDuration } from "./duration.js";
import { renderTable } from "./render-table.js";

/**
 * The per-pool table of queue-driven groups, as `plan` and `status` print it: queued, running, idle, wanted
 * and why. Empty when no group scales with demand (fixed `count` pools have no such figures).
 */
export function renderScalingTable(groups: readonly GroupSummary[]): string {
  const scaling = groups.filter((g) => g.scaling !== undefined);
  if (scaling.length === 0) return "";
  return renderTable(
    ["SCOPE", "POOL", "QUEUED", "RUNNING", "IDLE", "WANTED", "WHY"],
    scaling.map((g) => {
      const s = g.scaling;
      if (s === undefined) return [g.scope, g.pool, "", "", "", "", ""];
      const notes = [s.why];
      if (s.schedules.length > 0) notes.push(`schedule ${s.schedules.join(", ")} in force`);
      if (s.nextScaleDownInMs !== null) notes.push(`scale-down in ${formatDuration(s.nextScaleDownInMs)}`);
      return [g.scope, g.pool, String(s.queued), String(s.running), String(s.idle), `${s.wanted} (${s.min}-${s.max})`, notes.join("; ")];
    }),
  );
}
