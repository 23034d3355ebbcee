import { canonicalLabels, LANE_LABEL_PREFIX, LanekeeperError, type Policy } from "@lanekeeper/shared";
import { DEFAULT_INVENTORY_MAX_AGE_MS, DEFAULT_REGISTRATION_GRACE_MS, FAILED_CREATE_SETTLE_MS } from "../limits.js";
import type { StoredLaneRecord } from "../observe/lane-record.js";
import type { WorldObservation } from "../observe/world-observation.js";
import type { CleanupOrphanAction, CreateAction, DrainAction, ForgetRecordAction } from "./action.js";
import type { Evidence } from "./evidence.js";
import { githubEvidence, recordEvidence } from "./evidence-of.js";
import { interruptedDrain } from "./interrupted-drains.js";
import { laneSpecFor } from "./lane-spec.js";
import type { PlanWarning } from "./plan-types.js";
import { STEPS } from "./steps.js";

/**
 * Record states whose `operationId` names an action that may still be running: a create, a removal, and a drain
 * (whose action writes the record first, then swaps the labels and tells the agent).
 */
const IN_FLIGHT_STATES = new Set(["creating", "draining", "removing"]);

/** The steps of a resumed create: claim the record (new operation id), then the create's own steps. */
export const RESUME_CREATE_STEPS = STEPS.create;

/** What {@link interruptedActions} found: actions to run, and what to tell the operator. */
export interface InterruptedActions {
  /**
   * Creates re-sent under the same lane id (the record is kept and counts toward its group), and drains resumed
   * with only the steps that did not take effect.
   */
  readonly resumes: readonly (CreateAction | DrainAction)[];
  /** Records (and a JIT registration nobody will use) to roll back; planned as if already gone. */
  readonly rollBacks: readonly (ForgetRecordAction | CleanupOrphanAction)[];
  /** One per interrupted action: what was seen, what happens. */
  readonly warnings: readonly PlanWarning[];
  /** Planner actions on a record whose action is still running elsewhere must be left out (lane ids). */
  readonly inFlight: ReadonlySet<string>;
}

/** The operation ids whose leases `observeWorld` reads: those of records in an in-flight state. */
export function inFlightOperationIds(records: readonly StoredLaneRecord[]): string[] {
  return records.filter((r) => IN_FLIGHT_STATES.has(r.state) && r.operationId !== undefined && r.attention === undefined).map((r) => r.operationId as string);
}

/**
 * Actions a coordinator crash interrupted (DESIGN.md invariant 7), found from the lane records, the operation
 * leases (`apply/operation-leases.ts`: a running action renews one; a process killed with -9 does not) and the
 * agents' signed inventories. A `creating` record with no failure note whose operation has no live lease:
 * - the host reports the lane: the intent took effect. Nothing is sent again; the planner completes the record
 *   once the registration is online (CREATE_COMPLETED). A warning says so.
 * - the host's fresh inventory (received after the record was written) does not report it and GitHub has no
 *   registration for it: the intent never took effect. The create is resumed under the same lane id with a fresh
 *   registration: a create is idempotent by lane id on the agent, and the new intent's higher sequence makes the
 *   agent refuse any older one still on its way. A record older than the registration grace is rolled back
 *   instead (the planner creates a replacement at once).
 * - GitHub has an offline, idle registration for it (an ephemeral lane's JIT config was minted) but the host has
 *   no lane: that registration is rolled back with the record, and the planner creates a replacement.
 * A `draining` record whose drain left a step undone (labels not swapped, agent not told) is resumed with only those
 * steps (`interrupted-drains.ts`, DRAIN_INTERRUPTED), so no lane stays half-drained.
 * `removing` records are resumed by the planner (RESUME_REMOVE, from the first step that did not take effect); here
 * only the ones whose action is still running elsewhere are named (`inFlight`), so no second coordinator doubles it.
 *
 * Without lease information (`world.liveOperations` undefined) nothing is concluded.
 */
export function interruptedActions(policy: Policy, world: WorldObservation, opts: { readonly registrationGraceMs?: number } = {}): InterruptedActions {
  const resumes: (CreateAction | DrainAction)[] = [];
  const rollBacks: (ForgetRecordAction | CleanupOrphanAction)[] = [];
  const warnings: PlanWarning[] = [];
  const inFlight = new Set<string>();
  const live = world.liveOperations;
  if (live === undefined) return { resumes, rollBacks, warnings, inFlight };
  const now = world.observedAtMs;
  for (const r of world.records) {
    if (!IN_FLIGHT_STATES.has(r.state) || r.operationId === undefined || r.attention !== undefined) continue;
    if (live.has(r.operationId)) {
      inFlight.add(r.laneId);
      if (r.state !== "creating") {
        warnings.push({
          code: "OPERATION_IN_FLIGHT",
          message: `lane ${r.laneId}: its ${r.state === "removing" ? "removal" : "drain"} (${r.operationId}) is running in another coordinator; left to it`,
          laneId: r.laneId,
          hostId: r.hostId,
        });
      }
      continue;
    }
    if (r.state === "draining") {
      const d = interruptedDrain(policy, world, r);
      if (d.kind !== "complete") warnings.push(d.warning);
      if (d.kind === "resume") resumes.push(d.action);
      continue;
    }
    if (r.state !== "creating" || r.smoke !== undefined) continue;
    const lease: Evidence = { source: "operation", operationId: r.operationId, lease: "gone" };
    const warn = (message: string): void => {
      warnings.push({ code: "CREATE_INTERRUPTED", message: `lane ${r.laneId}: the coordinator running its create (${r.operationId}) is gone; ${message}`, laneId: r.laneId, hostId: r.hostId, scope: r.scope, pool: r.pool });
    };
    const inv = world.observed.inventory.hosts.get(r.hostId);
    if (inv?.lanes.some((l) => l.laneId === r.laneId) === true) {
      warn(`the intent took effect on ${r.hostId}: nothing is sent again, the record is completed once its runner is online`);
      continue;
    }
    const scope = world.observed.scopes.get(r.scope);
    const fresh = inv !== undefined && now - inv.receivedAtMs <= DEFAULT_INVENTORY_MAX_AGE_MS && inv.receivedAtMs >= r.updatedAtMs + FAILED_CREATE_SETTLE_MS;
    if (!fresh || scope?.status !== "ok" || !scope.complete) {
      warn(`waiting for a fresh inventory from ${r.hostId} and a complete runner list of ${r.scope} to tell whether it took effect`);
      continue;
    }
    const regs = scope.runners.filter((g) => g.labels.some((l) => l.name === `${LANE_LABEL_PREFIX}${r.laneId}`));
    const base = {
      laneId: r.laneId,
      scope: r.scope,
      pool: r.pool,
      hostId: r.hostId,
      dependsOn: [] as string[],
    };
    const reg = regs[0];
    if (reg !== undefined) {
      if (regs.length > 1 || reg.busy || reg.status === "online") {
        warn(`registration ${reg.id} of it is ${reg.busy ? "busy" : reg.status} although ${r.hostId} has no such lane; nothing is done automatically: \`lanekeeper lanes show ${r.laneId}\``);
        continue;
      }
      warn(`the intent never reached ${r.hostId}; its unused registration ${reg.id} and its record are rolled back and a replacement is created`);
      rollBacks.push({
        ...base,
        id: `cleanup-orphan:${r.laneId}`,
        kind: "cleanup-orphan",
        orphanKind: "registration-without-lane",
        runnerId: reg.id,
        reason: { code: "CREATE_INTERRUPTED", message: `the create's coordinator died before ${r.hostId} got the intent: registration ${reg.id} and the record are rolled back` },
        guards: [
          { kind: "record-revision", laneId: r.laneId, revision: r.revision },
          { kind: "lane-absent-on-host", hostId: r.hostId, laneId: r.laneId },
          { kind: "runner-id-matches", scope: r.scope, laneId: r.laneId, runnerId: reg.id },
          { kind: "runner-identity-labels", scope: r.scope, runnerId: reg.id, laneId: r.laneId, hostId: r.hostId, pool: r.pool },
          { kind: "runner-not-busy", scope: r.scope, runnerId: reg.id, at: "delete-registration" },
        ],
        evidence: [recordEvidence(r), lease, githubEvidence(r.scope, reg), { source: "absent", what: "host-lane", where: r.hostId }],
        steps: ["delete-registration", "verify-gone", "delete-record"],
      });
      continue;
    }
    const evidence: Evidence[] = [recordEvidence(r), lease, { source: "absent", what: "host-lane", where: r.hostId }, { source: "absent", what: "registration", where: r.scope }];
    const resume = now - r.createdAtMs < (opts.registrationGraceMs ?? DEFAULT_REGISTRATION_GRACE_MS) ? resumeCreate(policy, r, evidence) : undefined;
    if (resume === undefined) {
      warn(`the intent never reached ${r.hostId}; the record is rolled back and a replacement is created`);
      rollBacks.push({
        ...base,
        id: `forget-record:${r.laneId}`,
        kind: "forget-record",
        reason: { code: "CREATE_INTERRUPTED", message: `the create's coordinator died before ${r.hostId} got the intent: the record is rolled back` },
        guards: [
          { kind: "record-revision", laneId: r.laneId, revision: r.revision },
          { kind: "lane-absent-on-host", hostId: r.hostId, laneId: r.laneId },
          { kind: "registration-absent", scope: r.scope, laneId: r.laneId },
        ],
        evidence,
        steps: STEPS["forget-record"],
      });
      continue;
    }
    warn(`the intent never reached ${r.hostId}; the create is resumed under the same lane id`);
    resumes.push(resume);
  }
  return { resumes, rollBacks, warnings, inFlight };
}

/** The create of `r` again, under its lane id (undefined when its pool is no longer in the policy). */
function resumeCreate(policy: Policy, r: StoredLaneRecord, evidence: Evidence[]): CreateAction | undefined {
  const pool = Object.hasOwn(policy.pools, r.pool) ? policy.pools[r.pool] : undefined;
  if (pool === undefined || !policy.lanes.some((l) => l.scope === r.scope && l.pool === r.pool && l.hosts.includes(r.hostId))) return undefined;
  let labels: string[];
  try {
    labels = canonicalLabels({ laneId: r.laneId, hostId: r.hostId, pool: r.pool, capabilityLabels: pool.labels });
  } catch (err) {
    if (err instanceof LanekeeperError) return undefined;
    throw err;
  }
  const backend = pool.backend;
  const image = backend === "container" ? pool.image : undefined;
  return {
    id: `create:${r.laneId}`,
    kind: "create",
    laneId: r.laneId,
    scope: r.scope,
    pool: r.pool,
    hostId: r.hostId,
    reason: { code: "CREATE_INTERRUPTED", message: `resume the create its coordinator started at ${new Date(r.updatedAtMs).toISOString()} (the intent never reached ${r.hostId})` },
    guards: [
      // The record as read, so two coordinators never both resume it: the first step claims it (compare-and-set).
      { kind: "record-revision", laneId: r.laneId, revision: r.revision },
      { kind: "scope-opted-in", scope: r.scope },
      { kind: "host-opted-in", hostId: r.hostId },
      { kind: "host-allows", hostId: r.hostId, action: "create", scope: r.scope, pool: r.pool, backend, ...(image === undefined ? {} : { image }) },
    ],
    evidence,
    steps: RESUME_CREATE_STEPS,
    dependsOn: [],
    spec: laneSpecFor(policy, r.scope, r.pool, pool, r.laneId, labels),
  };
}
