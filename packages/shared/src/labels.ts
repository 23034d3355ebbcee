/**
 * The canonical GitHub labels of a managed lane (DESIGN.md section 6, marker 2). Lanes register with
 * `--no-default-labels`, so these plus the pool's capability labels are the runner's whole label set.
 */
import { RejectError, RejectReason } from "./errors.js";
import { MAX_LABELS } from "./limits.js";
import { validateHostId, validateLabels, validateLaneId, validatePoolName } from "./names.js";

/** Labels starting with this (compared case-insensitively) belong to lanekeeper; policies cannot use them. */
export const RESERVED_LABEL_PREFIX = "lk-";
/** Set instead of the capability labels while a lane drains, so no new job can match it. */
export const DRAINING_LABEL = "lk-draining";
/** Present on every managed runner. */
export const MANAGED_LABEL = "lk-managed";
/** Prefix of the lane identity label. */
export const LANE_LABEL_PREFIX = "lk-lane-";
/** Prefix of the host identity label. */
export const HOST_LABEL_PREFIX = "lk-host-";
/** Prefix of the pool identity label. */
export const POOL_LABEL_PREFIX = "lk-pool-";

/** Who a managed lane is. */
export interface LaneIdentity {
  laneId: string;
  hostId: string;
  pool: string;
}

/** Whether `label` is under the reserved `lk-` prefix (any case). */
export function isReservedLabel(label: string): boolean {
  return label.toLowerCase().startsWith(RESERVED_LABEL_PREFIX);
}

/** `["lk-managed", "lk-lane-<laneId>", "lk-host-<hostId>", "lk-pool-<pool>"]`, after validating each id. */
export function identityLabels(id: LaneIdentity): string[] {
  return [
    MANAGED_LABEL,
    `${LANE_LABEL_PREFIX}${validateLaneId(id.laneId)}`,
    `${HOST_LABEL_PREFIX}${validateHostId(id.hostId)}`,
    `${POOL_LABEL_PREFIX}${validatePoolName(id.pool)}`,
  ];
}

/**
 * The full label set a lane registers with: its identity labels, then the pool's capability labels in the order
 * given. Capability labels must not use the reserved prefix; the total must fit {@link MAX_LABELS}.
 */
export function canonicalLabels(args: LaneIdentity & { capabilityLabels: readonly string[] }): string[] {
  const capability = validateLabels(args.capabilityLabels);
  const all = [...identityLabels(args), ...capability];
  if (all.length > MAX_LABELS) {
    throw new RejectError(
      RejectReason.INVALID_LABEL,
      `a lane would carry ${all.length} labels, at most ${MAX_LABELS}: remove capability labels from the pool`,
    );
  }
  return validateLabels(all, { allowReserved: true });
}

/**
 * The label set of a draining lane: only its unique `lk-lane-<laneId>` and `lk-draining`. Every label a workflow
 * could target (capability labels, but also `lk-managed`, `lk-host-*`, `lk-pool-*`) is gone, so no new job can
 * match it. Ownership evidence stays in the unique lane label, the host marker and the coordinator record
 * (DESIGN.md section 6); see {@link parseDrainingLabels}.
 */
export function drainingLabels(id: Pick<LaneIdentity, "laneId">): string[] {
  return [`${LANE_LABEL_PREFIX}${validateLaneId(id.laneId)}`, DRAINING_LABEL];
}

/**
 * The lane id of a reduced draining label set (exactly one `lk-lane-<id>` plus `lk-draining`, no other label),
 * or `undefined`. The set alone does not prove ownership: callers match the runner id against the lane's record.
 */
export function parseDrainingLabels(labels: readonly string[]): string | undefined {
  const set = new Set(labels);
  if (set.size !== 2 || !set.has(DRAINING_LABEL)) return undefined;
  const lane = [...set].find((l) => l !== DRAINING_LABEL) ?? "";
  if (!lane.startsWith(LANE_LABEL_PREFIX)) return undefined;
  const v = lane.slice(LANE_LABEL_PREFIX.length);
  return /^[a-z0-9][a-z0-9-]{0,62}$/.test(v) ? v : undefined;
}

/**
 * Whether `labels` still identify lane `id`: its complete identity labels and no other host label, or the reduced
 * draining set of that lane. Callers that act on the runner (delete, relabel) must also check that its runner id
 * is the one recorded for the lane, because the reduced set names no host.
 */
export function carriesLaneIdentity(labels: readonly string[], id: LaneIdentity): boolean {
  if (parseDrainingLabels(labels) === id.laneId) return true;
  const names = new Set(labels);
  const otherHost = labels.some((l) => l.startsWith(HOST_LABEL_PREFIX) && l !== `${HOST_LABEL_PREFIX}${id.hostId}`);
  return !otherHost && identityLabels(id).every((l) => names.has(l));
}

/**
 * Read the lane identity from a label set, or `undefined` when the set is not exactly one managed identity
 * (missing `lk-managed`, or zero or several lane/host/pool labels). Comparison is exact: lanekeeper only ever
 * writes lower-case labels, and anything else is treated as unmanaged.
 */
export function parseIdentityLabels(labels: readonly string[]): LaneIdentity | undefined {
  if (!labels.includes(MANAGED_LABEL)) return undefined;
  const pick = (prefix: string): string | undefined => {
    const found = labels.filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length));
    if (found.length !== 1) return undefined;
    const v = found[0] ?? "";
    return /^[a-z0-9][a-z0-9-]{0,62}$/.test(v) ? v : undefined;
  };
  const laneId = pick(LANE_LABEL_PREFIX);
  const hostId = pick(HOST_LABEL_PREFIX);
  const pool = pick(POOL_LABEL_PREFIX);
  if (laneId === undefined || hostId === undefined || pool === undefined) return undefined;
  return { laneId, hostId, pool };
}

/**
 * Whether `labels` carry a complete managed identity, and (when given) for this lane and host. A runner without
 * it is unmanaged and read-only.
 */
export function isManagedLabelSet(labels: readonly string[], expect: { laneId?: string; hostId?: string } = {}): boolean {
  const id = parseIdentityLabels(labels);
  if (!id) return false;
  if (expect.laneId !== undefined && id.laneId !== expect.laneId) return false;
  if (expect.hostId !== undefined && id.hostId !== expect.hostId) return false;
  return true;
}
