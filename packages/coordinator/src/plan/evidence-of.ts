import { healthToJSON, laneStateToJSON, type LaneObservation } from "@lanekeeper/shared";
import type { GitHubRunner } from "../github/github-types.js";
import type { LaneView } from "../observe/classify.js";
import type { StoredLaneRecord } from "../observe/lane-record.js";
import type { Evidence } from "./evidence.js";

/** Evidence from a GitHub registration. */
export function githubEvidence(scope: string, r: GitHubRunner): Evidence {
  return {
    source: "github",
    scope,
    runnerId: r.id,
    runnerName: r.name,
    status: r.status,
    busy: r.busy,
    labels: r.labels.map((l) => l.name),
  };
}

/** Evidence from a host's report of a lane. */
export function hostEvidence(hostId: string, l: LaneObservation): Evidence {
  return {
    source: "host",
    hostId,
    laneId: l.laneId,
    state: laneStateToJSON(l.state),
    health: healthToJSON(l.health),
    jobRunning: l.jobRunning,
    runnerId: l.runnerId,
    draining: l.draining,
    held: l.held,
    stateSinceMs: l.stateSinceMs,
  };
}

/** Evidence from the coordinator's record. */
export function recordEvidence(r: StoredLaneRecord): Evidence {
  return {
    source: "record",
    laneId: r.laneId,
    state: r.state,
    scope: r.scope,
    pool: r.pool,
    hostId: r.hostId,
    runnerId: r.runnerId ?? null,
    revision: r.revision,
    createdAtMs: r.createdAtMs,
    orphanMarkedAtMs: r.orphan?.markedAtMs ?? null,
  };
}

/**
 * All evidence of a lane view: what was seen on each side, and each side's absence where its observation was
 * complete.
 */
export function laneEvidence(v: LaneView): Evidence[] {
  const out: Evidence[] = [];
  if (v.record !== undefined) out.push(recordEvidence(v.record));
  else out.push({ source: "absent", what: "record", where: "lane store" });
  if (v.registration !== undefined) out.push(githubEvidence(v.scope, v.registration));
  else if (v.scopeKnown) out.push({ source: "absent", what: "registration", where: v.scope });
  if (v.hostLane !== undefined) out.push(hostEvidence(v.hostId, v.hostLane));
  else if (v.hostKnown) out.push({ source: "absent", what: "host-lane", where: v.hostId });
  return out;
}
