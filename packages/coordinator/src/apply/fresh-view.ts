import { LANE_LABEL_PREFIX, type Clock } from "@lanekeeper/shared";
import type { GitHubClient } from "../github/github-client.js";
import type { GitHubRunner, RunnerList } from "../github/github-types.js";
import type { StoredLaneRecord } from "../observe/lane-record.js";
import type { LaneStore } from "../observe/lane-store.js";
import type { HostSnapshot, InventorySource } from "../observe/inventory-source.js";

/** A read that failed: the error's stable code, so a guard can say why it could not be checked. */
export interface ReadFailure {
  readonly failed: true;
  readonly code: string;
  readonly message: string;
}

function failure(err: unknown): ReadFailure {
  const e = err as { code?: unknown; message?: unknown };
  return { failed: true, code: typeof e.code === "string" ? e.code : "READ_FAILED", message: typeof e.message === "string" ? e.message : String(err) };
}

/** Whether a read result is a {@link ReadFailure}. */
export function isReadFailure(x: unknown): x is ReadFailure {
  return typeof x === "object" && x !== null && (x as { failed?: unknown }).failed === true;
}

/**
 * Fresh observations for one round of guard checks: every read goes to GitHub, the lane store or the inventory
 * bucket once per round and is cached for the round only (a later round reads again). Reads never throw: a
 * failure is returned, and a guard that depends on it fails closed.
 */
export class FreshView {
  private readonly listings = new Map<string, Promise<RunnerList | ReadFailure>>();
  private readonly runners = new Map<string, Promise<GitHubRunner | undefined | ReadFailure>>();
  private readonly hosts = new Map<string, Promise<HostSnapshot | undefined>>();
  private readonly records = new Map<string, Promise<StoredLaneRecord | undefined | ReadFailure>>();
  private readonly hostRecords = new Map<string, Promise<readonly StoredLaneRecord[] | ReadFailure>>();
  readonly nowMs: number;

  constructor(
    private readonly deps: {
      readonly github: Pick<GitHubClient, "listRunners" | "getRunner">;
      readonly store: LaneStore;
      readonly inventory: InventorySource;
      readonly clock: Clock;
      readonly inventoryMaxAgeMs: number;
    },
  ) {
    this.nowMs = deps.clock.now();
  }

  listing(scope: string): Promise<RunnerList | ReadFailure> {
    let p = this.listings.get(scope);
    if (p === undefined) {
      p = this.deps.github.listRunners(scope).catch(failure);
      this.listings.set(scope, p);
    }
    return p;
  }

  runner(scope: string, id: number): Promise<GitHubRunner | undefined | ReadFailure> {
    const key = `${scope}\u0000${id}`;
    let p = this.runners.get(key);
    if (p === undefined) {
      p = this.deps.github.getRunner(scope, id).catch(failure);
      this.runners.set(key, p);
    }
    return p;
  }

  /** The registration carrying `lk-lane-<laneId>` in the scope's listing (the first one), if any. */
  async registrationOf(scope: string, laneId: string): Promise<GitHubRunner | undefined | ReadFailure> {
    const list = await this.listing(scope);
    if (isReadFailure(list)) return list;
    return list.runners.find((r) => r.labels.some((l) => l.name === `${LANE_LABEL_PREFIX}${laneId}`));
  }

  /**
   * Of `hostIds`, the hosts that may report `laneId` (the inventory source's index; every host without one): a
   * guard confirms each with {@link host}.
   */
  async hostsMaybeReporting(laneId: string, hostIds: readonly string[]): Promise<readonly string[]> {
    if (this.deps.inventory.hostsReporting === undefined) return hostIds;
    try {
      return await this.deps.inventory.hostsReporting(laneId, hostIds);
    } catch {
      return hostIds;
    }
  }

  /** The host's snapshot when it is fresh (received within the age limit), else undefined. */
  host(hostId: string): Promise<HostSnapshot | undefined> {
    let p = this.hosts.get(hostId);
    if (p === undefined) {
      p = this.deps.inventory
        .latest(hostId)
        .then((s) => (s !== undefined && this.nowMs - s.receivedAtMs <= this.deps.inventoryMaxAgeMs ? s : undefined))
        .catch(() => undefined);
      this.hosts.set(hostId, p);
    }
    return p;
  }

  record(laneId: string): Promise<StoredLaneRecord | undefined | ReadFailure> {
    let p = this.records.get(laneId);
    if (p === undefined) {
      p = this.deps.store.get(laneId).catch(failure);
      this.records.set(laneId, p);
    }
    return p;
  }

  /** The records of one host (one read per host and round). */
  recordsOfHost(hostId: string): Promise<readonly StoredLaneRecord[] | ReadFailure> {
    let p = this.hostRecords.get(hostId);
    if (p === undefined) {
      p = this.deps.store.listHost(hostId).catch(failure);
      this.hostRecords.set(hostId, p);
    }
    return p;
  }
}
