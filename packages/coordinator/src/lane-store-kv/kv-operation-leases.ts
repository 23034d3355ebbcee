import { systemClock, type Clock, type Logger } from "@lanekeeper/shared";
import type { JetStreamClient, KV, KvEntry } from "nats";
import { OperationLeaseLostError, type OperationLeaseInfo, type OperationLeases } from "../apply/operation-leases.js";
import { DEFAULT_OPERATION_LEASE_TTL_MS, OPERATIONS_BUCKET } from "../apply/limits.js";
import { isKvConflict } from "./kv-conflict.js";

/** Options of {@link KvOperationLeases.open}. */
export interface KvOperationLeasesOptions {
  /** @default OPERATIONS_BUCKET */
  readonly bucket?: string;
  /** A lease not renewed for this long is gone (the bucket's max age). @default DEFAULT_OPERATION_LEASE_TTL_MS */
  readonly ttlMs?: number;
  /** KV replicas when the bucket is created. @default 1 */
  readonly replicas?: number;
  /** The coordinator instance (written into each lease). */
  readonly instance?: string;
  readonly clock?: Clock;
  readonly log?: Logger;
}

interface Held {
  revision: number;
  okAtMs: number;
  lost: boolean;
  readonly value: Uint8Array;
}

const enc = new TextEncoder();

/**
 * {@link OperationLeases} in a JetStream KV bucket whose entries expire after the TTL (like the leader lock): one
 * key per running action (its operation id), taken with KV create, renewed every third of the TTL with a
 * revision-checked update. A process killed with -9 stops renewing, so its keys age out within one TTL and any
 * coordinator sees the action as interrupted. A renewal that fails (the key expired while this process was cut
 * off or frozen) marks the lease lost: {@link assertHeld} then stops the action before it sends anything more.
 */
export class KvOperationLeases implements OperationLeases {
  private readonly held = new Map<string, Held>();
  private timer: NodeJS.Timeout | undefined;
  private readonly clock: Clock;
  private readonly ttlMs: number;

  private constructor(
    private readonly kv: KV,
    private readonly opts: KvOperationLeasesOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
    this.ttlMs = opts.ttlMs ?? DEFAULT_OPERATION_LEASE_TTL_MS;
  }

  /** Open (creating if needed) the leases bucket. */
  static async open(js: JetStreamClient, opts: KvOperationLeasesOptions = {}): Promise<KvOperationLeases> {
    const kv = await js.views.kv(opts.bucket ?? OPERATIONS_BUCKET, {
      history: 1,
      ttl: opts.ttlMs ?? DEFAULT_OPERATION_LEASE_TTL_MS,
      ...(opts.replicas === undefined ? {} : { replicas: opts.replicas }),
    });
    return new KvOperationLeases(kv, opts);
  }

  async hold(operationId: string, info: OperationLeaseInfo): Promise<void> {
    const value = enc.encode(JSON.stringify({ ...info, instance: this.opts.instance ?? "", sinceMs: this.clock.now() }));
    const revision = await this.kv.create(operationId, value);
    this.held.set(operationId, { revision, okAtMs: this.clock.now(), lost: false, value });
    this.schedule();
  }

  async release(operationId: string): Promise<void> {
    const h = this.held.get(operationId);
    this.held.delete(operationId);
    if (this.held.size === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (h === undefined || h.lost) return;
    try {
      await this.kv.delete(operationId, { previousSeq: h.revision });
    } catch {
      // Expired already, or renewed concurrently: it ages out by itself.
    }
  }

  assertHeld(operationId: string): void {
    const h = this.held.get(operationId);
    if (h === undefined) throw new OperationLeaseLostError(operationId, "not held by this process");
    if (h.lost) throw new OperationLeaseLostError(operationId, "a renewal found it gone");
    // Renewed every third of the TTL: two missed renewals leave too little of it to act on safely.
    const age = this.clock.now() - h.okAtMs;
    if (age > (this.ttlMs * 5) / 6) throw new OperationLeaseLostError(operationId, `last renewed ${age} ms ago`);
  }

  async live(operationIds: readonly string[]): Promise<ReadonlySet<string>> {
    const out = new Set<string>();
    for (const id of new Set(operationIds)) {
      const e = await this.kv.get(id);
      if (e !== null && e.operation === "PUT") out.add(id);
    }
    return out;
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const id of [...this.held.keys()]) await this.release(id);
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    const every = Math.max(50, Math.floor(this.ttlMs / 3));
    const loop = (): void => {
      void this.renewAll().finally(() => {
        if (this.timer !== undefined) this.timer = setTimeout(loop, every);
      });
    };
    this.timer = setTimeout(loop, every);
  }

  private async renewAll(): Promise<void> {
    for (const [id, h] of this.held) {
      if (!h.lost) await this.renew(id, h);
    }
  }

  private async renew(id: string, h: Held, adopted = false): Promise<void> {
    try {
      h.revision = await this.kv.update(id, h.value, h.revision);
      h.okAtMs = this.clock.now();
      return;
    } catch (err) {
      if (!isKvConflict(err)) {
        // A NATS hiccup: the next renewal tries again and assertHeld() judges by age meanwhile.
        this.opts.log?.warn({ operationId: id, err: errorText(err), lost: false }, "operation lease not renewed");
        return;
      }
    }
    // A conflict: the key expired or was taken over, or an earlier renewal was applied although its reply never
    // came (a timeout on a busy cluster). Only in the last case does the key still hold this hold's own value.
    let entry: KvEntry | null;
    try {
      entry = await this.kv.get(id);
    } catch (err) {
      this.opts.log?.warn({ operationId: id, err: errorText(err), lost: false }, "operation lease not renewed");
      return;
    }
    if (!adopted && entry !== null && entry.operation === "PUT" && Buffer.from(entry.value).equals(Buffer.from(h.value))) {
      h.revision = entry.revision;
      return this.renew(id, h, true);
    }
    h.lost = true;
    this.opts.log?.warn({ operationId: id, lost: true }, "operation lease lost: its key expired or was taken over");
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
