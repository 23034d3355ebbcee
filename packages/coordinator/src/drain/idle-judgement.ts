import { LaneMode, LaneState, type LaneObservation } from "@lanekeeper/shared";
import type { GitHubRunner } from "../github/github-types.js";

/** What GitHub answered about the lane's registration in one observation. */
export type GitHubAnswer =
  | { readonly kind: "runner"; readonly runner: GitHubRunner }
  | { readonly kind: "not-found" }
  | { readonly kind: "error"; readonly code: string };

/** What the host said about the lane in one observation. */
export type HostAnswer =
  /** A snapshot taken after the drain began (so it reflects the drained lane). */
  | { readonly kind: "snapshot"; readonly lane: LaneObservation | undefined; readonly takenAtMs: number }
  /** No snapshot newer than the drain's start, or none fresh enough to trust. */
  | { readonly kind: "stale" };

/** Why a drain is still waiting, as a stable code (shown in progress lines and recovery notes). */
export type WaitReason =
  | "host-inventory"
  | "lane-missing-on-host"
  | "job-on-host"
  | "github-busy"
  | "github-not-found"
  | "github-error"
  | "settle-window";

/** Verdict on one observation. */
export type IdleVerdict = { readonly idle: true; readonly takenAtMs: number } | { readonly idle: false; readonly reason: WaitReason; readonly detail: string };

/** Words for a {@link WaitReason}, for progress lines. */
export function describeWait(reason: WaitReason): string {
  switch (reason) {
    case "host-inventory":
      return "a fresh inventory from the host";
    case "lane-missing-on-host":
      return "the host to report the lane";
    case "job-on-host":
      return "the running job to finish (Runner.Worker on the host)";
    case "github-busy":
      return "GitHub to report the runner idle (busy)";
    case "github-not-found":
      return "the registration (GitHub answers 404, never taken as idle)";
    case "github-error":
      return "GitHub to answer (an error is never taken as idle)";
    case "settle-window":
      return "the settle window (idle on both sides, confirming)";
  }
}

/**
 * One observation of a draining lane: idle only when the host (in a snapshot taken after the drain began)
 * reports the lane without a `Runner.Worker`, AND GitHub shows the registration not busy. A 404 or an error
 * from GitHub is never idle; an unknown host is never idle. One exception: an ephemeral lane the host reports
 * `IDLE_UNARMED` has no runner process at all (its single-use registration was consumed by its last job), so
 * GitHub's 404 is what idle looks like there.
 */
export function judgeIdle(host: HostAnswer, github: GitHubAnswer): IdleVerdict {
  if (host.kind === "stale") return { idle: false, reason: "host-inventory", detail: "no inventory newer than the drain" };
  const lane = host.lane;
  if (lane === undefined) return { idle: false, reason: "lane-missing-on-host", detail: "the host does not report the lane" };
  if (lane.jobRunning) return { idle: false, reason: "job-on-host", detail: "Runner.Worker is running in the lane" };
  if (github.kind === "error") return { idle: false, reason: "github-error", detail: `GitHub error ${github.code}` };
  if (github.kind === "not-found") {
    if (lane.mode === LaneMode.LANE_MODE_EPHEMERAL && lane.state === LaneState.LANE_STATE_IDLE_UNARMED) {
      return { idle: true, takenAtMs: host.takenAtMs };
    }
    return { idle: false, reason: "github-not-found", detail: "GitHub answers 404 for the registration" };
  }
  if (github.runner.busy) return { idle: false, reason: "github-busy", detail: `runner ${github.runner.id} is busy` };
  return { idle: true, takenAtMs: host.takenAtMs };
}

/**
 * The settle window: idle only after two idle observations at least `settleMs` apart, by the coordinator's
 * clock AND by the host snapshots' own clock (so the second observation rests on a snapshot the agent took at
 * least `settleMs` after the first one), with no busy observation in between. Any non-idle observation starts
 * over.
 */
export class SettleTracker {
  private first: { atMs: number; takenAtMs: number } | undefined;

  constructor(private readonly settleMs: number) {}

  /** Feed one verdict observed at `nowMs`; true once settled. */
  observe(verdict: IdleVerdict, nowMs: number): boolean {
    if (!verdict.idle) {
      this.first = undefined;
      return false;
    }
    if (this.first === undefined) {
      this.first = { atMs: nowMs, takenAtMs: verdict.takenAtMs };
      return false;
    }
    return nowMs - this.first.atMs >= this.settleMs && verdict.takenAtMs - this.first.takenAtMs >= Math.max(this.settleMs, 1);
  }

  /** How long the lane has looked idle (0 when it does not). */
  idleForMs(nowMs: number): number {
    return this.first === undefined ? 0 : nowMs - this.first.atMs;
  }

  /** Start over (e.g. the agent refused a stop because a job started). */
  reset(): void {
    this.first = undefined;
  }
}
