import type { JetStreamClient, KV } from "nats";
import { JobStoreUnavailableError } from "./demand-errors.js";
import { DELIVERIES_BUCKET, DELIVERY_TTL_MS } from "./limits.js";
import { isKvConflict } from "../lane-store-kv/kv-conflict.js";

/**
 * The webhook deliveries already handled, by `X-GitHub-Delivery`: a delivery is acted on only by the receiver that
 * claims its id first. Shared by every coordinator (JetStream KV), so a new leader, or a second receiver behind
 * the same load balancer, refuses a replay too.
 */
export interface DeliveryLedger {
  /** `true`: this call claimed the id (act on the delivery); `false`: it was claimed before (a duplicate). */
  claim(deliveryId: string): Promise<boolean>;
  /** Give a claim back after the delivery could not be handled, so a redelivery is not refused. */
  release(deliveryId: string): Promise<void>;
}

/** {@link DeliveryLedger} in a KV bucket whose entries expire after {@link DELIVERY_TTL_MS} (KV `create` claims). */
export class KvDeliveryLedger implements DeliveryLedger {
  private constructor(private readonly kv: KV) {}

  /** Open (creating if needed) the bucket. */
  static async open(js: JetStreamClient, opts: { readonly bucket?: string; readonly ttlMs?: number; readonly replicas?: number } = {}): Promise<KvDeliveryLedger> {
    const bucket = opts.bucket ?? DELIVERIES_BUCKET;
    try {
      return new KvDeliveryLedger(await js.views.kv(bucket, { history: 1, ttl: opts.ttlMs ?? DELIVERY_TTL_MS, replicas: opts.replicas ?? 1 }));
    } catch (err) {
      throw new JobStoreUnavailableError(`cannot open the webhook delivery ledger (KV bucket ${bucket}): ${(err as Error).message}`, { cause: err });
    }
  }

  async claim(deliveryId: string): Promise<boolean> {
    try {
      await this.kv.create(deliveryId, new Uint8Array([1]));
      return true;
    } catch (err) {
      if (isKvConflict(err)) return false;
      throw new JobStoreUnavailableError(`cannot record webhook delivery ${deliveryId}: ${(err as Error).message}`, { cause: err });
    }
  }

  async release(deliveryId: string): Promise<void> {
    await this.kv.purge(deliveryId).catch(() => undefined);
  }
}

/** {@link DeliveryLedger} in memory (unit tests), with the same expiry. */
export class MemoryDeliveryLedger implements DeliveryLedger {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly ttlMs = DELIVERY_TTL_MS,
  ) {}

  claim(deliveryId: string): Promise<boolean> {
    const t = this.now();
    const at = this.seen.get(deliveryId);
    if (at !== undefined && t - at < this.ttlMs) return Promise.resolve(false);
    this.seen.set(deliveryId, t);
    return Promise.resolve(true);
  }

  release(deliveryId: string): Promise<void> {
    this.seen.delete(deliveryId);
    return Promise.resolve();
  }
}
