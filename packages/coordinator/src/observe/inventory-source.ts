import type { InventorySnapshot } from "@lanekeeper/shared";
import { hostInventoryFromSnapshot, type HostInventory } from "./inventory-view.js";

/** A verified inventory snapshot and when this coordinator received it. */
export interface HostSnapshot {
  readonly snapshot: InventorySnapshot;
  /**
   * When the coordinator received it (its clock). A snapshot read back from the KV bucket that this process
   * did not receive itself counts as received when the agent took it.
   */
  readonly receivedAtMs: number;
}

/** Where the apply engine and the drain protocol read the agents' inventories. */
export interface InventorySource {
  /** The last verified snapshot of `hostId`, or undefined when there is none. */
  latest(hostId: string): Promise<HostSnapshot | undefined>;
  /**
   * Of `hostIds`, those whose last snapshot known to this process reports `laneId`: the candidates a caller then
   * reads with {@link latest}. Optional; without it a caller reads every host.
   */
  hostsReporting?(laneId: string, hostIds: readonly string[]): Promise<readonly string[]>;
}

/** A {@link HostSnapshot} as the planner's {@link HostInventory}. */
export function toHostInventory(s: HostSnapshot): HostInventory {
  return hostInventoryFromSnapshot(s.snapshot, s.receivedAtMs);
}
