import {
  isReservedLabel,
  LaneState,
  LANE_LABEL_PREFIX,
  parseDrainingLabels,
  parseIdentityLabels,
  type LaneIdentity,
  type LaneObservation,
  type UnmanagedRunner,
} from "@lanekeeper/shared";
import type { GitHubRunner } from "../github/github-types.js";
import { DEFAULT_INVENTORY_MAX_AGE_MS, DEFAULT_REGISTRATION_GRACE_MS } from "../limits.js";
import type { HostInventory } from "./inventory-view.js";
import type { AttentionNote, OrphanKind, StoredLaneRecord } from "./lane-record.js";
import type { ObservedState } from "./observed-state.js";
import { isCompleteListing } from "./scope-observation.js";

/**
 * Ownership class of a lane (a lane id seen in any of the three markers):
 * - `managed`: every marker that could be observed agrees (see `certainty` for what could not be observed);
 * - `orphaned`: one side exists without the other (see {@link OrphanKind});
 * - `needs-attention`: the markers disagree; nothing is done automatically.
 */
export type LaneClass = "managed" | "orphaned" | "needs-attention";

/**
 * How much of the evidence was observable. Absence is evidence only where the observation was complete:
 * `host-unknown` means no fresh inventory from the lane's host, `scope-unknown` no complete runner list.
 */
export type Certainty = "verified" | "host-unknown" | "scope-unknown" | "unknown";

/** Everything known about one lane id, and its class. */
export interface LaneView {
  readonly laneId: string;
  readonly scope: string;
  readonly pool: string;
  readonly hostId: string;
  readonly record: StoredLaneRecord | undefined;
  /** The registration carrying this lane's identity labels (the current one, when there are several). */
  readonly registration: GitHubRunner | undefined;
  /** The lane on its host, with a verified host marker. */
  readonly hostLane: LaneObservation | undefined;
  readonly hostKnown: boolean;
  readonly scopeKnown: boolean;
  readonly certainty: Certainty;
  readonly class: LaneClass;
  /** Set when `class` is `orphaned`. */
  readonly orphanKind: OrphanKind | undefined;
  /** Set when `class` is `needs-attention`. */
  readonly attention: AttentionNote | undefined;
  /** A lane being created whose registration or host lane has not shown up yet, within the grace period. */
  readonly pending: boolean;
  /** Further registrations with this lane's identity (e.g. a lingering ephemeral one). Never acted on. */
  readonly extraRegistrations: readonly GitHubRunner[];
}

/** A GitHub runner that is not part of any lane. */
export interface RunnerView {
  readonly scope: string;
  readonly runner: GitHubRunner;
  /** Why it has this class, in words. */
  readonly reason: string;
}

/** A runner an agent found on its host that lanekeeper does not own. */
export interface HostUnmanagedView {
  readonly hostId: string;
  readonly runner: UnmanagedRunner;
}

/** The classification of everything observed. Lists are sorted, so output is deterministic. */
export interface Classification {
  /** One view per lane id, sorted by lane id. */
  readonly lanes: readonly LaneView[];
  /** GitHub runners without any `lk-` label: never touched. */
  readonly unmanaged: readonly RunnerView[];
  /**
   * GitHub runners with `lk-` labels that are not ours: the lane id is not in our records and the host label
   * names no host of our policy, or the identity labels are incomplete and no record claims the runner.
   * Never touched.
   */
  readonly foreign: readonly RunnerView[];
  /** Runners the agents found on their hosts that are not managed lanes. Never touched. */
  readonly hostUnmanaged: readonly HostUnmanagedView[];
  /** Hosts whose inventory was present but older than the freshness limit (treated as unknown). */
  readonly staleHosts: readonly string[];
}

/** Options of {@link classify}. */
export interface ClassifyOptions {
  /** The planner's notion of now (ms since the epoch); classification reads no clock. */
  readonly nowMs: number;
  /** Inventories received longer ago than this are unknown. @default 60000 */
  readonly inventoryMaxAgeMs?: number;
  /**
   * A new lane's registration or host lane may lag its record by this long before the lane counts as
   * orphaned. @default 300000
   */
  readonly registrationGraceMs?: number;
}

/** The part of the policy classification reads: which hosts are ours. */
export interface ClassifyPolicy {
  readonly hosts: Readonly<Record<string, unknown>>;
}

interface LabelledRunner {
  readonly scope: string;
  readonly runner: GitHubRunner;
  /** Undefined when the identity labels are incomplete (attached to a record by runner id). */
  readonly identity: LaneIdentity | undefined;
}

interface HostLaneEntry {
  readonly hostId: string;
  readonly lane: LaneObservation;
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list === undefined) m.set(k, [v]);
  else list.push(v);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Classify every GitHub runner, host lane and lane record (DESIGN.md sections 6 and 7). Pure: reads only its
 * arguments. The rules, precisely:
 *
 * 1. A GitHub runner with no `lk-` label is unmanaged.
 * 2. A runner with a complete identity (`lk-managed` and exactly one `lk-lane-`, `lk-host-`, `lk-pool-`)
 *    belongs to lane `<id>` if that lane id is in our records or its host label names a host of our policy;
 *    otherwise it is foreign.
 * 3. A runner with `lk-` labels but an incomplete identity belongs to a lane only if a record in that scope
 *    names its runner id (then the lane needs attention); otherwise it is foreign.
 * 4. For each lane id (from records, registrations and fresh host inventories), the markers are compared:
 *    any disagreement of scope, host, pool or runner id, duplicate registrations with no current one, a lane
 *    reported by another host, or a recorded runner id present without identity labels → `needs-attention`.
 * 5. Otherwise registration and host lane both present → `managed`; one missing where the observation that
 *    would show it is complete → `orphaned` (unless the lane is being created, within the grace period →
 *    `managed`, pending); missing where that observation is incomplete or unknown → `managed` with lower
 *    certainty if we hold a record, `orphaned` (unverified) if not.
 */
export function classify(
  policy: ClassifyPolicy,
  observed: ObservedState,
  records: readonly StoredLaneRecord[],
  options: ClassifyOptions,
): Classification {
  const now = options.nowMs;
  const maxAge = options.inventoryMaxAgeMs ?? DEFAULT_INVENTORY_MAX_AGE_MS;
  const grace = options.registrationGraceMs ?? DEFAULT_REGISTRATION_GRACE_MS;
  const ourHosts = new Set(Object.keys(policy.hosts));
  const recordsById = new Map(records.map((r) => [r.laneId, r]));

  // Fresh inventories only: stale data is not evidence of presence or absence.
  const fresh = new Map<string, HostInventory>();
  const staleHosts: string[] = [];
  for (const [hostId, inv] of observed.inventory.hosts) {
    if (now - inv.receivedAtMs <= maxAge) fresh.set(hostId, inv);
    else staleHosts.push(hostId);
  }

  const unmanaged: RunnerView[] = [];
  const foreign: RunnerView[] = [];
  const byLane = new Map<string, LabelledRunner[]>();
  // Runners without identity labels by (scope, id): a recorded runner id found here had its labels stripped.
  const unlabelledIds = new Map<string, Set<number>>();

  for (const [scope, obs] of observed.scopes) {
    if (obs.status !== "ok") continue;
    const ids = new Set<number>();
    unlabelledIds.set(scope, ids);
    for (const runner of obs.runners) {
      const names = runner.labels.map((l) => l.name);
      if (!names.some(isReservedLabel)) {
        unmanaged.push({ scope, runner, reason: "no lanekeeper labels" });
        ids.add(runner.id);
        continue;
      }
      const identity = parseIdentityLabels(names);
      if (identity !== undefined) {
        if (recordsById.has(identity.laneId) || ourHosts.has(identity.hostId)) {
          push(byLane, identity.laneId, { scope, runner, identity });
        } else {
          foreign.push({
            scope,
            runner,
            reason: `lane ${identity.laneId} is not in our records and host ${identity.hostId} is not in our policy`,
          });
        }
        continue;
      }
      // A drained lane carries only lk-lane-<id> and lk-draining (nothing a workflow can target). That set names no
      // host, so it is the lane only when the record of that lane names this very runner.
      const drainingId = parseDrainingLabels(names);
      const drainingRecord = drainingId === undefined ? undefined : recordsById.get(drainingId);
      if (drainingRecord !== undefined && drainingRecord.scope === scope && drainingRecord.runnerId === runner.id) {
        push(byLane, drainingRecord.laneId, {
          scope,
          runner,
          identity: { laneId: drainingRecord.laneId, hostId: drainingRecord.hostId, pool: drainingRecord.pool },
        });
        continue;
      }
      ids.add(runner.id);
      const claimed = names
        .filter((n) => n.startsWith(LANE_LABEL_PREFIX))
        .map((n) => recordsById.get(n.slice(LANE_LABEL_PREFIX.length)))
        .find((r) => r !== undefined && r.scope === scope && r.runnerId === runner.id);
      if (claimed !== undefined) push(byLane, claimed.laneId, { scope, runner, identity: undefined });
      else foreign.push({ scope, runner, reason: "incomplete lanekeeper identity labels, and no record claims it" });
    }
  }

  const hostLanes = new Map<string, HostLaneEntry[]>();
  const hostUnmanaged: HostUnmanagedView[] = [];
  for (const [hostId, inv] of fresh) {
    for (const lane of inv.lanes) push(hostLanes, lane.laneId, { hostId, lane });
    for (const runner of inv.unmanaged) hostUnmanaged.push({ hostId, runner });
  }

  const laneIds = new Set<string>([...recordsById.keys(), ...byLane.keys(), ...hostLanes.keys()]);
  const lanes: LaneView[] = [];
  for (const laneId of [...laneIds].sort(cmp)) {
    lanes.push(
      classifyLane(laneId, recordsById.get(laneId), byLane.get(laneId) ?? [], hostLanes.get(laneId) ?? [], {
        observed,
        fresh,
        unlabelledIds,
        now,
        grace,
      }),
    );
  }

  const byRunner = (a: RunnerView, b: RunnerView): number => cmp(a.scope, b.scope) || a.runner.id - b.runner.id;
  return {
    lanes,
    unmanaged: unmanaged.sort(byRunner),
    foreign: foreign.sort(byRunner),
    hostUnmanaged: hostUnmanaged.sort((a, b) => cmp(a.hostId, b.hostId) || cmp(a.runner.name, b.runner.name)),
    staleHosts: staleHosts.sort(cmp),
  };
}

interface LaneContext {
  readonly observed: ObservedState;
  readonly fresh: ReadonlyMap<string, HostInventory>;
  readonly unlabelledIds: ReadonlyMap<string, ReadonlySet<number>>;
  readonly now: number;
  readonly grace: number;
}

function classifyLane(
  laneId: string,
  record: StoredLaneRecord | undefined,
  regs: readonly LabelledRunner[],
  hostEntries: readonly HostLaneEntry[],
  ctx: LaneContext,
): LaneView {
  const firstReg = regs[0];
  const firstHost = hostEntries[0];
  const scope = record?.scope ?? firstReg?.scope ?? firstHost?.lane.scope ?? "";
  const hostId = record?.hostId ?? firstReg?.identity?.hostId ?? firstHost?.hostId ?? "";
  const pool = record?.pool ?? firstReg?.identity?.pool ?? firstHost?.lane.pool ?? "";

  const problems: AttentionNote[] = [];
  const note = (code: string, message: string): void => {
    problems.push({ code, message });
  };

  // The host lane: reported by the lane's host. A report from any other host is a disagreement.
  const hostLane = hostEntries.find((e) => e.hostId === hostId)?.lane;
  for (const e of hostEntries) {
    if (e.hostId !== hostId) note("LANE_ON_OTHER_HOST", `host ${e.hostId} reports lane ${laneId}, which belongs to ${hostId}`);
  }

  // Registrations in the lane's scope are candidates; one in another scope is a disagreement.
  const candidates = regs.filter((r) => r.scope === scope);
  for (const r of regs) {
    if (r.scope !== scope) {
      note("REGISTRATION_IN_OTHER_SCOPE", `runner ${r.runner.id} in ${r.scope} carries lane ${laneId}, recorded in ${scope}`);
    }
  }
  const pick = (id: number | undefined): LabelledRunner | undefined =>
    id === undefined || id === 0 ? undefined : candidates.find((c) => c.runner.id === id);
  let current = pick(hostLane?.runnerId) ?? pick(record?.runnerId);
  if (current === undefined && candidates.length === 1) current = candidates[0];
  if (current === undefined && candidates.length > 1) {
    note(
      "DUPLICATE_REGISTRATIONS",
      `${candidates.length} registrations carry lane ${laneId} (runner ids ${candidates.map((c) => c.runner.id).join(", ")}) and none is the lane's current one`,
    );
  }
  const registration = current?.runner;
  const extraRegistrations = candidates.filter((c) => c !== current).map((c) => c.runner);

  if (current !== undefined && current.identity === undefined) {
    note("LABELS_INCOMPLETE", `runner ${current.runner.id} lost part of its lanekeeper identity labels`);
  }
  if (current?.identity !== undefined) {
    if (current.identity.hostId !== hostId) {
      note("IDENTITY_MISMATCH", `runner ${current.runner.id} is labelled for host ${current.identity.hostId}, the lane is on ${hostId}`);
    }
    if (current.identity.pool !== pool) {
      note("IDENTITY_MISMATCH", `runner ${current.runner.id} is labelled for pool ${current.identity.pool}, the lane is in ${pool}`);
    }
  }
  if (hostLane !== undefined) {
    if (hostLane.scope !== scope || hostLane.pool !== pool) {
      note(
        "HOST_MARKER_MISMATCH",
        `host ${hostId} reports lane ${laneId} for ${hostLane.scope}/${hostLane.pool}, expected ${scope}/${pool}`,
      );
    }
    if (registration !== undefined && hostLane.runnerId !== 0 && hostLane.runnerId !== registration.id) {
      note("RUNNER_ID_MISMATCH", `host ${hostId} says lane ${laneId} is runner ${hostLane.runnerId}, GitHub's is ${registration.id}`);
    }
  }
  if (
    record?.runnerId !== undefined &&
    registration !== undefined &&
    registration.id !== record.runnerId &&
    hostLane?.runnerId !== registration.id
  ) {
    note("RUNNER_ID_MISMATCH", `record says lane ${laneId} is runner ${record.runnerId}, GitHub's is ${registration.id}`);
  }
  if (registration === undefined) {
    const stripped = ctx.unlabelledIds.get(scope);
    const known = [record?.runnerId, hostLane?.runnerId].filter((x): x is number => x !== undefined && x !== 0);
    const hit = known.find((id) => stripped?.has(id) === true);
    if (hit !== undefined) {
      note("LABELS_STRIPPED", `runner ${hit} of lane ${laneId} no longer carries the lanekeeper identity labels`);
    }
  }

  const hostKnown = hostId !== "" && ctx.fresh.has(hostId);
  const scopeKnown = isCompleteListing(ctx.observed.scopes.get(scope));
  const certainty: Certainty =
    hostKnown && scopeKnown ? "verified" : hostKnown ? "scope-unknown" : scopeKnown ? "host-unknown" : "unknown";

  let verdict: Verdict;
  const firstProblem = problems[0];
  if (firstProblem !== undefined) {
    const attention: AttentionNote =
      problems.length === 1 ? firstProblem : { code: firstProblem.code, message: problems.map((p) => p.message).join("; ") };
    verdict = { cls: "needs-attention", orphanKind: undefined, attention, pending: false };
  } else {
    verdict = markerVerdict(laneId, hostId, record, registration, hostLane, hostKnown, scopeKnown, ctx);
  }
  // One object literal per lane: this runs for every lane of the fleet on every reconcile.
  return {
    laneId,
    scope,
    pool,
    hostId,
    record,
    registration,
    hostLane,
    hostKnown,
    scopeKnown,
    certainty,
    class: verdict.cls,
    orphanKind: verdict.orphanKind,
    attention: verdict.attention,
    pending: verdict.pending,
    extraRegistrations,
  };
}

interface Verdict {
  readonly cls: LaneClass;
  readonly orphanKind: OrphanKind | undefined;
  readonly attention: AttentionNote | undefined;
  readonly pending: boolean;
}

const MANAGED: Verdict = { cls: "managed", orphanKind: undefined, attention: undefined, pending: false };
const PENDING: Verdict = { cls: "managed", orphanKind: undefined, attention: undefined, pending: true };
const ORPHANED: Readonly<Record<OrphanKind, Verdict>> = {
  "registration-without-lane": { cls: "orphaned", orphanKind: "registration-without-lane", attention: undefined, pending: false },
  "lane-without-registration": { cls: "orphaned", orphanKind: "lane-without-registration", attention: undefined, pending: false },
  "record-without-lane": { cls: "orphaned", orphanKind: "record-without-lane", attention: undefined, pending: false },
};

/** Rule 5 of {@link classify}: which halves exist, given markers that do not disagree. */
function markerVerdict(
  laneId: string,
  hostId: string,
  record: StoredLaneRecord | undefined,
  registration: GitHubRunner | undefined,
  hostLane: LaneObservation | undefined,
  hostKnown: boolean,
  scopeKnown: boolean,
  ctx: LaneContext,
): Verdict {
  // Young lanes get a grace period before a missing half counts as orphaned.
  const bornAtMs = record?.createdAtMs ?? (hostLane !== undefined && hostLane.stateSinceMs > 0 ? hostLane.stateSinceMs : undefined);
  const young = bornAtMs !== undefined && ctx.now - bornAtMs < ctx.grace;
  const creating = record?.state === "creating" || (record === undefined && hostLane !== undefined && hostLane.runnerId === 0);
  const withinGrace = young && (creating || record?.state === "active");

  if (registration !== undefined && hostLane !== undefined) {
    if (record !== undefined) return MANAGED;
    return {
      cls: "needs-attention",
      orphanKind: undefined,
      attention: {
        code: "NO_RECORD",
        message: `lane ${laneId} exists on ${hostId} and on GitHub (runner ${registration.id}) but the coordinator has no record of it`,
      },
      pending: false,
    };
  }
  if (registration !== undefined) {
    if (!hostKnown) return record === undefined ? ORPHANED["registration-without-lane"] : MANAGED;
    return withinGrace ? PENDING : ORPHANED["registration-without-lane"];
  }
  if (hostLane !== undefined) {
    // An ephemeral lane between jobs has no registration by design: its last one was consumed by its job.
    if (record !== undefined && hostLane.state === LaneState.LANE_STATE_IDLE_UNARMED) return MANAGED;
    if (!scopeKnown) return record === undefined ? ORPHANED["lane-without-registration"] : MANAGED;
    return withinGrace ? PENDING : ORPHANED["lane-without-registration"];
  }
  // Only the record is left.
  if (!hostKnown || !scopeKnown) return MANAGED;
  return young && record?.state === "creating" ? PENDING : ORPHANED["record-without-lane"];
}

/**
 * Whether an orphaned lane's orphan condition rests on complete observations: a missing host lane needs a
 * fresh inventory of the host, a missing registration a complete runner list of the scope.
 */
export function isOrphanVerified(view: LaneView): boolean {
  switch (view.orphanKind) {
    case "registration-without-lane":
      return view.hostKnown;
    case "lane-without-registration":
      return view.scopeKnown;
    case "record-without-lane":
      return view.hostKnown && view.scopeKnown;
    case undefined:
      return false;
  }
}
