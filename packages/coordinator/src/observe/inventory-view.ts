import type { Allowlist, InventorySnapshot, LaneObservation, UnmanagedRunner } from "@lanekeeper/shared";

/**
 * What one agent reported about its host. Only lanes whose host marker verified are in `lanes` (the agent
 * reports anything else under `unmanaged`), so presence in `lanes` is ownership marker 1.
 */
export interface HostInventory {
  readonly hostId: string;
  /** When the agent took the snapshot (its clock). */
  readonly takenAtMs: number;
  /** When the coordinator received it (its clock); freshness is judged on this. */
  readonly receivedAtMs: number;
  readonly agentVersion: string;
  /** The agent's `control.enabled`: when false it refuses every mutating intent. */
  readonly controlEnabled: boolean;
  /**
   * The agent's local allowlist, as its signed snapshot reports it. `undefined` means unknown (an agent that
   * does not report one): placement then relies on the apply-time guard and the agent's own refusal.
   */
  readonly allowlist: Allowlist | undefined;
  readonly lanes: readonly LaneObservation[];
  readonly unmanaged: readonly UnmanagedRunner[];
}

/**
 * The agents' inventories as the planner sees them. A host without an entry is unknown: no live agent data,
 * so nothing can be concluded about its lanes (absence there is never evidence).
 */
export interface InventoryView {
  readonly hosts: ReadonlyMap<string, HostInventory>;
}

/** An inventory view with no host known (planning from GitHub and records only). */
export function emptyInventory(): InventoryView {
  return { hosts: new Map() };
}

/**
 * Build a {@link HostInventory} from a verified snapshot (the NATS reader verifies signatures first). The
 * allowlist comes from the snapshot itself: it is signed with the rest, so nothing else can supply it.
 */
export function hostInventoryFromSnapshot(snapshot: InventorySnapshot, receivedAtMs: number): HostInventory {
  return {
    hostId: snapshot.hostId,
    takenAtMs: snapshot.takenAtMs,
    receivedAtMs,
    agentVersion: snapshot.agentVersion,
    controlEnabled: snapshot.controlEnabled,
    allowlist: snapshot.allowlist,
    lanes: snapshot.lanes,
    unmanaged: snapshot.unmanaged,
  };
}

/** An inventory view over the given host inventories (the last one wins for a repeated host id). */
export function inventoryView(hosts: readonly HostInventory[]): InventoryView {
  return { hosts: new Map(hosts.map((h) => [h.hostId, h])) };
}
