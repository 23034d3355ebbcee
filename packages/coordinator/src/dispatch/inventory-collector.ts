import type { KeyObject } from "node:crypto";
import type { JetStreamClient, KV, NatsConnection, Subscription } from "nats";
import { AuditAnchorStore } from "./audit-anchor-store.js";
import type { Logger } from "pino";
import {
  ALL_INVENTORY_SUBJECTS,
  CLOCK_SKEW_MS,
  INVENTORY_SUBJECT_PREFIX,
  isRejectError,
  KeyedMutex,
  LanekeeperError,
  publicKeyFromRaw,
  RejectReason,
  subjectToken,
  systemClock,
  verifyInventory,
  type Clock,
  type EnrolledHostKey,
  type InventorySnapshot,
} from "@lanekeeper/shared";
import type { HostRegistry } from "./host-registry.js";
import { INVENTORY_BUCKET, MAX_INVENTORY_AGE_MS } from "./limits.js";
import type { CoordinatorErrorCode } from "../error-codes.js";
import { isKvConflict } from "../lane-store-kv/kv-conflict.js";

/** An inventory the coordinator refused. `reason` is a {@link RejectReason}. */
export class InventoryRejectedError extends LanekeeperError<CoordinatorErrorCode> {
  readonly reason: RejectReason;

  constructor(reason: RejectReason, message: string, options: { cause?: unknown } = {}) {
    super(reason, message, options);
    this.reason = reason;
  }
}

/** A verified snapshot with the envelope it came in. */
export interface StoredInventory {
  readonly snapshot: InventorySnapshot;
  readonly envelope: Uint8Array;
}

/** Options of {@link InventoryCollector.open}. */
export interface InventoryCollectorOptions {
  hosts: HostRegistry;
  /** @default systemClock */
  clock?: Clock;
  /** @default INVENTORY_BUCKET */
  bucket?: string;
  /** Snapshots older than this (by their signed `taken_at`) are stale. @default MAX_INVENTORY_AGE_MS */
  maxAgeMs?: number;
  /** @default CLOCK_SKEW_MS */
  skewMs?: number;
  /** KV replicas when the bucket is created. @default 1 */
  replicas?: number;
  log?: Logger;
  /** Called after each accepted snapshot. */
  onSnapshot?: (s: StoredInventory) => void;
}

/**
 * The coordinator's view of agent inventories. It verifies every snapshot on `lk.v1.inventory.*` against the
 * identity key enrolled for the host (a host reports only on itself: the snapshot's host, the key's host and
 * the subject's host must agree), refuses stale snapshots and any `snapshot_seq` not above the last accepted
 * one, and keeps the last verified envelope per host in a JetStream KV bucket (`lk_inventory`), written with
 * compare-and-set so two coordinators can never move a host's snapshot backwards. Agents need no JetStream
 * rights: they only publish.
 */
export class InventoryCollector {
  private readonly clock: Clock;
  private readonly keyObjects = new Map<string, KeyObject>();
  private sub: Subscription | undefined;
  private readonly inflight = new Set<Promise<unknown>>();
  /**
   * The last snapshot {@link latest} verified per host, by KV revision: a revision names one value for good, so
   * the same revision is not verified again (a fleet's create read each host's inventory for every lane's guards,
   * and the signature check was most of the coordinator's CPU). The host's enrolled key is still looked up each time.
   */
  private readonly verified = new Map<string, { readonly revision: number; readonly keyId: string; readonly stored: StoredInventory }>();
  /** One host's snapshots are stored one at a time, so an older one never overwrites a newer one. */
  private readonly hostMutex = new KeyedMutex();

  private constructor(
    private readonly kv: KV,
    private readonly opts: InventoryCollectorOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
  }

  /** Open (creating if needed) the KV bucket. */
  static async open(js: JetStreamClient, opts: InventoryCollectorOptions): Promise<InventoryCollector> {
    const kv = await js.views.kv(opts.bucket ?? INVENTORY_BUCKET, { history: 1, replicas: opts.replicas ?? 1 });
    const collector = new InventoryCollector(kv, opts);
    collector.anchors = await AuditAnchorStore.open(js, (env) => collector.verify(env, collector.clock.now()), {
      ...(opts.bucket === undefined ? {} : { bucket: `${opts.bucket}_audit_anchors` }),
      ...(opts.replicas === undefined ? {} : { replicas: opts.replicas }),
    });
    return collector;
  }

  /** Per-host audit anchors: the highest audit-chain head each host reported (see {@link AuditAnchorStore}). */
  anchors!: AuditAnchorStore;

  /** Subscribe to `lk.v1.inventory.*` and ingest every snapshot; refusals are logged. */
  start(nc: NatsConnection): void {
    if (this.sub !== undefined) return;
    this.sub = nc.subscribe(ALL_INVENTORY_SUBJECTS, {
      callback: (err, msg) => {
        if (err !== null) {
          this.opts.log?.error({ err }, "inventory subscription failed");
          return;
        }
        const p = this.ingest(msg.subject, msg.data).catch((e: unknown) => {
          this.opts.log?.warn({ subject: msg.subject, reason: (e as { code?: string }).code }, "inventory refused");
        });
        this.inflight.add(p);
        void p.finally(() => this.inflight.delete(p));
      },
    });
  }

  /** Stop the subscription and wait for snapshots being stored. */
  async stop(): Promise<void> {
    this.sub?.unsubscribe();
    this.sub = undefined;
    await Promise.allSettled([...this.inflight]);
  }

  /**
   * Verify one snapshot that arrived on `subject` and store it when it is newer than the stored one.
   * @throws InventoryRejectedError
   */
  async ingest(subject: string, envelope: Uint8Array): Promise<StoredInventory> {
    const now = this.clock.now();
    const { snapshot, keyId } = this.verifyFull(envelope, now);
    const subjectHost = subjectToken(INVENTORY_SUBJECT_PREFIX, subject);
    if (subjectHost !== snapshot.hostId) {
      throw new InventoryRejectedError(RejectReason.SUBJECT_MISMATCH, `inventory of ${snapshot.hostId} arrived on ${subject}`);
    }
    const maxAge = this.opts.maxAgeMs ?? MAX_INVENTORY_AGE_MS;
    const skew = this.opts.skewMs ?? CLOCK_SKEW_MS;
    if (snapshot.takenAtMs < now - maxAge) {
      throw new InventoryRejectedError(RejectReason.EXPIRED, `inventory of ${snapshot.hostId} is stale (taken ${now - snapshot.takenAtMs} ms ago)`);
    }
    if (snapshot.takenAtMs > now + skew) {
      throw new InventoryRejectedError(RejectReason.NOT_YET_VALID, `inventory of ${snapshot.hostId} is dated in the future`);
    }
    return await this.hostMutex.run(snapshot.hostId, () => this.store(snapshot, envelope, keyId));
  }

  /** The last verified snapshot of `hostId` (re-verified from the KV bucket), or undefined. */
  async latest(hostId: string): Promise<StoredInventory | undefined> {
    const e = await this.kv.get(hostId);
    if (e === null || e.operation !== "PUT") {
      this.verified.delete(hostId);
      return undefined;
    }
    const stored = this.verifiedEntry(hostId, e.revision, e.value);
    if (stored.snapshot.hostId !== hostId) {
      throw new InventoryRejectedError(RejectReason.ISSUER_MISMATCH, `stored inventory under ${hostId} belongs to ${stored.snapshot.hostId}`);
    }
    return stored;
  }

  /** The bucket's value of `hostId` at `revision`, verified (or as verified before at that revision, see `verified`). */
  private verifiedEntry(hostId: string, revision: number, value: Uint8Array): StoredInventory {
    const hit = this.verified.get(hostId);
    // Same value, and the host is still enrolled with the key that signed it.
    if (hit?.revision === revision && this.resolve(hit.keyId)?.hostId === hit.stored.snapshot.hostId) return hit.stored;
    const v = this.verifyFull(value, this.clock.now());
    const stored = { snapshot: v.snapshot, envelope: value };
    this.verified.set(hostId, { revision, keyId: v.keyId, stored });
    return stored;
  }

  /** The intent high-water mark the host last reported (for the dispatcher's sequence fast-forward). */
  async agentHwm(hostId: string): Promise<number | undefined> {
    return (await this.latest(hostId))?.snapshot.intentHwm;
  }

  private verify(envelope: Uint8Array, now: number): InventorySnapshot {
    return this.verifyFull(envelope, now).snapshot;
  }

  private verifyFull(envelope: Uint8Array, now: number): { snapshot: InventorySnapshot; keyId: string } {
    try {
      return verifyInventory(envelope, (keyId) => this.resolve(keyId), { now: () => now });
    } catch (err) {
      if (isRejectError(err)) throw new InventoryRejectedError(err.reason, err.message, { cause: err });
      throw err;
    }
  }

  private async store(snapshot: InventorySnapshot, envelope: Uint8Array, keyId: string): Promise<StoredInventory> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const e = await this.kv.get(snapshot.hostId);
      const exists = e !== null && e.operation === "PUT";
      if (exists) {
        const stored = this.verifiedEntry(snapshot.hostId, e.revision, e.value).snapshot;
        if (snapshot.snapshotSeq === stored.snapshotSeq && Buffer.from(e.value).equals(Buffer.from(envelope))) {
          // Another collector (serve beside a CLI `status`, a second coordinator) stored this very snapshot first.
          const s = { snapshot: stored, envelope: e.value };
          this.opts.onSnapshot?.(s);
          return s;
        }
        if (!(snapshot.snapshotSeq > stored.snapshotSeq)) {
          throw new InventoryRejectedError(
            RejectReason.SEQUENCE_TOO_LOW,
            `inventory of ${snapshot.hostId} has snapshot_seq ${snapshot.snapshotSeq}, not above the stored ${stored.snapshotSeq}`,
          );
        }
      }
      try {
        const revision = exists ? await this.kv.update(snapshot.hostId, envelope, e.revision) : await this.kv.create(snapshot.hostId, envelope);
        const s = { snapshot, envelope };
        // Verified on the way in: the next read of this revision need not verify it again.
        this.verified.set(snapshot.hostId, { revision, keyId, stored: s });
        // The audit anchor never blocks the inventory: a failure here is logged, the next snapshot retries.
        await this.anchors.observe(snapshot, envelope).catch((err: unknown) => {
          this.opts.log?.warn({ hostId: snapshot.hostId, err: err instanceof Error ? err.message : String(err) }, "audit anchor not updated");
        });
        this.opts.onSnapshot?.(s);
        return s;
      } catch (err) {
        if (!isKvConflict(err)) throw err;
      }
    }
    throw new InventoryRejectedError(RejectReason.SEQUENCE_TOO_LOW, `inventory of ${snapshot.hostId} kept losing to concurrent writers`);
  }

  private resolve(keyId: string): EnrolledHostKey | undefined {
    const host = this.opts.hosts.hostForKey(keyId);
    if (host === undefined) return undefined;
    let key = this.keyObjects.get(keyId);
    if (key === undefined) {
      key = publicKeyFromRaw(host.identityKey);
      this.keyObjects.set(keyId, key);
    }
    return { hostId: host.hostId, publicKey: key };
  }
}
