import type { ActionKind as IntentActionKind, Policy } from "@lanekeeper/shared";
import type { LaneView } from "../observe/classify.js";
import type { Guard } from "./guard.js";

/** The `host-allows` guard for an intent action on the lane, with its pool's backend (and image). */
export function allowsGuard(policy: Policy, v: LaneView, action: IntentActionKind): Guard {
  const poolPolicy = Object.hasOwn(policy.pools, v.pool) ? policy.pools[v.pool] : undefined;
  const backend = poolPolicy?.backend ?? "systemd";
  const image = backend === "container" ? poolPolicy?.image : undefined;
  return { kind: "host-allows", hostId: v.hostId, action, scope: v.scope, pool: v.pool, backend, ...(image === undefined ? {} : { image }) };
}

/** Guards of an action on a live lane: opt-ins, agent permission, marker, hold, and the registration's identity. */
export function hostGuards(policy: Policy, v: LaneView, action: IntentActionKind): Guard[] {
  const guards: Guard[] = [
    { kind: "scope-opted-in", scope: v.scope },
    { kind: "host-opted-in", hostId: v.hostId },
    allowsGuard(policy, v, action),
    { kind: "lane-marker-valid", hostId: v.hostId, laneId: v.laneId, scope: v.scope, pool: v.pool },
    { kind: "lane-not-held", hostId: v.hostId, laneId: v.laneId },
  ];
  const g = v.registration;
  if (g !== undefined) {
    guards.push({ kind: "runner-id-matches", scope: v.scope, laneId: v.laneId, runnerId: g.id });
    guards.push({ kind: "runner-identity-labels", scope: v.scope, runnerId: g.id, laneId: v.laneId, hostId: v.hostId, pool: v.pool });
  }
  return guards;
}

/** Guards of a removal: those of a live lane, plus no job on the host and not busy on GitHub when it matters. */
export function removalGuards(policy: Policy, v: LaneView): Guard[] {
  const guards = hostGuards(policy, v, "remove");
  guards.push(allowsGuard(policy, v, "drain"));
  guards.push({ kind: "no-job-evidence", hostId: v.hostId, laneId: v.laneId, at: "send-remove" });
  const g = v.registration;
  if (g !== undefined) {
    guards.push({ kind: "runner-not-busy", scope: v.scope, runnerId: g.id, at: "send-remove" });
    guards.push({ kind: "runner-not-busy", scope: v.scope, runnerId: g.id, at: "delete-registration" });
  }
  return guards;
}
