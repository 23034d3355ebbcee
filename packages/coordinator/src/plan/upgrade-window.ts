/**
 * A pool's upgrade window (`pools.<p>.upgrade.window`, docs/runner-versions.md): whether an upgrade may start at the
 * plan's instant, and what `plan` says about lanes that wait for it. Pure: the instant is passed in.
 */
import { cronWindowAt, formatInTimeZone, type UpgradeWindow } from "@lanekeeper/shared";
import type { Evidence } from "./evidence.js";

/** The evidence an upgrade, or a lane waiting for one, rests on: the window and where the plan's instant stands. */
export type UpgradeWindowEvidence = Extract<Evidence, { source: "upgrade-window" }>;

/** The window's state at `nowMs`, as evidence (`plan --json`, the action's audit record). */
export function upgradeWindowEvidence(pool: string, w: UpgradeWindow, nowMs: number): UpgradeWindowEvidence {
  const s = cronWindowAt(w, nowMs);
  const opensAtMs = s.open ? null : (s.opensAtMs ?? null);
  return {
    source: "upgrade-window",
    pool,
    name: w.name,
    cron: w.cron,
    duration: w.duration,
    timezone: w.timezone,
    open: s.open,
    startMs: s.open ? s.startMs : null,
    endMs: s.open ? s.endMs : null,
    opensAtMs,
    opensAt: opensAtMs === null ? null : formatInTimeZone(opensAtMs, w.timezone),
  };
}

/** What `plan` shows for a lane that waits for a closed window: "waiting for upgrade window <name>, opens <time>". */
export function waitingForWindow(e: UpgradeWindowEvidence): string {
  return `waiting for upgrade window ${e.name}, ${opensText(e)}`;
}

/** "opens <time>" of a closed window. */
export function opensText(e: UpgradeWindowEvidence): string {
  return e.opensAt === null ? "which opens no more (its cron never fires again)" : `opens ${e.opensAt}`;
}
