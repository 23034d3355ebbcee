import { carriesLaneIdentity, identityLabels, LANE_LABEL_PREFIX, type Policy } from "@lanekeeper/shared";
import { describeGuard, type Guard } from "../plan/guard.js";
import { agentPermits } from "../plan/placement.js";
import { isReadFailure, type FreshView } from "./fresh-view.js";
import { toHostInventory } from "../observe/inventory-source.js";
import { opensText, upgradeWindowEvidence } from "../plan/upgrade-window.js";

/** The outcome of one guard check. */
export type GuardVerdict = { readonly ok: true } | { readonly ok: false; readonly guard: Guard; readonly why: string };

const pass: GuardVerdict = Object.freeze({ ok: true });

function fail(guard: Guard, why: string): GuardVerdict {
  return { ok: false, guard, why: `${describeGuard(guard)}: ${why}` };
}

/** The action's scope, for guards that name only a lane id (`lane-id-unused`). */
export interface GuardContext {
  readonly scope: string;
}

/**
 * Re-check one guard against fresh observations. Fails closed: when what the guard needs cannot be read (a
 * GitHub error, no fresh inventory), the guard fails and the action stops where it is.
 */
export async function checkGuard(g: Guard, view: FreshView, policy: Policy, ctx: GuardContext): Promise<GuardVerdict> {
  switch (g.kind) {
    case "record-revision": {
      const r = await view.record(g.laneId);
      if (isReadFailure(r)) return fail(g, `lane store unreadable (${r.code})`);
      if (g.revision === null) return r === undefined ? pass : fail(g, `a record exists (revision ${r.revision})`);
      if (r === undefined) return fail(g, "the record is gone");
      return r.revision === g.revision ? pass : fail(g, `the record is at revision ${r.revision}`);
    }
    case "scope-opted-in":
      return Object.hasOwn(policy.scopes, g.scope) && policy.scopes[g.scope]?.optIn === true ? pass : fail(g, "not opted in in the policy");
    case "host-opted-in":
      return Object.hasOwn(policy.hosts, g.hostId) && policy.hosts[g.hostId]?.optIn === true ? pass : fail(g, "not opted in in the policy");
    case "host-allows": {
      const s = await view.host(g.hostId);
      // Without a fresh inventory the agent's own allowlist is the check (it refuses before any runtime call).
      const permit = agentPermits(s === undefined ? undefined : toHostInventory(s), g.action, {
        scope: g.scope,
        pool: g.pool,
        backend: g.backend,
        image: g.image,
      });
      return permit.ok ? pass : fail(g, permit.detail);
    }
    case "host-capacity": {
      const s = await view.host(g.hostId);
      // The host's records only: listing every record for each create made a fleet's create quadratic.
      const records = await view.recordsOfHost(g.hostId);
      if (isReadFailure(records)) return fail(g, `lane store unreadable (${records.code})`);
      const ids = new Set<string>();
      for (const l of s?.snapshot.lanes ?? []) ids.add(l.laneId);
      for (const r of records) if (r.state !== "orphaned") ids.add(r.laneId);
      return ids.size < g.maxLanes ? pass : fail(g, `${ids.size} lanes already`);
    }
    case "lane-id-unused": {
      // Only the hosts known to report the id are read (one read per enrolled host per create made a fleet's create
      // quadratic); each is confirmed against its fresh snapshot.
      for (const hostId of await view.hostsMaybeReporting(g.laneId, Object.keys(policy.hosts))) {
        const s = await view.host(hostId);
        if (s?.snapshot.lanes.some((l) => l.laneId === g.laneId) === true) return fail(g, `host ${hostId} reports it`);
      }
      const reg = await view.registrationOf(ctx.scope, g.laneId);
      if (isReadFailure(reg)) return fail(g, `GitHub unreadable (${reg.code})`);
      return reg === undefined ? pass : fail(g, `runner ${reg.id} carries ${LANE_LABEL_PREFIX}${g.laneId}`);
    }
    case "lane-marker-valid": {
      const s = await view.host(g.hostId);
      if (s === undefined) return fail(g, "no fresh inventory from the host");
      const lane = s.snapshot.lanes.find((l) => l.laneId === g.laneId);
      if (lane === undefined) return fail(g, "the host does not report the lane");
      return lane.scope === g.scope && lane.pool === g.pool ? pass : fail(g, `the host reports it for ${lane.scope}/${lane.pool}`);
    }
    case "lane-absent-on-host": {
      const s = await view.host(g.hostId);
      if (s === undefined) return fail(g, "no fresh inventory from the host");
      return s.snapshot.lanes.some((l) => l.laneId === g.laneId) ? fail(g, "the host reports the lane") : pass;
    }
    case "lane-not-held": {
      const s = await view.host(g.hostId);
      if (s === undefined) return fail(g, "no fresh inventory from the host");
      const lane = s.snapshot.lanes.find((l) => l.laneId === g.laneId);
      return lane?.held === true ? fail(g, `held${lane.holdReason === "" ? "" : ` (${lane.holdReason})`}`) : pass;
    }
    case "no-job-evidence": {
      const s = await view.host(g.hostId);
      if (s === undefined) return fail(g, "no fresh inventory from the host");
      const lane = s.snapshot.lanes.find((l) => l.laneId === g.laneId);
      return lane?.jobRunning === true ? fail(g, "Runner.Worker is running") : pass;
    }
    case "runner-id-matches": {
      const reg = await view.registrationOf(g.scope, g.laneId);
      if (isReadFailure(reg)) return fail(g, `GitHub unreadable (${reg.code})`);
      if (reg === undefined) return fail(g, "no registration carries the lane's label");
      return reg.id === g.runnerId ? pass : fail(g, `the registration is runner ${reg.id}`);
    }
    case "runner-identity-labels": {
      const r = await view.runner(g.scope, g.runnerId);
      if (isReadFailure(r)) return fail(g, `GitHub unreadable (${r.code})`);
      if (r === undefined) return fail(g, "the runner is gone (404)");
      // Looked up by the planned runner id, so the reduced draining set (lk-lane-<id>, lk-draining) is this lane's.
      const names = r.labels.map((l) => l.name);
      if (carriesLaneIdentity(names, { laneId: g.laneId, hostId: g.hostId, pool: g.pool })) return pass;
      const have = new Set(names);
      const missing = identityLabels({ laneId: g.laneId, hostId: g.hostId, pool: g.pool }).filter((l) => !have.has(l));
      return fail(g, missing.length > 0 ? `missing ${missing.join(", ")}` : "it carries another host label");
    }
    case "runner-not-busy": {
      const r = await view.runner(g.scope, g.runnerId);
      if (isReadFailure(r)) return fail(g, `GitHub unreadable (${r.code})`);
      // Gone is not busy: nothing can run on a deleted registration (the step itself handles the 404).
      return r?.busy === true ? fail(g, "GitHub shows it busy") : pass;
    }
    case "registration-absent": {
      const list = await view.listing(g.scope);
      if (isReadFailure(list)) return fail(g, `GitHub unreadable (${list.code})`);
      if (!list.complete) return fail(g, "the runner list is incomplete");
      const hit = list.runners.find((r) => r.labels.some((l) => l.name === `${LANE_LABEL_PREFIX}${g.laneId}`) || (g.runnerId !== undefined && r.id === g.runnerId));
      return hit === undefined ? pass : fail(g, `runner ${hit.id} is there`);
    }
    case "orphan-still-marked": {
      const r = await view.record(g.laneId);
      if (isReadFailure(r)) return fail(g, `lane store unreadable (${r.code})`);
      const m = r?.orphan;
      if (r?.state !== "orphaned" || m === undefined) return fail(g, "the record is no longer marked orphaned");
      if (m.kind !== g.orphanKind || m.markedAtMs !== g.markedAtMs) return fail(g, "the mark changed");
      if (g.runnerId !== undefined && m.runnerId !== g.runnerId) return fail(g, "the mark names another runner");
      return view.nowMs >= g.notBeforeMs ? pass : fail(g, "the grace period has not passed");
    }
    case "upgrade-window-open": {
      // The policy apply runs with decides: a window removed (or widened) since the plan lets the upgrade start.
      const w = Object.hasOwn(policy.pools, g.pool) ? policy.pools[g.pool]?.upgrade?.window : undefined;
      if (w === undefined) return pass;
      const e = upgradeWindowEvidence(g.pool, w, view.nowMs);
      return e.open ? pass : fail(g, `closed, ${opensText(e)}`);
    }
  }
}

/** Check guards in order; the first failure wins. */
export async function checkGuards(guards: readonly Guard[], view: FreshView, policy: Policy, ctx: GuardContext): Promise<GuardVerdict> {
  for (const g of guards) {
    const v = await checkGuard(g, view, policy, ctx);
    if (!v.ok) return v;
  }
  return pass;
}
