import type { Policy } from "@lanekeeper/shared";
import { DEFAULT_INVENTORY_MAX_AGE_MS } from "../limits.js";
import type { ObservedState } from "./observed-state.js";

/**
 * Stable codes of what an observation pass could not see. Any gap makes the view **degraded**: a plan made from
 * it may say what it would do with what it saw, but never that the fleet matches the policy.
 */
export type ViewGapCode =
  /** NATS could not be reached: no lane records and no agent inventories were read. */
  | "NATS_UNREACHABLE"
  /** The coordinator's signing key could not be read, so the coordinator (NATS, records, inventories) was not opened. */
  | "COORDINATOR_KEY_UNREADABLE"
  /** Lane records came from a file (`--records`), so no agent inventory was read. */
  | "INVENTORIES_NOT_READ"
  /** An opted-in host sent no inventory. */
  | "INVENTORY_MISSING"
  /** An opted-in host's last inventory is older than the freshness limit. */
  | "INVENTORY_STALE"
  /** A scope's runners could not be listed (the error code is in the message). */
  | "GITHUB_SCOPE_UNAVAILABLE"
  /** A scope's runner list did not add up (it changed while listing). */
  | "GITHUB_SCOPE_INCOMPLETE";

/** One thing the view is missing: what, and what to do about it. */
export interface ViewGap {
  readonly code: ViewGapCode;
  /** What is missing and what follows from that, in one line. */
  readonly message: string;
  /** What the operator should do so the next view is complete. */
  readonly fix: string;
  /** The hosts or scopes concerned, when the gap is about some of them. */
  readonly subjects?: readonly string[];
}

/** Options of {@link viewGaps}. */
export interface ViewGapsInput {
  readonly policy: Policy;
  readonly observed: ObservedState;
  /** The observation's time (ms since the epoch): inventories are judged fresh against it. */
  readonly nowMs: number;
  /** @default DEFAULT_INVENTORY_MAX_AGE_MS */
  readonly inventoryMaxAgeMs?: number;
  /**
   * Gaps the caller already knows of, because a source could not be opened at all (NATS, the key, `--records`).
   * They replace the per-host inventory gaps, which would only repeat them host by host.
   */
  readonly unopened?: readonly ViewGap[];
}

/** The gap for a coordinator that could not be opened because NATS is unreachable. */
export function natsUnreachableGap(natsUrl: string, detail: string): ViewGap {
  return {
    code: "NATS_UNREACHABLE",
    message: `NATS at ${natsUrl} could not be reached (${detail}): no lane records and no agent inventories were read, so no lane's host could be seen`,
    fix: `start NATS or fix coordinator.natsUrl and the NATS credentials in the policy, then run lanekeeper plan again`,
  };
}

/** The gap for a coordinator that could not be opened because its signing key is unreadable. */
export function coordinatorKeyGap(keyFile: string, detail: string): ViewGap {
  return {
    code: "COORDINATOR_KEY_UNREADABLE",
    message: `the coordinator key ${keyFile} could not be read (${detail}): NATS was not opened, so no lane records and no agent inventories were read`,
    fix: "run lanekeeper plan as the user that can read coordinator.keyFile (or fix the path in the policy), then run it again",
  };
}

/** The gap for a plan made from `--records`: lane records from a file, no agent inventory. */
export function recordsFileGap(path: string): ViewGap {
  return {
    code: "INVENTORIES_NOT_READ",
    message: `lane records were read from ${path} and no agent inventory was read: no lane's host could be seen`,
    fix: "run lanekeeper plan without --records where NATS is reachable to plan from the live fleet",
  };
}

/**
 * What an observation could not see: sources that were not opened ({@link ViewGapsInput.unopened}), opted-in
 * hosts without a fresh inventory, scopes GitHub did not list completely. Empty means the view is complete.
 */
export function viewGaps(input: ViewGapsInput): ViewGap[] {
  const gaps: ViewGap[] = [...(input.unopened ?? [])];
  const maxAge = input.inventoryMaxAgeMs ?? DEFAULT_INVENTORY_MAX_AGE_MS;
  if (gaps.length === 0) {
    const missing: string[] = [];
    const stale: string[] = [];
    for (const [hostId, h] of Object.entries(input.policy.hosts).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (!h.optIn) continue;
      const inv = input.observed.inventory.hosts.get(hostId);
      if (inv === undefined) missing.push(hostId);
      else if (input.nowMs - inv.receivedAtMs > maxAge) stale.push(hostId);
    }
    if (missing.length > 0) {
      gaps.push({
        code: "INVENTORY_MISSING",
        message: `no inventory from ${missing.join(", ")}: the lanes there could not be seen, so none of them is judged orphaned, restarted or removed`,
        fix: `check that lanekeeper-agent runs on ${missing.join(", ")} and is connected to NATS (lanekeeper-agent status there), then run lanekeeper plan again`,
        subjects: missing,
      });
    }
    if (stale.length > 0) {
      gaps.push({
        code: "INVENTORY_STALE",
        message: `the last inventory from ${stale.join(", ")} is older than ${Math.round(maxAge / 1000)}s: the lanes there are not judged`,
        fix: `check that lanekeeper-agent on ${stale.join(", ")} is running and connected to NATS, then run lanekeeper plan again`,
        subjects: stale,
      });
    }
  }
  const unavailable: string[] = [];
  const incomplete: string[] = [];
  for (const [scope, o] of input.observed.scopes) {
    if (o.status !== "ok") unavailable.push(`${scope} (${o.code})`);
    else if (!o.complete) incomplete.push(scope);
  }
  if (unavailable.length > 0) {
    gaps.push({
      code: "GITHUB_SCOPE_UNAVAILABLE",
      message: `GitHub runners of ${unavailable.join(", ")} could not be listed: nothing is concluded there`,
      fix: "check the GitHub credential, the scope names and the rate limit (the warnings say which), then run lanekeeper plan again",
      subjects: unavailable,
    });
  }
  if (incomplete.length > 0) {
    gaps.push({
      code: "GITHUB_SCOPE_INCOMPLETE",
      message: `the GitHub runner list of ${incomplete.join(", ")} changed while it was read: no registration there is judged missing`,
      fix: "run lanekeeper plan again",
      subjects: incomplete,
    });
  }
  return gaps;
}
