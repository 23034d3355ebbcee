import { randomBytes } from "node:crypto";
import { systemClock, type Clock, type Logger } from "@lanekeeper/shared";
import type { JetStreamClient, KV } from "nats";
import type { LeaderHold } from "../lane-store-kv/lane-fence.js";
import { LEADER_BUCKET, LEADER_KEY } from "./limits.js";
import type { PublishedPolicy } from "./policy-revision.js";
import { isKvConflict } from "../lane-store-kv/kv-conflict.js";

/** Options of {@link LeaderLock.open}. */
export interface LeaderLockOptions {
  /** How long a leader keeps the lock without renewing it (the KV bucket's max age). */
  readonly ttlMs: number;
  /** This coordinator's name, shown to the others. */
  readonly instance: string;
  /** @default LEADER_BUCKET */
  readonly bucket?: string;
  /** KV replicas when the bucket is created (policy `coordinator.jetstreamReplicas`). @default 1 */
  readonly replicas?: number;
  readonly clock?: Clock;
  readonly log?: Logger;
  /** Called when leadership is gained (true) or lost (false). */
  readonly onChange?: (leader: boolean) => void;
  /** The policy revision this process runs, written into the record at every acquire and renewal. */
  readonly policy?: () => PublishedPolicy | undefined;
  /** Called when taking or renewing the lock failed for want of an answer (not because another holds it). */
  readonly onUnavailable?: (err: unknown) => void;
}

/** Who holds the lock, as stored. */
export interface LeaderInfo {
  readonly holder: string;
  readonly instance: string;
  readonly sinceMs: number;
  /** The lock entry's revision when this holder took it (written from its first renewal on). */
  readonly takenAtRevision?: number;
  /** The policy revision the holder runs (`serve/policy-revision.ts`). */
  readonly policy?: PublishedPolicy;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * One leader at a time among coordinators sharing a NATS cluster: a key in a JetStream KV bucket whose entries
 * expire after `ttlMs` (the bucket's max age). Acquiring is KV `create` (fails while someone holds it); the
 * leader renews with a revision-checked `update` every third of the TTL, so a leader that stops renewing (crash,
 * partition) loses the lock when its entry ages out, and a renewal after someone else took over fails instead of
 * stealing it back. Every holder has a fresh random id, so a restarted coordinator never mistakes an old entry
 * for its own.
 */
export class LeaderLock {
  private revision: number | undefined;
  private epochValue: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private tick: Promise<void> = Promise.resolve();
  private readonly holder = randomBytes(8).toString("hex");
  private readonly clock: Clock;
  private sinceMs = 0;

  private constructor(
    private readonly kv: KV,
    private readonly opts: LeaderLockOptions,
    private readonly incarnation: string,
  ) {
    this.clock = opts.clock ?? systemClock;
  }

  /** Open (creating if needed) the lock bucket. */
  static async open(js: JetStreamClient, opts: LeaderLockOptions): Promise<LeaderLock> {
    const kv = await js.views.kv(opts.bucket ?? LEADER_BUCKET, { history: 1, ttl: opts.ttlMs, replicas: opts.replicas ?? 1 });
    // Revisions only compare within one bucket: a re-created bucket starts again at 1.
    const incarnation = (await kv.status()).streamInfo.created;
    return new LeaderLock(kv, opts, incarnation);
  }

  /**
   * This process's hold on the lock while it holds it: the revision it was taken at (a renewal keeps it; losing and
   * re-taking the lock gives a new one) and the bucket's incarnation. The fence turns each hold into a fencing epoch.
   */
  get hold(): LeaderHold | undefined {
    if (this.revision === undefined || this.epochValue === undefined) return undefined;
    return { revision: this.epochValue, incarnation: this.incarnation, instance: this.opts.instance };
  }

  /** Whether this process holds the lock (as of the last acquire or renewal). */
  get isLeader(): boolean {
    return this.revision !== undefined;
  }

  /** Try to take the lock, or renew it when held. Returns whether this process is the leader now. */
  async ensure(): Promise<boolean> {
    const run = this.tick.then(() => this.once());
    this.tick = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Keep trying to take, then to renew, the lock every third of the TTL until {@link stop}. */
  start(): void {
    if (this.timer !== undefined) return;
    const every = Math.max(50, Math.floor(this.opts.ttlMs / 3));
    const loop = (): void => {
      void this.ensure().finally(() => {
        if (this.timer !== undefined) this.timer = setTimeout(loop, every);
      });
    };
    this.timer = setTimeout(loop, 0);
  }

  /** Stop renewing and release the lock if held (another coordinator can take over at once). */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.tick;
    if (this.revision !== undefined) {
      try {
        await this.kv.delete(LEADER_KEY, { previousSeq: this.revision });
      } catch {
        // Someone else holds it already, or it expired: nothing to release.
      }
      this.set(undefined);
    }
  }

  /** The current holder, if any. */
  async holderInfo(): Promise<LeaderInfo | undefined> {
    const e = await this.kv.get(LEADER_KEY);
    if (e === null || e.operation !== "PUT") return undefined;
    try {
      return JSON.parse(dec.decode(e.value)) as LeaderInfo;
    } catch {
      return undefined;
    }
  }

  private async once(): Promise<boolean> {
    const now = this.clock.now();
    if (this.revision === undefined) this.sinceMs = now;
    const policy = this.opts.policy?.();
    const info: LeaderInfo = {
      holder: this.holder,
      instance: this.opts.instance,
      sinceMs: this.sinceMs,
      ...(this.revision === undefined ? {} : { takenAtRevision: this.epochValue }),
      ...(policy === undefined ? {} : { policy }),
    };
    const value = enc.encode(JSON.stringify(info));
    try {
      if (this.revision === undefined) {
        const revision = await this.kv.create(LEADER_KEY, value);
        this.epochValue = revision;
        this.set(revision);
      } else this.set(await this.kv.update(LEADER_KEY, value, this.revision));
    } catch (err) {
      if (!isKvConflict(err)) {
        this.opts.log?.warn({ err: (err as { message?: string }).message ?? String(err) }, "leader lock unavailable");
        this.opts.onUnavailable?.(err);
      }
      this.set(undefined);
    }
    return this.revision !== undefined;
  }

  private set(revision: number | undefined): void {
    const was = this.revision !== undefined;
    this.revision = revision;
    const is = revision !== undefined;
    if (was !== is) {
      this.opts.log?.info({ instance: this.opts.instance, leader: is }, is ? "leadership acquired" : "leadership lost");
      this.opts.onChange?.(is);
    }
  }
}

