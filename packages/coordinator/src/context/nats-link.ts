import { systemClock, type Clock, type Logger, type Policy } from "@lanekeeper/shared";
import { Events, type NatsConnection } from "nats";
import type { InventorySource } from "../observe/inventory-source.js";

/** Trouble noted within this long of the previous one is the same episode (logged once). */
const NATS_TROUBLE_LOG_GAP_MS = 10_000;

/**
 * What a long-running coordinator knows about its NATS link: whether the connection is up, and when NATS last
 * failed it (the connection dropped or came back, or a JetStream request went unanswered, e.g. the leader lock
 * could not be renewed while the cluster had no quorum). nats.js reconnects by itself (to any listed or learnt
 * server, for as long as the process runs); this only keeps the times, so `serve` can tell whether what it knows
 * about the fleet was read before NATS went away.
 */
export class NatsLink {
  private up = true;
  private troubleAtMs = Number.NEGATIVE_INFINITY;
  private readonly clock: Clock;
  private readonly done: Promise<void>;

  constructor(
    nc: Pick<NatsConnection, "status" | "isClosed">,
    private readonly opts: { readonly clock?: Clock; readonly log?: Logger } = {},
  ) {
    this.clock = opts.clock ?? systemClock;
    this.done = (async () => {
      for await (const s of nc.status()) {
        if (s.type === Events.Disconnect) {
          this.up = false;
          this.trouble(`disconnected from ${typeof s.data === "string" ? s.data : "the server"}`);
        } else if (s.type === Events.Reconnect) {
          this.up = true;
          this.trouble(`reconnected to ${typeof s.data === "string" ? s.data : "a server"}`);
        }
      }
    })().catch(() => undefined);
  }

  /** Whether the connection is up (nats.js is not between servers). */
  get connected(): boolean {
    return this.up;
  }

  /** When NATS last failed this process (or came back), in ms; -Infinity when never. */
  get lastTroubleMs(): number {
    return this.troubleAtMs;
  }

  /**
   * Note a failure seen elsewhere (a JetStream request unanswered): what was read before it may be stale. Logged
   * once per episode (the caller usually logged the failure itself).
   */
  trouble(why: string): void {
    const now = this.clock.now();
    if (now - this.troubleAtMs > NATS_TROUBLE_LOG_GAP_MS) this.opts.log?.warn({ why }, "NATS trouble: not acting until the view is fresh again");
    this.troubleAtMs = now;
  }

  /** Resolves once the connection is closed (the status iterator ends). */
  closed(): Promise<void> {
    return this.done;
  }
}

/** Options of {@link freshViewGate}. */
export interface FreshViewGateOptions {
  readonly link: Pick<NatsLink, "connected" | "lastTroubleMs">;
  readonly inventory: InventorySource;
  readonly policy: Pick<Policy, "hosts">;
  /** After NATS trouble, how long to wait for every host's next inventory before acting on what is there. */
  readonly waitMs: number;
  readonly clock?: Clock;
  readonly log?: Logger;
}

/**
 * Whether `serve` may act now: never while the connection is down, and after NATS trouble only once every enrolled,
 * opted-in host has sent an inventory taken since (or `waitMs` passed, as at start, so a host that stays away does
 * not stop the fleet). A leader that lost NATS for a while, or a follower that takes over right after the cluster
 * came back, would otherwise plan from snapshots read before the outage while lanes changed meanwhile.
 */
export function freshViewGate(o: FreshViewGateOptions): () => Promise<boolean> {
  const clock = o.clock ?? systemClock;
  let clearedFor = Number.NEGATIVE_INFINITY;
  let waitingFor = Number.NEGATIVE_INFINITY;
  return async () => {
    if (!o.link.connected) return false;
    const t = o.link.lastTroubleMs;
    if (t <= clearedFor) return true;
    const hosts = Object.entries(o.policy.hosts)
      .filter(([, h]) => h.optIn)
      .map(([id]) => id);
    const stale: string[] = [];
    for (const h of hosts) {
      const s = await o.inventory.latest(h).catch(() => undefined);
      // Taken after the trouble, not merely received after it: an agent's client queues what it publishes while
      // disconnected and delivers it on reconnect.
      if (s === undefined || s.snapshot.takenAtMs <= t) stale.push(h);
    }
    const waited = clock.now() - t;
    if (stale.length === 0 || waited >= o.waitMs) {
      clearedFor = t;
      if (stale.length === 0) o.log?.info({ waitedMs: waited }, "fresh inventories from every host since NATS came back; acting again");
      else o.log?.warn({ waitedMs: waited, hosts: stale }, "no inventory since NATS came back from some hosts; acting on what is known of them");
      return true;
    }
    if (waitingFor !== t) {
      waitingFor = t;
      o.log?.info({ hosts: stale }, "NATS came back: waiting for fresh inventories before acting");
    }
    return false;
  };
}
