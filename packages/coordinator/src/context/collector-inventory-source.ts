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
  /** Per host, the snapshot seq and lane ids of its last snapshot seen here (accepted, or read back and seeded). */
  private readonly indexed = new Map<string, { readonly seq: number; readonly laneIds: readonly string[] }>();
  /** Lane id to the hosts whose last snapshot reports it. */
  private readonly reporters = new Map<string, Set<string>>();
  /** Hosts being read for the index once (see {@link hostsReporting}). */
  private readonly seeding = new Map<string, Promise<void>>();

  constructor(private readonly clock: Clock = systemClock) {}

  /** Attach the collector (built after this source, since the collector takes `onSnapshot` at construction). */
  attach(collector: Pick<InventoryCollector, "latest">): void {
    this.collector = collector;
  }

  /** Record the receive time of an accepted snapshot. */
  readonly onSnapshot = (s: StoredInventory): void => {
    this.received.set(s.snapshot.hostId, { seq: s.snapshot.snapshotSeq, atMs: this.clock.now() });
    this.index(s.snapshot.hostId, s.snapshot.snapshotSeq, s.snapshot.lanes.map((l) => l.laneId));
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

  /**
   * The apply engine's `lane-id-unused` guard asked every enrolled host's inventory for each create (1,000 reads
   * per lane in a 1,000-host fleet). The answer comes from an index of the last snapshot of each host this process
   * accepted (every coordinator process receives every snapshot) or read once from the bucket for a host it has
   * not heard from yet; the caller confirms each candidate with a fresh {@link latest}.
   */
  async hostsReporting(laneId: string, hostIds: readonly string[]): Promise<readonly string[]> {
    const unseen = hostIds.filter((h) => !this.indexed.has(h));
    if (unseen.length > 0) await Promise.all(unseen.map((h) => this.seed(h)));
    const wanted = new Set(hostIds);
    return [...(this.reporters.get(laneId) ?? [])].filter((h) => wanted.has(h)).sort();
  }

  private seed(hostId: string): Promise<void> {
    let p = this.seeding.get(hostId);
    if (p === undefined) {
      p = this.latest(hostId).then((s) => {
        // A host without a snapshot is indexed as reporting nothing until its first one arrives.
        this.index(hostId, s?.snapshot.snapshotSeq ?? -1, s?.snapshot.lanes.map((l) => l.laneId) ?? []);
      });
      this.seeding.set(hostId, p);
      void p.finally(() => this.seeding.delete(hostId));
    }
    return p;
  }

  private index(hostId: string, seq: number, laneIds: readonly string[]): void {
    const prev = this.indexed.get(hostId);
    if (prev !== undefined && prev.seq >= seq) return;
    for (const id of prev?.laneIds ?? []) {
      const hosts = this.reporters.get(id);
      hosts?.delete(hostId);
      if (hosts?.size === 0) this.reporters.delete(id);
    }
    for (const id of laneIds) {
      let hosts = this.reporters.get(id);
      if (hosts === undefined) this.reporters.set(id, (hosts = new Set()));
      hosts.add(hostId);
    }
    this.indexed.set(hostId, { seq, laneIds });
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
