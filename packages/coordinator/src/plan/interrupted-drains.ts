import { LANE_LABEL_PREFIX, parseDrainingLabels, type Policy } from "@lanekeeper/shared";
import { DEFAULT_INVENTORY_MAX_AGE_MS, FAILED_CREATE_SETTLE_MS } from "../limits.js";
import type { StoredLaneRecord } from "../observe/lane-record.js";
import type { WorldObservation } from "../observe/world-observation.js";
import type { DrainAction, PlanStep } from "./action.js";
import type { Evidence } from "./evidence.js";
import { githubEvidence, hostEvidence, recordEvidence } from "./evidence-of.js";
import type { Guard } from "./guard.js";
import type { PlanWarning } from "./plan-types.js";

/** What {@link interruptedDrain} concluded for one `draining` record whose operation lease is gone. */
export type InterruptedDrain =
  | { readonly kind: "complete" }
  | { readonly kind: "resume"; readonly action: DrainAction; readonly warning: PlanWarning }
  | { readonly kind: "unknown"; readonly warning: PlanWarning };

/**
 * A `draining` record whose drain action is no longer running anywhere (its operation lease is gone): did every
 * step of the drain take effect? A drain writes the record first, then swaps the registration's labels for the
 * reduced draining set, then tells the agent (`send-drain`). A coordinator that died in between leaves the lane
 * half-drained: the record says draining (so the group pass waits for it to go idle) while GitHub still offers it
 * to new jobs, or the agent would still re-arm it. Such a lane could take jobs for ever and never be removed.
 *
 * - labels already the draining set and the agent's fresh inventory reports the lane draining (or the lane is no
 *   longer on the host): `complete`, nothing to do (the group pass removes the lane once idle);
 * - otherwise the drain is resumed with only the steps that did not take effect (`DRAIN_INTERRUPTED`): its first
 *   step claims the record for the new operation (compare-and-set on the revision read here, so two coordinators
 *   never both resume it), then `set-draining-labels` if GitHub still shows other labels, `send-drain` if the
 *   host's inventory, received after the record was written, shows the lane not draining;
 * - when neither side can be judged (GitHub unread, no fresh inventory): `unknown`, a warning, nothing done.
 * Nothing here ever stops the lane or waits for its job: a drain only takes new work away.
 */
export function interruptedDrain(policy: Policy, world: WorldObservation, r: StoredLaneRecord): InterruptedDrain {
  const lease: Evidence = { source: "operation", operationId: r.operationId ?? "", lease: "gone" };
  const evidence: Evidence[] = [recordEvidence(r), lease];
  const warning = (message: string): PlanWarning => ({
    code: "DRAIN_INTERRUPTED",
    message: `lane ${r.laneId}: the coordinator running its drain (${r.operationId ?? "?"}) is gone; ${message}`,
    laneId: r.laneId,
    hostId: r.hostId,
    scope: r.scope,
    pool: r.pool,
  });
  const steps: PlanStep[] = ["write-record"];
  const undone: string[] = [];

  const scope = world.observed.scopes.get(r.scope);
  const scopeKnown = scope?.status === "ok" && scope.complete;
  const regs = scope?.status === "ok" ? scope.runners.filter((g) => g.labels.some((l) => l.name === `${LANE_LABEL_PREFIX}${r.laneId}`)) : [];
  const reg = regs.length === 1 ? regs[0] : undefined;
  if (regs.length > 1) return { kind: "unknown", warning: warning(`${regs.length} registrations carry its label; nothing is done automatically: \`lanekeeper lanes show ${r.laneId}\``) };
  if (reg !== undefined) {
    evidence.push(githubEvidence(r.scope, reg));
    const custom = reg.labels.filter((l) => l.type !== "read-only").map((l) => l.name);
    if (parseDrainingLabels(custom) !== r.laneId) {
      steps.push("set-draining-labels");
      undone.push(`its registration ${reg.id} still carries ${custom.filter((l) => !l.startsWith("lk-")).join(",") || "other labels"}`);
    }
  } else if (scopeKnown) {
    evidence.push({ source: "absent", what: "registration", where: r.scope });
  }

  const inv = world.observed.inventory.hosts.get(r.hostId);
  const fresh = inv !== undefined && world.observedAtMs - inv.receivedAtMs <= DEFAULT_INVENTORY_MAX_AGE_MS && inv.receivedAtMs >= r.updatedAtMs + FAILED_CREATE_SETTLE_MS;
  const hostLane = fresh ? inv.lanes.find((l) => l.laneId === r.laneId) : undefined;
  if (hostLane !== undefined) {
    evidence.push(hostEvidence(r.hostId, hostLane));
    if (!hostLane.draining) {
      steps.push("send-drain");
      undone.push(`${r.hostId} was not told (the lane is not draining there)`);
    }
  } else if (fresh) {
    evidence.push({ source: "absent", what: "host-lane", where: r.hostId });
  }

  if (steps.length > 1) {
    const action = resumeDrain(policy, r, steps, reg?.id, hostLane !== undefined, evidence, undone);
    return { kind: "resume", action, warning: warning(`${undone.join("; ")}: the drain is resumed with only the steps that did not take effect`) };
  }
  if ((reg === undefined && !scopeKnown) || !fresh) {
    return { kind: "unknown", warning: warning(`waiting for ${!fresh ? `a fresh inventory from ${r.hostId}` : `a complete runner list of ${r.scope}`} to tell whether it took effect`) };
  }
  return { kind: "complete" };
}

function resumeDrain(
  policy: Policy,
  r: StoredLaneRecord,
  steps: readonly PlanStep[],
  runnerId: number | undefined,
  onHost: boolean,
  evidence: readonly Evidence[],
  undone: readonly string[],
): DrainAction {
  const pool = Object.hasOwn(policy.pools, r.pool) ? policy.pools[r.pool] : undefined;
  const backend = pool?.backend ?? "systemd";
  const image = backend === "container" ? pool?.image : undefined;
  const guards: Guard[] = [
    // The record as read: the first step claims it (compare-and-set), so a second coordinator resuming it loses.
    { kind: "record-revision", laneId: r.laneId, revision: r.revision },
    { kind: "scope-opted-in", scope: r.scope },
    { kind: "host-opted-in", hostId: r.hostId },
    { kind: "host-allows", hostId: r.hostId, action: "drain", scope: r.scope, pool: r.pool, backend, ...(image === undefined ? {} : { image }) },
    { kind: "lane-not-held", hostId: r.hostId, laneId: r.laneId },
  ];
  if (onHost) guards.push({ kind: "lane-marker-valid", hostId: r.hostId, laneId: r.laneId, scope: r.scope, pool: r.pool });
  if (runnerId !== undefined) {
    guards.push({ kind: "runner-id-matches", scope: r.scope, laneId: r.laneId, runnerId });
    guards.push({ kind: "runner-identity-labels", scope: r.scope, runnerId, laneId: r.laneId, hostId: r.hostId, pool: r.pool });
  }
  return {
    id: `drain:${r.laneId}`,
    kind: "drain",
    laneId: r.laneId,
    scope: r.scope,
    pool: r.pool,
    hostId: r.hostId,
    runnerId,
    drainReason: r.drainReason ?? "scale-down",
    reason: { code: "DRAIN_INTERRUPTED", message: `resume the drain started at ${new Date(r.updatedAtMs).toISOString()}: ${undone.join("; ")}` },
    guards,
    evidence: [...evidence],
    steps,
    dependsOn: [],
  };
}
