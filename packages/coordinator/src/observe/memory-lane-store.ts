import type { LaneRecord, StoredLaneRecord } from "./lane-record.js";
import { LaneStoreConflictError, type LaneStore } from "./lane-store.js";

/** {@link LaneStore} in memory, with the same compare-and-set rules as the durable store. For tests and `plan`. */
export class MemoryLaneStore implements LaneStore {
  private readonly records = new Map<string, StoredLaneRecord>();
  private readonly retired = new Set<string>();
  private nextRevision = 1;

  /** @param initial - records to start with (revisions are assigned). */
  constructor(initial: readonly LaneRecord[] = []) {
    for (const r of initial) this.put(r);
  }

  list(): Promise<readonly StoredLaneRecord[]> {
    return Promise.resolve([...this.records.values()].sort((a, b) => (a.laneId < b.laneId ? -1 : a.laneId > b.laneId ? 1 : 0)));
  }

  async listHost(hostId: string): Promise<readonly StoredLaneRecord[]> {
    return (await this.list()).filter((r) => r.hostId === hostId);
  }

  get(laneId: string): Promise<StoredLaneRecord | undefined> {
    return Promise.resolve(this.records.get(laneId));
  }

  create(record: LaneRecord): Promise<StoredLaneRecord> {
    if (this.records.has(record.laneId)) {
      return Promise.reject(new LaneStoreConflictError(record.laneId, "a record already exists"));
    }
    return Promise.resolve(this.put(record));
  }

  update(record: LaneRecord, expectedRevision: number): Promise<StoredLaneRecord> {
    const cur = this.records.get(record.laneId);
    if (cur?.revision !== expectedRevision) {
      return Promise.reject(
        new LaneStoreConflictError(record.laneId, `expected revision ${expectedRevision}, found ${cur?.revision ?? "none"}`),
      );
    }
    return Promise.resolve(this.put(record));
  }

  delete(laneId: string, expectedRevision: number): Promise<void> {
    // Retired first, as the durable store does: a retired id that is still in use is merely never reused.
    this.retired.add(laneId);
    const cur = this.records.get(laneId);
    if (cur?.revision !== expectedRevision) {
      return Promise.reject(
        new LaneStoreConflictError(laneId, `expected revision ${expectedRevision}, found ${cur?.revision ?? "none"}`),
      );
    }
    this.records.delete(laneId);
    return Promise.resolve();
  }

  retiredLaneIds(): Promise<readonly string[]> {
    return Promise.resolve([...this.retired].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  private put(record: LaneRecord): StoredLaneRecord {
    const stored: StoredLaneRecord = Object.freeze({ ...record, revision: this.nextRevision++ });
    this.records.set(record.laneId, stored);
    return stored;
  }
}
