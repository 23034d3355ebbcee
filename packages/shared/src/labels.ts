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

/** The label set of a draining lane: identity labels plus `lk-draining`, no capability label. */
export function drainingLabels(id: LaneIdentity): string[] {
  return [...identityLabels(id), DRAINING_LABEL];
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
