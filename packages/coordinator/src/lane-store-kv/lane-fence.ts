import { LanekeeperError } from "@lanekeeper/shared";
import type { JetStreamClient, KV } from "nats";
import type { CoordinatorErrorCode } from "../error-codes.js";
import { JETSTREAM_RETRY_MS } from "../limits.js";
import { isKvConflict } from "./kv-conflict.js";
import { retryTransient, type TransientRetryOptions } from "./transient-retry.js";

/**
 * Key of the fence in the lane-record bucket: the highest fencing token (leader epoch) any coordinator has acted
 * under. Lane ids are `[a-z0-9-]`, so a key with a dot never collides with a record's key.
 */
export const FENCE_KEY = "fence.epoch";

/** Most compare-and-set rounds when raising the fence before giving up (other coordinators keep writing it). */
const MAX_FENCE_CAS_ATTEMPTS = 20;

/**
 * This process acts under a fencing token older than the fence: another coordinator has become leader since
 * this one took (or read) its token. Nothing was written; whatever this process was doing must stop, and the
 * current leader carries on from the lane records.
 */
export class FencingTokenStaleError extends LanekeeperError<CoordinatorErrorCode> {
  constructor(token: number, fence: number, what: string) {
    super(
      "FENCING_TOKEN_STALE",
      `${what} refused: this coordinator acts under fencing token ${token} but a newer leader took over (fence ${fence}); ` +
        "nothing was written, the current leader carries on from the lane records. Run the command again to act under the new leader's token",
      { details: { token, fence } },
    );
  }
}

/** The fence could not be read or written (NATS or JetStream trouble). */
export class FenceUnavailableError extends LanekeeperError<CoordinatorErrorCode> {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("LANE_STORE_UNAVAILABLE", message, options);
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A hold of the leader lock: the revision it was taken at, in which incarnation of the lock bucket. */
export interface LeaderHold {
  readonly revision: number;
  /** Identifies the lock bucket (its stream's creation time): revisions only compare within one. */
  readonly incarnation: string;
  /** Shown in the fence, for operators. */
  readonly instance?: string;
}

/** The fence as stored: the newest epoch and the lock hold that took it. */
interface StoredFence {
  readonly epoch: number;
  readonly lockRevision: number;
  readonly lock: string;
  readonly instance?: string;
}

function parseFence(value: Uint8Array): StoredFence | undefined {
  try {
    const v = JSON.parse(dec.decode(value)) as Partial<StoredFence>;
    if (typeof v.epoch !== "number" || !Number.isSafeInteger(v.epoch) || v.epoch < 0) return undefined;
    return { epoch: v.epoch, lockRevision: typeof v.lockRevision === "number" ? v.lockRevision : 0, lock: typeof v.lock === "string" ? v.lock : "", ...(typeof v.instance === "string" ? { instance: v.instance } : {}) };
  } catch {
    return undefined;
  }
}

/**
 * Fencing for the coordinator's mutations (fencing tokens, with an epoch derived from the leader lock as token).
 *
 * The fence is one key in the lane-record bucket holding the newest **epoch** and the lock hold that took it. A
 * coordinator that takes the leader lock moves the fence to a new epoch before it acts ({@link lead}): one above
 * the stored epoch (and at least the wall clock in ms, so epochs keep growing even after the JetStream store was
 * lost and agents remember older ones), refused when the fence already belongs to a later hold of the lock (a
 * process that lost the lock while paused cannot take the fence back). A one-shot CLI command acts under the
 * fence's current epoch ({@link follow}).
 *
 * Every lane-record write and every intent first checks the fence ({@link check}): a process whose epoch is below
 * it has been superseded and is refused with {@link FencingTokenStaleError}. Intents carry the epoch too, and agents
 * refuse one below the highest they have seen, which also catches a stale process whose check raced the takeover.
 */
export class LaneFence {
  private tokenValue = 0;

  private constructor(
    private readonly kv: KV,
    private readonly clock: () => number,
    private readonly retry: TransientRetryOptions,
  ) {}

  /**
   * Open the fence in the lane-record bucket (opened, with its replicas, by the lane store first). `readRetryMs`
   * bounds how long a read of the fence rides out JetStream not answering. @default JETSTREAM_RETRY_MS
   */
  static async open(
    js: JetStreamClient,
    bucket: string,
    opts: { now?: () => number; readRetryMs?: number; sleep?: (ms: number) => Promise<void> } = {},
  ): Promise<LaneFence> {
    const now = opts.now ?? Date.now;
    return new LaneFence(await js.views.kv(bucket, { bindOnly: true }), now, {
      waitMs: opts.readRetryMs ?? JETSTREAM_RETRY_MS,
      now,
      ...(opts.sleep === undefined ? {} : { sleep: opts.sleep }),
    });
  }

  /** The epoch this process acts under (0 until {@link lead} or {@link follow}). */
  get token(): number {
    return this.tokenValue;
  }

  /** The fence's epoch as stored (0 when never moved). */
  async current(): Promise<number> {
    return (await this.read()).fence?.epoch ?? 0;
  }

  /**
   * Take the fence for a new hold of the leader lock: store a new epoch, higher than every earlier one, and act
   * under it. Idempotent for the same hold. Throws {@link FencingTokenStaleError} when a later hold of the lock
   * already took the fence.
   */
  async lead(hold: LeaderHold): Promise<number> {
    for (let attempt = 0; attempt < MAX_FENCE_CAS_ATTEMPTS; attempt++) {
      const { fence, revision } = await this.read();
      if (fence !== undefined && fence.lock === hold.incarnation) {
        if (fence.lockRevision === hold.revision) {
          this.tokenValue = fence.epoch;
          return fence.epoch;
        }
        if (fence.lockRevision > hold.revision) throw new FencingTokenStaleError(this.tokenValue, fence.epoch, `taking the lead with lock revision ${hold.revision}`);
      }
      const epoch = Math.max((fence?.epoch ?? 0) + 1, Math.floor(this.clock()));
      const value = enc.encode(
        JSON.stringify({ epoch, lockRevision: hold.revision, lock: hold.incarnation, ...(hold.instance === undefined ? {} : { instance: hold.instance }) } satisfies StoredFence),
      );
      try {
        if (revision === undefined) await this.kv.create(FENCE_KEY, value);
        else await this.kv.update(FENCE_KEY, value, revision);
        this.tokenValue = epoch;
        return epoch;
      } catch (err) {
        if (!isKvConflict(err)) throw new FenceUnavailableError("cannot move the fence of the lane store", { cause: err });
      }
    }
    throw new FenceUnavailableError(`gave up moving the fence after ${MAX_FENCE_CAS_ATTEMPTS} conflicts`);
  }

  /** Act under the fence's current epoch (a one-shot command, under whoever leads now). */
  async follow(): Promise<void> {
    this.tokenValue = await this.current();
  }

  /** Refuse (FENCING_TOKEN_STALE) when a newer leader has moved the fence above this process's epoch. */
  async check(what: string): Promise<void> {
    const fence = await this.current();
    if (fence > this.tokenValue) throw new FencingTokenStaleError(this.tokenValue, fence, what);
  }

  /**
   * The fence as stored. A read that JetStream does not answer (the lane-record stream electing a leader after a
   * node died, 503 or a timeout) is retried within `retry.waitMs`: the read changes nothing, and every write and
   * intent starts with it, so failing it at once would fail whatever action ran during the election.
   */
  private async read(): Promise<{ fence: StoredFence | undefined; revision: number | undefined }> {
    let e;
    try {
      e = await retryTransient(() => this.kv.get(FENCE_KEY), this.retry);
    } catch (err) {
      throw new FenceUnavailableError("cannot read the fence of the lane store", { cause: err });
    }
    if (e === null || e.operation !== "PUT") return { fence: undefined, revision: e?.revision };
    return { fence: parseFence(e.value), revision: e.revision };
  }
}
