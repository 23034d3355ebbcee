import type { ActionKind } from "@lanekeeper/shared";
import type { HostInventory } from "../observe/inventory-view.js";
import type { Evidence } from "./evidence.js";

/** What the planner knows about one host. */
export interface HostStatus {
  readonly hostId: string;
  /** Listed under `hosts` in the policy. */
  readonly enrolled: boolean;
  readonly optIn: boolean;
  /** The policy's capacity (0 when not enrolled). */
  readonly capacity: number;
  /** The host's fresh inventory, if any. */
  readonly inventory: HostInventory | undefined;
}

/** What a lane needs from a host. */
export interface PlacementRequest {
  readonly scope: string;
  readonly pool: string;
  readonly backend: string;
  readonly image: string | undefined;
}

/** Why a host cannot take a lane. */
export type Ineligibility = "not-enrolled" | "not-opted-in" | "control-disabled" | "not-allowed" | "full";

/** A host's answer to a placement request. */
export type Eligibility =
  | { readonly ok: true; readonly capacity: number }
  | { readonly ok: false; readonly why: Ineligibility; readonly detail: string };

/**
 * Whether the host's agent permits `action` for the request. Unknown inventory or an unreported allowlist
 * permits (the apply-time guard and the agent decide); a known `control.enabled: false` or allowlist refuses.
 * Empty allowlist lists allow nothing, as in the agent.
 */
export function agentPermits(inv: HostInventory | undefined, action: ActionKind, req: PlacementRequest): Eligibility {
  if (inv === undefined) return { ok: true, capacity: Number.MAX_SAFE_INTEGER };
  if (!inv.controlEnabled) {
    return { ok: false, why: "control-disabled", detail: "the agent has control.enabled: false" };
  }
  const a = inv.allowlist;
  if (a === undefined) return { ok: true, capacity: Number.MAX_SAFE_INTEGER };
  const missing: string[] = [];
  if (!a.actions.includes(action)) missing.push(`action ${action} (control.actions)`);
  if (!a.scopes.includes(req.scope)) missing.push(`scope ${req.scope} (control.scopes)`);
  if (!a.pools.includes(req.pool)) missing.push(`pool ${req.pool} (control.pools)`);
  if (!a.backends.includes(req.backend)) missing.push(`backend ${req.backend} (control.backends)`);
  if (req.image !== undefined && !a.images.includes(req.image)) missing.push(`image ${req.image} (control.images)`);
  if (missing.length > 0) {
    return { ok: false, why: "not-allowed", detail: `the agent's allowlist does not include ${missing.join(", ")}` };
  }
  return { ok: true, capacity: a.maxLanes };
}

/**
 * Spreads new lanes over hosts. Choice, in order: fewest lanes of the same scope and pool on the host, a
 * host with a fresh inventory over one without, lowest fill ratio, host id. Existing lanes never move here:
 * the planner only asks for new ones.
 */
export class Placement {
  private readonly load = new Map<string, number>();
  private readonly groupLoad = new Map<string, number>();

  /**
   * @param hosts - status of every host the policy or the observations mention
   * @param laneHosts - the host of every existing lane (one entry per lane)
   * @param laneGroups - `scope\0pool\0host` of every existing lane
   */
  constructor(
    private readonly hosts: ReadonlyMap<string, HostStatus>,
    laneHosts: Iterable<string>,
    laneGroups: Iterable<string>,
  ) {
    for (const h of laneHosts) this.load.set(h, (this.load.get(h) ?? 0) + 1);
    for (const g of laneGroups) this.groupLoad.set(g, (this.groupLoad.get(g) ?? 0) + 1);
  }

  /** Lanes on a host, planned creates included. */
  lanesOn(hostId: string): number {
    return this.load.get(hostId) ?? 0;
  }

  /** Whether a host could take one more lane for the request. */
  eligibility(hostId: string, req: PlacementRequest): Eligibility {
    const h = this.hosts.get(hostId);
    if (h?.enrolled !== true) return { ok: false, why: "not-enrolled", detail: "not listed under hosts in the policy" };
    if (!h.optIn) return { ok: false, why: "not-opted-in", detail: "optIn is false in the policy" };
    const agent = agentPermits(h.inventory, "create", req);
    if (!agent.ok) return agent;
    const capacity = Math.min(h.capacity, agent.capacity);
    if (this.lanesOn(hostId) >= capacity) {
      return { ok: false, why: "full", detail: `${this.lanesOn(hostId)} of ${capacity} lanes used` };
    }
    return { ok: true, capacity };
  }

  /** Pick a host among `allowed` for one new lane and count it, or report why none fits. */
  choose(
    allowed: readonly string[],
    req: PlacementRequest,
  ):
    | { readonly hostId: string; readonly capacity: number; readonly evidence: Evidence; readonly refused: ReadonlyMap<string, Eligibility> }
    | { readonly hostId?: undefined; readonly refused: ReadonlyMap<string, Eligibility> } {
    const refused = new Map<string, Eligibility>();
    let best: { hostId: string; capacity: number; key: [number, number, number, string] } | undefined;
    for (const hostId of allowed) {
      const e = this.eligibility(hostId, req);
      if (!e.ok) {
        refused.set(hostId, e);
        continue;
      }
      const known = this.hosts.get(hostId)?.inventory !== undefined;
      const key: [number, number, number, string] = [
        this.groupLoad.get(groupKey(req.scope, req.pool, hostId)) ?? 0,
        known ? 0 : 1,
        e.capacity === 0 ? 1 : this.lanesOn(hostId) / e.capacity,
        hostId,
      ];
      if (best === undefined || lessThan(key, best.key)) best = { hostId, capacity: e.capacity, key };
    }
    if (best === undefined) return { refused };
    const evidence: Evidence = {
      source: "placement",
      hostId: best.hostId,
      hostLanes: this.lanesOn(best.hostId),
      capacity: best.capacity,
      groupLanesOnHost: best.key[0],
      inventoryKnown: best.key[1] === 0,
    };
    this.load.set(best.hostId, this.lanesOn(best.hostId) + 1);
    const gk = groupKey(req.scope, req.pool, best.hostId);
    this.groupLoad.set(gk, (this.groupLoad.get(gk) ?? 0) + 1);
    return { hostId: best.hostId, capacity: best.capacity, evidence, refused };
  }
}

/** Key of the (scope, pool, host) lane count. */
export function groupKey(scope: string, pool: string, hostId: string): string {
  return `${scope}\u0000${pool}\u0000${hostId}`;
}

function lessThan(a: [number, number, number, string], b: [number, number, number, string]): boolean {
  if (a[0] !== b[0]) return a[0] < b[0];
  if (a[1] !== b[1]) return a[1] < b[1];
  if (a[2] !== b[2]) return a[2] < b[2];
  return a[3] < b[3];
}
