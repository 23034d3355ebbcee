import { KeyedMutex, LanekeeperError, validateHostId } from "@lanekeeper/shared";
import type { JetStreamClient, KV } from "nats";
import { DEFAULT_SEQUENCE_BLOCK, MAX_SEQUENCE_CAS_ATTEMPTS, SEQUENCES_BUCKET } from "./limits.js";
import type { CoordinatorErrorCode } from "../error-codes.js";
import { isKvConflict } from "../lane-store-kv/kv-conflict.js";
import { retryTransient, type TransientRetryOptions } from "../lane-store-kv/transient-retry.js";
import { JETSTREAM_RETRY_MS } from "../limits.js";

/** Hands out per-host intent sequences that never repeat, even across coordinator restarts. */
export interface SequenceAllocator {
  /** The next sequence for `hostId` (strictly above every sequence handed out before). */
  next(hostId: string): Promise<number>;
  /**
   * `count` sequences for `hostId`, ascending, each strictly above every sequence handed out before: one
   * allocation for intents that are sent together (the dispatcher's per-host batch), so the durable store is
   * asked once for the batch instead of once per intent.
   */
  nextMany(hostId: string, count: number): Promise<number[]>;
  /**
   * Make every later sequence for `hostId` greater than `floor` (fast-forward after the agent reported a higher
   * high-water mark, e.g. when this store was restored from an old backup).
   */
  advanceTo(hostId: string, floor: number): Promise<void>;
}

/** Sequence allocation failed: the KV bucket is unreachable or compare-and-set kept losing. */
export class SequenceAllocationError extends LanekeeperError<CoordinatorErrorCode> {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("SEQUENCE_ALLOCATION_FAILED", message, options);
  }
}

/** Options of {@link KvSequenceAllocator.open}. */
export interface KvSequenceAllocatorOptions {
  /** @default SEQUENCES_BUCKET */
  bucket?: string;
  /** Sequences leased per compare-and-set. @default DEFAULT_SEQUENCE_BLOCK */
  block?: number;
  /** @default MAX_SEQUENCE_CAS_ATTEMPTS */
  maxAttempts?: number;
  /** KV replicas when the bucket is created. @default 1 */
  replicas?: number;
  /** How long an allocation rides out JetStream not answering (503, timeout). @default JETSTREAM_RETRY_MS */
  retryMs?: number;
  /** Waits between those attempts (tests). @default setTimeout */
  sleep?: (ms: number) => Promise<void>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * A durable per-host sequence in a JetStream KV bucket (`lk_sequences`, key = host id, value = the highest
 * sequence leased, in decimal). Every lease is a compare-and-set on the key's revision (`create` for the first,
 * `update(key, value, revision)` after), retried on conflict, so two coordinators can never hand out the same
 * sequence. A lease covers `block` sequences; the unused rest of a block is lost on restart, which the agent
 * accepts (gaps are allowed, only going back is refused).
 */
export class KvSequenceAllocator implements SequenceAllocator {
  private readonly leases = new Map<string, { next: number; last: number }>();
  /** One host's lease is read and renewed by one call at a time. */
  private readonly hostMutex = new KeyedMutex();

  private constructor(
    private readonly kv: KV,
    private readonly block: number,
    private readonly maxAttempts: number,
    private readonly retry: TransientRetryOptions,
  ) {}

  /** Open (creating if needed) the bucket. The coordinator's NATS user needs JetStream rights on it. */
  static async open(js: JetStreamClient, opts: KvSequenceAllocatorOptions = {}): Promise<KvSequenceAllocator> {
    const block = opts.block ?? DEFAULT_SEQUENCE_BLOCK;
    if (!Number.isSafeInteger(block) || block < 1) throw new SequenceAllocationError("block must be a positive integer");
    const kv = await js.views.kv(opts.bucket ?? SEQUENCES_BUCKET, { history: 1, replicas: opts.replicas ?? 1 });
    const retry = { waitMs: opts.retryMs ?? JETSTREAM_RETRY_MS, ...(opts.sleep === undefined ? {} : { sleep: opts.sleep }) };
    return new KvSequenceAllocator(kv, block, opts.maxAttempts ?? MAX_SEQUENCE_CAS_ATTEMPTS, retry);
  }

  async next(hostId: string): Promise<number> {
    return (await this.nextMany(hostId, 1))[0]!;
  }

  /**
   * Takes what the current lease still holds, and leases the rest in ONE compare-and-set of
   * `max(block, still needed)` sequences: a batch of intents costs one KV round trip, not one each.
   */
  nextMany(hostId: string, count: number): Promise<number[]> {
    validateHostId(hostId);
    if (!Number.isSafeInteger(count) || count < 1) throw new SequenceAllocationError("count must be a positive integer");
    return this.hostMutex.run(hostId, async () => {
      const out: number[] = [];
      const lease = this.leases.get(hostId);
      while (lease !== undefined && lease.next <= lease.last && out.length < count) out.push(lease.next++);
      const need = count - out.length;
      if (need === 0) return out;
      const size = Math.max(this.block, need);
      // The new block lies above the stored value, which is at or above the old lease's end: still ascending.
      const last = await this.cas(hostId, (cur) => cur + size);
      const first = last - size + 1;
      for (let s = first; s < first + need; s++) out.push(s);
      this.leases.set(hostId, { next: first + need, last });
      return out;
    });
  }

  advanceTo(hostId: string, floor: number): Promise<void> {
    validateHostId(hostId);
    if (!Number.isSafeInteger(floor) || floor < 0) throw new SequenceAllocationError("floor must be a non-negative integer");
    return this.hostMutex.run(hostId, async () => {
      this.leases.delete(hostId);
      await this.cas(hostId, (cur) => Math.max(cur, floor));
    });
  }

  /** The highest sequence leased for `hostId` so far (0 when none), as stored. */
  async current(hostId: string): Promise<number> {
    const e = await this.kv.get(hostId);
    return e === null || e.operation !== "PUT" ? 0 : parseStored(hostId, e.value);
  }

  /**
   * Compare-and-set loop: read, compute, write with the read revision; retry on conflict. Returns the new value.
   * While JetStream does not answer (the bucket's stream electing a leader after a node died) the whole loop is
   * retried within `retry.waitMs`: each round reads afresh, so a write that took effect although its answer was lost
   * only leaves a gap of one block (allowed), never a sequence handed out twice.
   */
  private cas(hostId: string, f: (cur: number) => number): Promise<number> {
    return retryTransient(() => this.casOnce(hostId, f), this.retry);
  }

  private async casOnce(hostId: string, f: (cur: number) => number): Promise<number> {
    let lastErr: unknown;
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      const e = await this.kv.get(hostId).catch((err: unknown) => {
        throw new SequenceAllocationError(`cannot read ${hostId}'s sequence`, { cause: err });
      });
      const exists = e !== null && e.operation === "PUT";
      const cur = exists ? parseStored(hostId, e.value) : 0;
      const nextValue = f(cur);
      if (!Number.isSafeInteger(nextValue)) throw new SequenceAllocationError(`sequence of ${hostId} overflows`);
      if (nextValue === cur && exists) return cur;
      try {
        if (exists) await this.kv.update(hostId, enc.encode(String(nextValue)), e.revision);
        else await this.kv.create(hostId, enc.encode(String(nextValue)));
        return nextValue;
      } catch (err) {
        if (!isKvConflict(err)) throw new SequenceAllocationError(`cannot update ${hostId}'s sequence`, { cause: err });
        lastErr = err;
        // Someone else wrote first: back off a little (jittered) and re-read.
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 ** attempt)));
      }
    }
    throw new SequenceAllocationError(`gave up allocating a sequence for ${hostId} after ${this.maxAttempts} conflicts`, {
      cause: lastErr,
    });
  }
}

function parseStored(hostId: string, value: Uint8Array): number {
  const text = dec.decode(value);
  const n = /^(0|[1-9][0-9]{0,15})$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new SequenceAllocationError(`stored sequence of ${hostId} is not a number; refusing to guess`);
  return n;
}
