import { DEFAULT_ORPHAN_GRACE_MS } from "../limits.js";
import { isOrphanVerified, type LaneView } from "../observe/classify.js";
import type { OrphanKind, OrphanMark, StoredLaneRecord } from "../observe/lane-record.js";
import type { Guard } from "./guard.js";
import type { PlanContext } from "./plan-context.js";

/**
 * Orphans, phase one: a lane classified orphaned for the first time gets a `mark-orphan` action (the grace period
 * starts). An orphan whose evidence is incomplete is only counted toward its group, so no duplicate is created.
 */
export function newOrphan(ctx: PlanContext, v: LaneView): void {
  const kind = v.orphanKind;
  if (kind === undefined) return;
  if (!isOrphanVerified(v)) {
    // Probably ours with its other half unobserved: counted, so the group does not create a duplicate.
    const key = `${v.scope}\u0000${v.pool}`;
    ctx.unverified.set(key, (ctx.unverified.get(key) ?? 0) + 1);
    ctx.warn("ORPHAN_UNVERIFIED", `lane ${v.laneId} looks orphaned (${kind}) but the evidence is incomplete: waiting for fresh observations`, {
      laneId: v.laneId,
    });
    return;
  }
  if (ctx.blocked(v.scope, v.hostId) !== undefined) return;
  if (kind === "lane-without-registration" && !ctx.permits(v, ["remove"])) return;
  const g = v.registration;
  const guards: Guard[] = [...orphanFactGuards(v, kind)];
  ctx.push(v, "mark-orphan", { code: "ORPHAN_SEEN", message: orphanMessage(kind, v) }, {
    orphanKind: kind,
    runnerId: g?.id,
    mark: orphanMark(ctx, kind, v),
  }, guards);
}

/**
 * Orphans, phase two: a lane whose record is marked orphaned is cleaned up once the grace period has passed, only
 * if it is still orphaned of the same kind and still ours; a mark that no longer matches is cleared or renewed.
 */
export function markedOrphan(ctx: PlanContext, v: LaneView, r: StoredLaneRecord): void {
  const mark = r.orphan;
  if (mark === undefined) {
    ctx.warn("ORPHAN_MARK_STALE", `record of ${v.laneId} is orphaned without a mark; remove it with the lane store tools`, { laneId: v.laneId });
    return;
  }
  const still =
    v.class === "orphaned" &&
    v.orphanKind === mark.kind &&
    (mark.runnerId === undefined || v.registration?.id === mark.runnerId || mark.kind !== "registration-without-lane");
  if (still) {
    cleanupIfDue(ctx, v, mark);
    return;
  }
  if (v.class === "needs-attention") {
    ctx.warn("ORPHAN_MARK_STALE", `orphan mark of ${v.laneId} no longer matches: ${v.attention?.message ?? ""}`, { laneId: v.laneId });
    return;
  }
  if (v.certainty !== "verified") return;
  if (v.registration === undefined && v.hostLane === undefined) {
    ctx.push(v, "forget-record", { code: "ORPHAN_CLEARED", message: "nothing of the orphan is left: the record goes" }, {});
  } else if (v.class === "managed" && mark.previousState !== undefined) {
    ctx.push(v, "update-record", { code: "ORPHAN_CLEARED", message: "both halves are back and agree: the orphan mark is cleared" }, {
      changes: { state: mark.previousState, ...(v.registration === undefined ? {} : { runnerId: v.registration.id }) },
    });
  } else {
    ctx.warn(
      "ORPHAN_MARK_STALE",
      `lane ${v.laneId} was marked ${mark.kind} but now looks ${v.class === "orphaned" ? (v.orphanKind ?? "") : v.class}; it is re-evaluated next plan`,
      { laneId: v.laneId },
    );
    if (v.class === "orphaned" && v.orphanKind !== undefined && isOrphanVerified(v) && ctx.blocked(v.scope, v.hostId) === undefined) {
      // Re-mark with the new kind: the grace period starts again.
      ctx.push(v, "mark-orphan", { code: "ORPHAN_SEEN", message: orphanMessage(v.orphanKind, v) }, {
        orphanKind: v.orphanKind,
        runnerId: v.registration?.id,
        mark: { ...orphanMark(ctx, v.orphanKind, v), ...(mark.previousState === undefined ? {} : { previousState: mark.previousState }) },
      }, orphanFactGuards(v, v.orphanKind));
    }
  }
}

/** A `cleanup-orphan` for a still-orphaned lane, once its evidence is complete and its grace period is over. */
function cleanupIfDue(ctx: PlanContext, v: LaneView, mark: OrphanMark): void {
  if (!isOrphanVerified(v)) return; // wait for complete evidence
  const notBefore = mark.markedAtMs + (ctx.opts.orphanGraceMs ?? DEFAULT_ORPHAN_GRACE_MS);
  if (ctx.now < notBefore) return; // phase two only on a later cycle
  if (mark.kind !== "record-without-lane" && ctx.blocked(v.scope, v.hostId) !== undefined) return;
  if (mark.kind === "lane-without-registration" && !ctx.permits(v, ["remove"])) return;
  if (mark.kind === "registration-without-lane" && v.registration?.busy === true) {
    ctx.warn("ORPHAN_BUSY", `orphaned registration ${v.registration.id} of ${v.laneId} is busy on GitHub: not deleted while it runs a job`, {
      laneId: v.laneId,
    });
    return;
  }
  if (mark.kind === "lane-without-registration" && (v.hostLane?.jobRunning === true || v.hostLane?.held === true)) {
    ctx.warn("ORPHAN_BUSY", `orphaned lane ${v.laneId} on ${v.hostId} is running a job or held: not removed now`, {
      laneId: v.laneId,
      hostId: v.hostId,
    });
    return;
  }
  if (mark.kind !== "record-without-lane") {
    if (ctx.orphanBudget <= 0) {
      ctx.warn("ORPHAN_BUDGET", "more orphans are due for cleanup than one plan may clean up; the rest follow in later plans");
      return;
    }
    ctx.orphanBudget--;
  }
  const guards: Guard[] = [
    {
      kind: "orphan-still-marked",
      laneId: v.laneId,
      orphanKind: mark.kind,
      markedAtMs: mark.markedAtMs,
      notBeforeMs: notBefore,
      ...(mark.runnerId === undefined ? {} : { runnerId: mark.runnerId }),
    },
    ...orphanFactGuards(v, mark.kind),
  ];
  if (mark.kind === "registration-without-lane" && v.registration !== undefined) {
    guards.push({ kind: "runner-not-busy", scope: v.scope, runnerId: v.registration.id, at: "delete-registration" });
  }
  if (mark.kind === "lane-without-registration") {
    guards.push({ kind: "no-job-evidence", hostId: v.hostId, laneId: v.laneId, at: "send-remove" });
    guards.push({ kind: "lane-not-held", hostId: v.hostId, laneId: v.laneId });
  }
  ctx.push(
    v,
    "cleanup-orphan",
    { code: "ORPHAN_CONFIRMED", message: `still orphaned since ${new Date(mark.markedAtMs).toISOString()}: ${orphanMessage(mark.kind, v)}` },
    { orphanKind: mark.kind, runnerId: v.registration?.id },
    guards,
  );
}

function orphanMark(ctx: PlanContext, kind: OrphanKind, v: LaneView): OrphanMark {
  const prev = v.record?.state;
  return {
    kind,
    markedAtMs: ctx.now,
    planId: ctx.planId,
    ...(kind === "registration-without-lane" && v.registration !== undefined ? { runnerId: v.registration.id } : {}),
    ...(prev === undefined || prev === "orphaned" ? {} : { previousState: prev }),
  };
}

/** Guards that restate why a lane is orphaned of this kind. */
function orphanFactGuards(v: LaneView, kind: OrphanKind): Guard[] {
  const g = v.registration;
  switch (kind) {
    case "registration-without-lane":
      return g === undefined
        ? []
        : [
            { kind: "runner-id-matches", scope: v.scope, laneId: v.laneId, runnerId: g.id },
            { kind: "runner-identity-labels", scope: v.scope, runnerId: g.id, laneId: v.laneId, hostId: v.hostId, pool: v.pool },
            { kind: "lane-absent-on-host", hostId: v.hostId, laneId: v.laneId },
          ];
    case "lane-without-registration":
      return [
        {
          kind: "registration-absent",
          scope: v.scope,
          laneId: v.laneId,
          ...(v.hostLane !== undefined && v.hostLane.runnerId !== 0 ? { runnerId: v.hostLane.runnerId } : {}),
        },
        { kind: "lane-marker-valid", hostId: v.hostId, laneId: v.laneId, scope: v.scope, pool: v.pool },
      ];
    case "record-without-lane":
      return [
        { kind: "registration-absent", scope: v.scope, laneId: v.laneId },
        { kind: "lane-absent-on-host", hostId: v.hostId, laneId: v.laneId },
      ];
  }
}

function orphanMessage(kind: string, v: LaneView): string {
  switch (kind) {
    case "registration-without-lane":
      return `registration ${v.registration?.id ?? "?"} in ${v.scope} has no lane on ${v.hostId}`;
    case "lane-without-registration":
      return `lane on ${v.hostId} has no registration in ${v.scope}`;
    default:
      return "only the coordinator record is left";
  }
}
