import { systemClock, type Clock } from "@lanekeeper/shared";
import type { InventoryCollector, StoredInventory } from "../dispatch/inventory-collector.js";
import type { HostSnapshot, InventorySource } from "../observe/inventory-source.js";

/**
 * {@link InventorySource} over the {@link InventoryCollector}: snapshots from the `lk_inventory` KV bucket,
 * re-verified on read. Pass {@link CollectorInventorySource.onSnapshot} as the collector's `onSnapshot` so
 * receive times are this process's own.
 */
export class CollectorInventorySource implements InventorySource {
  private collector: Pick<InventoryCollector, "latest"> | undefined;
  private readonly received = new Map<string, { seq: number; atMs: number }>();
  private readonly waiters = new Set<() => void>();
  private readonly listeners = new Set<(s: StoredInventory) => void>();

  constructor(private readonly clock: Clock = systemClock) {}

  /** Attach the collector (built after this source, since the collector takes `onSnapshot` at construction). */
  attach(collector: Pick<InventoryCollector, "latest">): void {
    this.collector = collector;
  }

  /** Record the receive time of an accepted snapshot. */
  readonly onSnapshot = (s: StoredInventory): void => {
    this.received.set(s.snapshot.hostId, { seq: s.snapshot.snapshotSeq, atMs: this.clock.now() });
    for (const w of [...this.waiters]) w();
    for (const l of [...this.listeners]) l(s);
  };

  /** Call `fn` with every accepted snapshot from now on (`serve` re-arms ephemeral lanes on them); answers an unsubscribe. */
  subscribe(fn: (s: StoredInventory) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  async latest(hostId: string): Promise<HostSnapshot | undefined> {
    if (this.collector === undefined) return undefined;
    let stored: StoredInventory | undefined;
    try {
      stored = await this.collector.latest(hostId);
    } catch {
      // A snapshot that no longer verifies (e.g. the host's key changed) is no snapshot.
      return undefined;
    }
    if (stored === undefined) return undefined;
    const r = this.received.get(hostId);
    const receivedAtMs = r !== undefined && r.seq === stored.snapshot.snapshotSeq ? r.atMs : stored.snapshot.takenAtMs;
    return { snapshot: stored.snapshot, receivedAtMs };
  }

  /** Resolve after the next accepted snapshot of any host, or after `timeoutMs`. */
  nextSnapshot(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.waiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, timeoutMs);
      this.waiters.add(done);
    });
  }
}
