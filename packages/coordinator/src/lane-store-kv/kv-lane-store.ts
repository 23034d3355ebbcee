import { LanekeeperError, validateLaneId } from "@lanekeeper/shared";
import type { JetStreamClient, KV, KvEntry } from "nats";
import type { LaneRecord, StoredLaneRecord } from "../observe/lane-record.js";
import { LaneStoreConflictError, type LaneStore } from "../observe/lane-store.js";
import type { CoordinatorErrorCode } from "../error-codes.js";
import { FENCE_KEY, type LaneFence } from "./lane-fence.js";
import { isKvConflict } from "./kv-conflict.js";
import { LaneRecordMirror, type MirrorKeys } from "./lane-record-mirror.js";
import { isTransientNatsError } from "../context/nats-opening.js";
import { JETSTREAM_RETRY_MS, NATS_OPEN_BACKOFF_MAX_MS, NATS_OPEN_BACKOFF_MIN_MS } from "../limits.js";
import { retryTransient } from "./transient-retry.js";

/** JetStream KV bucket holding the coordinator's lane records (key = lane id, value = JSON). */
export const LANES_BUCKET = "lk_lanes";

/** Options of {@link KvLaneStore.open}. */
export interface KvLaneStoreOptions {
  /** @default LANES_BUCKET */
  readonly bucket?: string;
  /** KV replicas when the bucket is created. @default 1 */
  readonly replicas?: number;
  /**
   * Fence every write: refused with FENCING_TOKEN_STALE once a newer leader raised the fence, and stamped with
   * this process's token. Opened on the same bucket after it (see {@link KvLaneStore.attachFence}).
   */
  readonly fence?: LaneFence;
  /**
   * How long a write JetStream does not answer (503, timeout: a stream leader election) is retried, after reading
   * back whether it took effect. @default JETSTREAM_RETRY_MS
   */
  readonly writeRetryMs?: number;
  /** Clock and pause of those retries (tests). @default Date.now, setTimeout */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** A lane record in the bucket could not be decoded: someone wrote the bucket by hand, or it is corrupt. */
export class LaneStoreCorruptError extends LanekeeperError<CoordinatorErrorCode> {
  constructor(laneId: string, why: string) {
    super("LANE_STORE_CORRUPT", `lane record ${laneId} in the lane store cannot be read (${why}); inspect it with \`nats kv get ${LANES_BUCKET} ${laneId}\``, {
      details: { laneId },
    });
  }
}

/** The lane store could not be reached or written for another reason than a lost compare-and-set. */
export class LaneStoreUnavailableError extends LanekeeperError<CoordinatorErrorCode> {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("LANE_STORE_UNAVAILABLE", message, options);
  }
}

/**
 * Key prefix of retired lane ids (`retired.<laneId>`). Lane ids are `[a-z0-9-]`, so these keys never collide
 * with a record's key.
 */
export const RETIRED_KEY_PREFIX = "retired.";

/** Attempts at listing the bucket's keys (see `keys()`). */
const MAX_KEYS_ATTEMPTS = 6;
/** Pause between them. */
const KEYS_RETRY_PAUSE_MS = 200;

/** Longest wait for the mirror to deliver up to the bucket's last sequence before a list scans instead. */
const MIRROR_CATCH_UP_TIMEOUT_MS = 10_000;

const MIRROR_KEYS: MirrorKeys = {
  retired: (key) => (key.startsWith(RETIRED_KEY_PREFIX) ? key.slice(RETIRED_KEY_PREFIX.length) : undefined),
  isRecord: (key) => !key.startsWith(RETIRED_KEY_PREFIX) && key !== FENCE_KEY,
};

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The fields a record may carry; anything else in the stored JSON is dropped on read. */
const RECORD_FIELDS = [
  "laneId",
  "scope",
  "pool",
  "hostId",
  "runnerId",
  "state",
  "createdAtMs",
  "updatedAtMs",
  "drainReason",
  "orphan",
  "attention",
  "operationId",
  "healthRestartsAtMs",
  "smoke",
  "fencingToken",
] as const;

const STATES = new Set(["creating", "active", "draining", "removing", "needs-attention", "orphaned"]);

function decodeRecord(key: string, value: Uint8Array, revision: number): StoredLaneRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(dec.decode(value));
  } catch {
    throw new LaneStoreCorruptError(key, "not JSON");
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new LaneStoreCorruptError(key, "not an object");
  const o = raw as Record<string, unknown>;
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const f of RECORD_FIELDS) if (Object.hasOwn(o, f) && o[f] !== undefined) out[f] = o[f];
  if (out.laneId !== key) throw new LaneStoreCorruptError(key, "lane id does not match its key");
  for (const f of ["scope", "pool", "hostId"] as const) {
    if (typeof out[f] !== "string") throw new LaneStoreCorruptError(key, `${f} is not a string`);
  }
  if (typeof out.state !== "string" || !STATES.has(out.state)) throw new LaneStoreCorruptError(key, "unknown state");
  if (typeof out.createdAtMs !== "number" || typeof out.updatedAtMs !== "number") throw new LaneStoreCorruptError(key, "timestamps missing");
  if (out.runnerId !== undefined && (typeof out.runnerId !== "number" || !Number.isSafeInteger(out.runnerId))) {
    throw new LaneStoreCorruptError(key, "runnerId is not an integer");
  }
  const restarts = out.healthRestartsAtMs;
  if (restarts !== undefined && (!Array.isArray(restarts) || !restarts.every((t) => typeof t === "number" && Number.isSafeInteger(t)))) {
    throw new LaneStoreCorruptError(key, "healthRestartsAtMs is not a list of times");
  }
  if (out.fencingToken !== undefined && (typeof out.fencingToken !== "number" || !Number.isSafeInteger(out.fencingToken) || out.fencingToken < 0)) {
    throw new LaneStoreCorruptError(key, "fencingToken is not a non-negative integer");
  }
  const smoke = out.smoke as Record<string, unknown> | undefined;
  if (
    smoke !== undefined &&
    (smoke === null || typeof smoke !== "object" || typeof smoke.runId !== "string" || typeof smoke.label !== "string" || typeof smoke.leaseUntilMs !== "number")
  ) {
    throw new LaneStoreCorruptError(key, "smoke is not a smoke mark");
  }
  return Object.freeze({ ...(out as unknown as LaneRecord), revision });
}

function encodeRecord(record: LaneRecord): Uint8Array {
  const out: Record<string, unknown> = {};
  for (const f of RECORD_FIELDS) if (record[f] !== undefined) out[f] = record[f];
  return enc.encode(JSON.stringify(out));
}

/**
 * The durable {@link LaneStore}: one JetStream KV entry per lane (bucket `lk_lanes`), revision = the KV
 * entry's revision. `create` is KV create (fails when the key holds a value), `update` and `delete` carry the
 * revision they read (`previousSeq`), so two coordinators, or an apply racing a stale plan, can never both win:
 * the loser gets {@link LaneStoreConflictError} and re-plans.
 */
export class KvLaneStore implements LaneStore {
  private fence: LaneFence | undefined;
  /** The bucket in memory (started by the first list, see {@link LaneRecordMirror}); undefined until then or after it failed. */
  private mirror: Promise<LaneRecordMirror | undefined> | undefined;

  private constructor(
    private readonly kv: KV,
    fence: LaneFence | undefined,
    private readonly retry: { readonly waitMs: number; readonly now: () => number; readonly sleep: (ms: number) => Promise<void> },
  ) {
    this.fence = fence;
  }

  /** Open (creating if needed) the bucket. The coordinator's NATS user needs JetStream rights on it. */
  static async open(js: JetStreamClient, opts: KvLaneStoreOptions = {}): Promise<KvLaneStore> {
    const kv = await js.views.kv(opts.bucket ?? LANES_BUCKET, { history: 5, replicas: opts.replicas ?? 1 });
    return new KvLaneStore(kv, opts.fence, {
      waitMs: opts.writeRetryMs ?? JETSTREAM_RETRY_MS,
      now: opts.now ?? Date.now,
      sleep: opts.sleep ?? ((ms) => new Promise<void>((r) => setTimeout(r, ms))),
    });
  }

  /** Fence every later write with `fence` (opened on this bucket once it exists). */
  attachFence(fence: LaneFence): void {
    this.fence = fence;
  }

  /** Refuse a write from a superseded coordinator; the record to write, stamped with this process's token. */
  private async fenced(record: LaneRecord): Promise<LaneRecord> {
    if (this.fence === undefined) return record;
    await this.fence.check(`writing lane record ${record.laneId}`);
    return this.fence.token > 0 ? { ...record, fencingToken: this.fence.token } : record;
  }

  async list(): Promise<readonly StoredLaneRecord[]> {
    const m = await this.synced();
    return m === undefined ? this.scan() : m.list();
  }

  async listHost(hostId: string): Promise<readonly StoredLaneRecord[]> {
    const m = await this.synced();
    return m === undefined ? (await this.scan()).filter((r) => r.hostId === hostId) : m.listHost(hostId);
  }

  /**
   * The mirror, caught up with everything the bucket held when this was called (its last sequence, from one
   * stream-info request); undefined when the mirror cannot be used (its watch failed or lagged): the caller scans.
   */
  private async synced(): Promise<LaneRecordMirror | undefined> {
    this.mirror ??= LaneRecordMirror.start(this.kv, decodeRecord, MIRROR_KEYS).catch(() => undefined);
    const m = await this.mirror;
    let ok = false;
    if (m !== undefined && !m.stopped) {
      try {
        const lastSeq = (await this.kv.status()).streamInfo.state.last_seq;
        ok = await m.caughtUp(lastSeq, MIRROR_CATCH_UP_TIMEOUT_MS);
      } catch {
        ok = false;
      }
    }
    if (ok) return m;
    // Start afresh next time; this list scans the bucket as before.
    m?.stop();
    this.mirror = undefined;
    return undefined;
  }

  /** Every record, read key by key (without the mirror). */
  private async scan(): Promise<readonly StoredLaneRecord[]> {
    const keys = await this.keys();
    const out: StoredLaneRecord[] = [];
    for (const k of keys.filter((x) => !x.startsWith(RETIRED_KEY_PREFIX) && x !== FENCE_KEY).sort()) {
      const r = await this.get(k);
      if (r !== undefined) out.push(r);
    }
    return out;
  }

  async get(laneId: string): Promise<StoredLaneRecord | undefined> {
    validateLaneId(laneId);
    let e;
    try {
      e = await this.kv.get(laneId);
    } catch (err) {
      throw new LaneStoreUnavailableError(`cannot read lane record ${laneId}`, { cause: err });
    }
    if (e === null || e.operation !== "PUT") return undefined;
    return decodeRecord(laneId, e.value, e.revision);
  }

  async create(input: LaneRecord): Promise<StoredLaneRecord> {
    validateLaneId(input.laneId);
    const record = await this.fenced(input);
    const value = encodeRecord(record);
    const revision = await this.write(record.laneId, "write", value, () => this.kv.create(record.laneId, value), (e) => e === null || e.operation !== "PUT", "a record already exists");
    return Object.freeze({ ...record, revision });
  }

  async update(input: LaneRecord, expectedRevision: number): Promise<StoredLaneRecord> {
    validateLaneId(input.laneId);
    const record = await this.fenced(input);
    const value = encodeRecord(record);
    const revision = await this.write(
      record.laneId,
      "write",
      value,
      () => this.kv.update(record.laneId, value, expectedRevision),
      (e) => e?.revision === expectedRevision,
      `expected revision ${expectedRevision}, the record has moved on`,
    );
    return Object.freeze({ ...record, revision });
  }

  /**
   * One compare-and-set write of a lane record (`value`, or a delete when undefined). When JetStream does not answer
   * (a stream electing a leader after its node died), the answer of a write that took effect may be what was lost:
   * the entry is read back, and the write counts as done when it holds exactly `value` (or is gone, for a delete),
   * as refused when it moved on otherwise (`stillExpected` false: another writer), and is tried again when it is
   * still as the write expected, all within `writeRetryMs`. Never two writes that both take effect.
   */
  private async write(
    laneId: string,
    verb: "write" | "delete",
    value: Uint8Array | undefined,
    attempt: () => Promise<number>,
    stillExpected: (e: KvEntry | null) => boolean,
    conflict: string,
  ): Promise<number> {
    const { now, sleep } = this.retry;
    const until = now() + this.retry.waitMs;
    let delay = NATS_OPEN_BACKOFF_MIN_MS;
    for (;;) {
      try {
        return await attempt();
      } catch (err) {
        if (isKvConflict(err)) throw new LaneStoreConflictError(laneId, conflict);
        if (!isTransientNatsError(err) || now() + delay > until) throw new LaneStoreUnavailableError(`cannot ${verb} lane record ${laneId}`, { cause: err });
        await sleep(delay);
        delay = Math.min(NATS_OPEN_BACKOFF_MAX_MS, delay * 2);
        let e: KvEntry | null;
        try {
          e = await retryTransient(() => this.kv.get(laneId), { waitMs: Math.max(0, until - now()), now, sleep });
        } catch (readErr) {
          throw new LaneStoreUnavailableError(`cannot ${verb} lane record ${laneId} (no answer, and reading it back failed)`, { cause: readErr });
        }
        const held = e !== null && e.operation === "PUT" ? e.value : undefined;
        if (value === undefined ? held === undefined : held !== undefined && Buffer.compare(held, value) === 0) return e?.revision ?? 0;
        if (!stillExpected(e)) throw new LaneStoreConflictError(laneId, conflict);
      }
    }
  }

  async retiredLaneIds(): Promise<readonly string[]> {
    const m = await this.synced();
    if (m !== undefined) return m.retired();
    const keys = await this.keys();
    return keys
      .filter((k) => k.startsWith(RETIRED_KEY_PREFIX))
      .map((k) => k.slice(RETIRED_KEY_PREFIX.length))
      .sort();
  }

  async delete(laneId: string, expectedRevision: number): Promise<void> {
    validateLaneId(laneId);
    await this.fence?.check(`deleting lane record ${laneId}`);
    // Retire the id before the delete: a crash in between leaves a retired id that is still in use (harmless,
    // it is taken anyway), never a deleted record whose id could be handed out again.
    try {
      // A put of the same value: repeating it is harmless.
      await retryTransient(() => this.kv.put(`${RETIRED_KEY_PREFIX}${laneId}`, enc.encode(JSON.stringify({ laneId, retiredAfterRevision: expectedRevision }))), this.retry);
    } catch (err) {
      throw new LaneStoreUnavailableError(`cannot retire lane id ${laneId}`, { cause: err });
    }
    await this.write(
      laneId,
      "delete",
      undefined,
      async () => {
        await this.kv.delete(laneId, { previousSeq: expectedRevision });
        return 0;
      },
      (e) => e?.revision === expectedRevision,
      `expected revision ${expectedRevision}, the record has moved on`,
    );
  }

  /**
   * The bucket's keys. Listing needs a short-lived consumer, whose creation on a clustered stream with a peer down
   * times out now and then (nats-server 2.9 may place it on the missing peer): a read, so it is simply retried.
   */
  private async keys(): Promise<string[]> {
    let lastErr: unknown;
    for (let attempt = 1; attempt <= MAX_KEYS_ATTEMPTS; attempt++) {
      try {
        const keys: string[] = [];
        for await (const k of await this.kv.keys()) keys.push(k);
        return keys;
      } catch (err) {
        lastErr = err;
        if (attempt < MAX_KEYS_ATTEMPTS) await new Promise((r) => setTimeout(r, KEYS_RETRY_PAUSE_MS));
      }
    }
    throw new LaneStoreUnavailableError("cannot list lane records", { cause: lastErr });
  }
}

