import type { KV, KvEntry, QueuedIterator } from "nats";
import type { StoredLaneRecord } from "../observe/lane-record.js";

/** Decodes one record from its key, value and revision (throws when it is corrupt). */
export type RecordDecoder = (key: string, value: Uint8Array, revision: number) => StoredLaneRecord;

/** Which keys of the bucket are records and which are retired lane ids. */
export interface MirrorKeys {
  /** The retired lane id a key names, if it is a retired key. */
  retired(key: string): string | undefined;
  /** Whether a key holds a lane record (not a retired id, not the fence). */
  isRecord(key: string): boolean;
}

function byLaneId(a: StoredLaneRecord, b: StoredLaneRecord): number {
  return a.laneId < b.laneId ? -1 : a.laneId > b.laneId ? 1 : 0;
}

/**
 * The lane store's bucket in this process's memory, kept up to date by one KV watch (an ordered consumer: the last
 * value of every key, then every change, in stream order). Listing the bucket used to read its keys and then every
 * record with its own request, in sequence: 20,000 requests per list at fleet size, and the apply engine's
 * host-capacity guard listed once per create (quadratic over a fleet created from empty). With the mirror a list
 * costs one stream-info request (the bucket's last sequence, see {@link KvLaneStore}) and a wait until the watch
 * has delivered up to it, so it is as fresh as a scan started at the same moment. Records are also indexed by
 * host. A corrupt record is remembered as such, and listing throws its error as a scan would.
 */
export class LaneRecordMirror {
  private readonly records = new Map<string, StoredLaneRecord>();
  /** Keys whose value could not be decoded, with the error. */
  private readonly corrupt = new Map<string, Error>();
  private readonly byHost = new Map<string, Map<string, StoredLaneRecord>>();
  private readonly retiredIds = new Set<string>();
  private seenSeq = 0;
  private sorted: readonly StoredLaneRecord[] | undefined;
  private readonly waiters = new Set<{ readonly seq: number; readonly resolve: (ok: boolean) => void }>();
  private iter: QueuedIterator<KvEntry> | undefined;
  private ended = false;

  private constructor(
    private readonly decode: RecordDecoder,
    private readonly keys: MirrorKeys,
  ) {}

  /** Start watching `kv`. Resolves once the watch is set up (not once it has caught up). */
  static async start(kv: KV, decode: RecordDecoder, keys: MirrorKeys): Promise<LaneRecordMirror> {
    const m = new LaneRecordMirror(decode, keys);
    m.iter = await kv.watch({ key: ">" });
    void m.consume(m.iter);
    return m;
  }

  /** Whether the watch ended (connection closed, consumer gone): the mirror must not be used any more. */
  get stopped(): boolean {
    return this.ended;
  }

  /** The highest stream sequence the watch has delivered. */
  get sequence(): number {
    return this.seenSeq;
  }

  /** Resolves true once the watch has delivered stream sequence `seq`, false after `timeoutMs` or when it ends. */
  caughtUp(seq: number, timeoutMs: number): Promise<boolean> {
    if (this.seenSeq >= seq) return Promise.resolve(true);
    if (this.ended) return Promise.resolve(false);
    return new Promise((resolve) => {
      const w = {
        seq,
        resolve: (ok: boolean): void => {
          clearTimeout(timer);
          this.waiters.delete(w);
          resolve(ok);
        },
      };
      const timer = setTimeout(() => w.resolve(false), timeoutMs);
      this.waiters.add(w);
    });
  }

  /** Every record, sorted by lane id; throws the decode error of a corrupt one. */
  list(): readonly StoredLaneRecord[] {
    this.throwCorrupt();
    this.sorted ??= [...this.records.values()].sort(byLaneId);
    return this.sorted;
  }

  /** The records of one host, sorted by lane id (a corrupt record anywhere throws, as {@link list} does). */
  listHost(hostId: string): readonly StoredLaneRecord[] {
    this.throwCorrupt();
    return [...(this.byHost.get(hostId)?.values() ?? [])].sort(byLaneId);
  }

  /** Every retired lane id, sorted. */
  retired(): readonly string[] {
    return [...this.retiredIds].sort();
  }

  private throwCorrupt(): void {
    for (const err of this.corrupt.values()) throw err;
  }

  /** Stop watching. */
  stop(): void {
    this.iter?.stop();
    this.end();
  }

  private async consume(iter: QueuedIterator<KvEntry>): Promise<void> {
    try {
      for await (const e of iter) this.apply(e);
    } catch {
      // The watch failed: the store falls back to scanning and starts a new mirror.
    }
    this.end();
  }

  private end(): void {
    this.ended = true;
    for (const w of [...this.waiters]) w.resolve(false);
  }

  private apply(e: KvEntry): void {
    if (e.revision > this.seenSeq) this.seenSeq = e.revision;
    const put = e.operation === "PUT";
    const retiredId = this.keys.retired(e.key);
    if (retiredId !== undefined) {
      if (put) this.retiredIds.add(retiredId);
      else this.retiredIds.delete(retiredId);
    } else if (this.keys.isRecord(e.key)) {
      this.drop(e.key);
      if (put) {
        try {
          const r = this.decode(e.key, e.value, e.revision);
          this.records.set(e.key, r);
          let host = this.byHost.get(r.hostId);
          if (host === undefined) this.byHost.set(r.hostId, (host = new Map<string, StoredLaneRecord>()));
          host.set(r.laneId, r);
        } catch (err) {
          this.corrupt.set(e.key, err instanceof Error ? err : new Error(String(err)));
        }
      }
      this.sorted = undefined;
    }
    for (const w of [...this.waiters]) if (this.seenSeq >= w.seq) w.resolve(true);
  }

  private drop(key: string): void {
    this.corrupt.delete(key);
    const old = this.records.get(key);
    if (old === undefined) return;
    this.records.delete(key);
    const host = this.byHost.get(old.hostId);
    host?.delete(key);
    if (host?.size === 0) this.byHost.delete(old.hostId);
  }
}
