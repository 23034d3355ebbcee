import type { ActionKind } from "@lanekeeper/shared";
import type { OrphanKind } from "../observe/lane-record.js";
import type { PlanStep } from "./plan-step.js";

/** Fields every guard has. */
interface GuardBase {
  /** Re-check right before this step; absent means before the action's first step. */
  readonly at?: PlanStep;
}

/**
 * A condition apply re-checks against fresh observations right before acting. If any guard fails, apply skips
 * the action (and audits why); the next plan sees the new state. Guards restate the planner's assumptions, so
 * a plan that has gone stale can never do harm.
 */
export type Guard =
  /** The lane record is still at this revision (`null`: no record may exist yet). */
  | (GuardBase & { readonly kind: "record-revision"; readonly laneId: string; readonly revision: number | null })
  /** The policy still opts this scope in. */
  | (GuardBase & { readonly kind: "scope-opted-in"; readonly scope: string })
  /** The policy still opts this host in. */
  | (GuardBase & { readonly kind: "host-opted-in"; readonly hostId: string })
  /** The host's agent has control enabled and its allowlist permits this action for scope, pool, backend (and image). */
  | (GuardBase & {
      readonly kind: "host-allows";
      readonly hostId: string;
      /** The intent action (as in the agent's `control.actions`). */
      readonly action: ActionKind;
      readonly scope: string;
      readonly pool: string;
      readonly backend: string;
      readonly image?: string;
    })
  /** The host has fewer than `maxLanes` lanes. */
  | (GuardBase & { readonly kind: "host-capacity"; readonly hostId: string; readonly maxLanes: number })
  /** No lane with this id, on any host, and no registration with its identity. */
  | (GuardBase & { readonly kind: "lane-id-unused"; readonly laneId: string })
  /** The host reports the lane with a verified marker for this scope and pool. */
  | (GuardBase & {
      readonly kind: "lane-marker-valid";
      readonly hostId: string;
      readonly laneId: string;
      readonly scope: string;
      readonly pool: string;
    })
  /** The host does not report the lane (the registration's lane is really gone). */
  | (GuardBase & { readonly kind: "lane-absent-on-host"; readonly hostId: string; readonly laneId: string })
  /** No operator hold on the lane. */
  | (GuardBase & { readonly kind: "lane-not-held"; readonly hostId: string; readonly laneId: string })
  /** The host reports no `Runner.Worker` for the lane (the agent re-checks at the instant it stops it). */
  | (GuardBase & { readonly kind: "no-job-evidence"; readonly hostId: string; readonly laneId: string })
  /** GitHub's registration of the lane still has this runner id. */
  | (GuardBase & { readonly kind: "runner-id-matches"; readonly scope: string; readonly laneId: string; readonly runnerId: number })
  /** The runner still carries the lane's complete identity labels, or (drained) its `lk-lane-<id>` and `lk-draining`. */
  | (GuardBase & {
      readonly kind: "runner-identity-labels";
      readonly scope: string;
      readonly runnerId: number;
      readonly laneId: string;
      readonly hostId: string;
      readonly pool: string;
    })
  /** GitHub does not show the runner busy (necessary, never sufficient: `busy` lags). */
  | (GuardBase & { readonly kind: "runner-not-busy"; readonly scope: string; readonly runnerId: number })
  /** The scope's complete runner list has no registration for the lane (nor the given runner id). */
  | (GuardBase & { readonly kind: "registration-absent"; readonly scope: string; readonly laneId: string; readonly runnerId?: number })
  /**
   * The pool's upgrade window (`pools.<pool>.upgrade.window` of the policy apply runs with) is open now, or the
   * pool has none any more: a plan made inside the window, applied after it closed, starts no upgrade.
   */
  | (GuardBase & { readonly kind: "upgrade-window-open"; readonly pool: string; readonly window: string })
  /** The orphan mark is still there, of this kind, at least as old as the grace period. */
  | (GuardBase & {
      readonly kind: "orphan-still-marked";
      readonly laneId: string;
      readonly orphanKind: OrphanKind;
      readonly markedAtMs: number;
      readonly notBeforeMs: number;
      readonly runnerId?: number;
    });

/** The kind of a guard. */
export type GuardKind = Guard["kind"];

/** One line describing a guard, for the plan table and audit notes. */
export function describeGuard(g: Guard): string {
  const at = g.at === undefined ? "" : ` (before ${g.at})`;
  switch (g.kind) {
    case "record-revision":
      return `record of ${g.laneId} ${g.revision === null ? "still absent" : `still at revision ${g.revision}`}${at}`;
    case "scope-opted-in":
      return `scope ${g.scope} still opted in${at}`;
    case "host-opted-in":
      return `host ${g.hostId} still opted in${at}`;
    case "host-allows":
      return `agent on ${g.hostId} has control enabled and allows ${g.action} for ${g.scope}/${g.pool} (${g.backend})${at}`;
    case "host-capacity":
      return `host ${g.hostId} has fewer than ${g.maxLanes} lanes${at}`;
    case "lane-id-unused":
      return `lane id ${g.laneId} unused on every host and on GitHub${at}`;
    case "lane-marker-valid":
      return `host ${g.hostId} reports lane ${g.laneId} with a valid marker for ${g.scope}/${g.pool}${at}`;
    case "lane-absent-on-host":
      return `host ${g.hostId} does not report lane ${g.laneId}${at}`;
    case "lane-not-held":
      return `lane ${g.laneId} not held on ${g.hostId}${at}`;
    case "no-job-evidence":
      return `no job running in lane ${g.laneId} on ${g.hostId}${at}`;
    case "runner-id-matches":
      return `registration of ${g.laneId} is still runner ${g.runnerId}${at}`;
    case "runner-identity-labels":
      return `runner ${g.runnerId} still carries lk-managed, lk-lane-${g.laneId}, lk-host-${g.hostId}, lk-pool-${g.pool} (or, drained, lk-lane-${g.laneId} and lk-draining)${at}`;
    case "runner-not-busy":
      return `runner ${g.runnerId} not busy on GitHub${at}`;
    case "registration-absent":
      return `no registration for ${g.laneId} in ${g.scope}${g.runnerId === undefined ? "" : ` (nor runner ${g.runnerId})`}${at}`;
    case "upgrade-window-open":
      return `upgrade window ${g.window} of pool ${g.pool} open (or removed from the policy)${at}`;
    case "orphan-still-marked":
      return `orphan mark of ${g.laneId} (${g.orphanKind}) unchanged and older than ${new Date(g.notBeforeMs).toISOString()}${at}`;
  }
}
