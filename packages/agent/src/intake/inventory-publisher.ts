import { createHash } from "node:crypto";
import type { NatsConnection } from "nats";
import type { Logger } from "pino";
import {
  InventorySnapshot,
  inventorySubject,
  type AgentConfig,
  type Allowlist,
  type AuditHead,
  signInventory,
  systemClock,
  type Capabilities,
  type Clock,
  type LaneObservation,
  type SigningKey,
  type UnmanagedRunner,
} from "@lanekeeper/shared";
import { DEFAULT_INVENTORY_INTERVAL_MS, INVENTORY_CHANGE_DEBOUNCE_MS } from "./limits.js";

/** What the agent's `InventoryBuilder` (inventory.ts) supplies for each snapshot: the one shape of an inventory. */
export interface InventoryContent {
  readonly lanes: readonly LaneObservation[];
  readonly unmanaged: readonly UnmanagedRunner[];
  readonly capabilities?: Capabilities;
  readonly agentVersion: string;
  /** The local allowlist the intake enforces (`allowlistOf(control)`); absent means unknown to the coordinator. */
  readonly allowlist?: Allowlist;
  /**
   * When the facts in it were read (ms since the epoch): the moment the build began; the snapshot's
   * `taken_at_ms`. The coordinator trusts a snapshot for "after the drain" only by this, so it must never be
   * later than the oldest fact in the content.
   */
  readonly takenAtMs: number;
}

/** Options of {@link InventoryPublisher}. */
export interface InventoryPublisherOptions {
  hostId: string;
  /** The agent's identity key: signs every snapshot. */
  identityKey: SigningKey;
  /** Builds the lanes, unmanaged runners and capabilities part, read after it is called (never a cached build). */
  provider: () => Promise<InventoryContent>;
  /** Whether control is enabled (reported so the coordinator plans nothing for an observe-only host). */
  controlEnabled: () => boolean;
  /** The intent high-water mark (from the replay store). */
  intentHwm: () => number;
  /** The trusted key-set version (lets the coordinator see a rotation land). */
  keysetVersion: () => number;
  /** The audit chain's head (the coordinator keeps the highest it has seen as this host's anchor). */
  auditHead?: () => AuditHead;
  /** @default systemClock */
  clock?: Clock;
  /** @default the agent config's `inventoryIntervalMs`, else DEFAULT_INVENTORY_INTERVAL_MS */
  intervalMs?: number;
  /** @default INVENTORY_CHANGE_DEBOUNCE_MS */
  debounceMs?: number;
  log?: Logger;
}

/** {@link InventoryPublisherOptions} with every default filled in: what an {@link InventoryPublisher} runs with. */
export interface ResolvedInventoryPublisherOptions extends InventoryPublisherOptions {
  clock: Clock;
  intervalMs: number;
  debounceMs: number;
}

/**
 * Fills in the publisher's defaults: an explicit option wins, then the agent config, then the built-in default.
 * Pure; resolving resolved options changes nothing.
 */
export function resolveInventoryPublisherOptions(
  override: InventoryPublisherOptions,
  config?: Pick<AgentConfig, "inventoryIntervalMs">,
): ResolvedInventoryPublisherOptions {
  return {
    ...override,
    clock: override.clock ?? systemClock,
    intervalMs: override.intervalMs ?? config?.inventoryIntervalMs ?? DEFAULT_INVENTORY_INTERVAL_MS,
    debounceMs: override.debounceMs ?? INVENTORY_CHANGE_DEBOUNCE_MS,
  };
}

/**
 * Publishes a signed `InventorySnapshot` on `lk.v1.inventory.<hostId>` every `intervalMs` and soon after
 * {@link notifyChange} (debounced). `snapshot_seq` is `max(previous + 1, now in ms)`: strictly increasing within
 * the process and, as long as the clock does not jump back across a restart, across restarts too, so the
 * coordinator can refuse old or reordered snapshots without the agent persisting a counter.
 */
export class InventoryPublisher {
  private readonly opts: ResolvedInventoryPublisherOptions;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  private lastDigest = "";

  /** Options are resolved by {@link resolveInventoryPublisherOptions}. */
  constructor(
    private readonly nc: NatsConnection,
    opts: InventoryPublisherOptions,
  ) {
    this.opts = resolveInventoryPublisherOptions(opts);
  }

  /** Publish now and then periodically. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.trigger();
    this.timer = setInterval(() => this.trigger(), this.opts.intervalMs);
    this.timer.unref();
  }

  /** Something changed (an intent ran, a lane's state moved): publish soon. */
  notifyChange(): void {
    if (this.stopped || this.debounce !== undefined) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.trigger();
    }, this.opts.debounceMs);
    this.debounce.unref();
  }

  /** Stop publishing and wait for a snapshot in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.debounce !== undefined) clearTimeout(this.debounce);
    this.timer = undefined;
    this.debounce = undefined;
    await this.running;
  }

  /** Build, sign and publish one snapshot now; returns the envelope (for tests and `status`). */
  async publishNow(): Promise<Uint8Array> {
    const content = await this.opts.provider();
    const now = this.opts.clock.now();
    this.seq = Math.max(this.seq + 1, now);
    const snapshot = InventorySnapshot.fromPartial({
      hostId: this.opts.hostId,
      snapshotSeq: this.seq,
      takenAtMs: content.takenAtMs,
      agentVersion: content.agentVersion,
      controlEnabled: this.opts.controlEnabled(),
      lanes: [...content.lanes],
      unmanaged: [...content.unmanaged],
      capabilities: content.capabilities,
      allowlist: content.allowlist,
      intentHwm: this.opts.intentHwm(),
      keysetVersion: this.opts.keysetVersion(),
      auditHead: this.opts.auditHead?.(),
    });
    const env = signInventory(snapshot, this.opts.identityKey);
    this.nc.publish(inventorySubject(this.opts.hostId), env);
    const digest = createHash("sha256").update(InventorySnapshot.encode({ ...snapshot, snapshotSeq: 0, takenAtMs: 0 }).finish()).digest("hex");
    if (digest !== this.lastDigest) this.opts.log?.debug({ snapshotSeq: this.seq, lanes: snapshot.lanes.length }, "inventory changed");
    this.lastDigest = digest;
    return env;
  }

  private trigger(): void {
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.publishNow();
        } catch (err) {
          this.opts.log?.error({ err }, "cannot publish inventory");
        }
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = undefined;
    });
  }
}
