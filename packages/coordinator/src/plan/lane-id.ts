import { createHash } from "node:crypto";
import { MAX_LANE_ID_CHARS, validateLaneId } from "@lanekeeper/shared";
import { MAX_LANE_ID_ATTEMPTS } from "../limits.js";

const HASH_CHARS = 6;

/**
 * A new lane id: `<pool>-<6 hex>`, the hex from SHA-256 of scope, pool and the lowest counter whose id is not
 * taken. Deterministic (the same state plans the same ids, so `plan` and `apply` agree) and unique (ids in
 * records, on GitHub, on hosts or already planned are skipped). The pool prefix is shortened to fit 63
 * characters. Validated by shared's `validateLaneId`.
 */
export function newLaneId(scope: string, pool: string, taken: ReadonlySet<string>): string {
  const prefix = pool.slice(0, MAX_LANE_ID_CHARS - HASH_CHARS - 1);
  for (let n = 0; n < MAX_LANE_ID_ATTEMPTS; n++) {
    const hash = createHash("sha256").update(`${scope}\n${pool}\n${n}`).digest("hex").slice(0, HASH_CHARS);
    const id = `${prefix}-${hash}`;
    if (!taken.has(id)) return validateLaneId(id);
  }
  // Unreachable in practice: 16^6 hashes against a fleet of at most thousands of lanes.
  throw new Error(`no free lane id for ${scope}/${pool} after ${MAX_LANE_ID_ATTEMPTS} attempts`);
}
