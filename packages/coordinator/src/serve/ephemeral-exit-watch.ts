import { LaneMode, LaneState, type InventorySnapshot } from "@lanekeeper/shared";

/**
 * Notices, across a host's inventory snapshots, an ephemeral lane whose runner has exited (the agent reports it
 * `IDLE_UNARMED`: its job is done and it waits for a fresh JIT config), so `serve` can re-arm it at once instead of
 * at the next interval. Only the change is reported: a lane that stays unarmed is reported once.
 */
export class EphemeralExitWatch {
  private readonly unarmed = new Map<string, Set<string>>();

  /** The lanes of this snapshot that became idle-unarmed since the host's previous snapshot. */
  exits(s: Pick<InventorySnapshot, "hostId" | "lanes">): string[] {
    const before = this.unarmed.get(s.hostId) ?? new Set<string>();
    const now = new Set<string>();
    for (const l of s.lanes) {
      if (l.mode === LaneMode.LANE_MODE_EPHEMERAL && l.state === LaneState.LANE_STATE_IDLE_UNARMED) now.add(l.laneId);
    }
    this.unarmed.set(s.hostId, now);
    return [...now].filter((id) => !before.has(id)).sort();
  }
}
