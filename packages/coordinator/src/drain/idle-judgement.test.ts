import { Health, LaneMode, LaneState, type LaneObservation } from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import type { GitHubRunner } from "../github/github-types.js";
import { judgeIdle, SettleTracker, type GitHubAnswer, type HostAnswer } from "./idle-judgement.js";

function lane(over: Partial<LaneObservation> = {}): LaneObservation {
  return {
    laneId: "l1",
    scope: "acme/api",
    pool: "p",
    backend: 1,
    mode: LaneMode.LANE_MODE_PERSISTENT,
    runtimeName: "lanekeeper-lane-l1.service",
    state: LaneState.LANE_STATE_RUNNING,
    health: Health.HEALTH_HEALTHY,
    jobRunning: false,
    runnerId: 7,
    labels: [],
    held: false,
    holdReason: "",
    draining: true,
    restartsInWindow: 0,
    attentionReason: "",
    recoveryNote: "",
    runnerVersion: "",
    image: "",
    stateSinceMs: 0,
    lastExitCode: 0,
    runnerName: "l1",
    ...over,
  };
}

function runner(busy: boolean): GitHubAnswer {
  const r: GitHubRunner = { id: 7, name: "l1", os: "linux", status: "online", busy, labels: [], ephemeral: false, runnerGroupId: 1 };
  return { kind: "runner", runner: r };
}

const snap = (l: LaneObservation | undefined, takenAtMs = 1000): HostAnswer => ({ kind: "snapshot", lane: l, takenAtMs });

describe("judgeIdle: idle only when the host and GitHub both say so", () => {
  it.each<[string, HostAnswer, GitHubAnswer, string]>([
    ["no fresh snapshot", { kind: "stale" }, runner(false), "host-inventory"],
    ["lane missing on the host", snap(undefined), runner(false), "lane-missing-on-host"],
    ["Runner.Worker on the host, GitHub lagging", snap(lane({ jobRunning: true })), runner(false), "job-on-host"],
    ["GitHub busy", snap(lane()), runner(true), "github-busy"],
    ["GitHub 404 is never idle", snap(lane()), { kind: "not-found" }, "github-not-found"],
    ["a GitHub error is never idle", snap(lane()), { kind: "error", code: "GITHUB_API" }, "github-error"],
  ])("%s → waiting (%s)", (_what, host, gh, reason) => {
    expect(judgeIdle(host, gh)).toMatchObject({ idle: false, reason });
  });

  it("idle when the host reports no job and GitHub not busy", () => {
    expect(judgeIdle(snap(lane(), 1234), runner(false))).toEqual({ idle: true, takenAtMs: 1234 });
  });

  it("an unarmed ephemeral lane has no runner: GitHub's 404 is what idle looks like there", () => {
    const l = lane({ mode: LaneMode.LANE_MODE_EPHEMERAL, state: LaneState.LANE_STATE_IDLE_UNARMED });
    expect(judgeIdle(snap(l), { kind: "not-found" })).toMatchObject({ idle: true });
    expect(judgeIdle(snap({ ...l, state: LaneState.LANE_STATE_RUNNING }), { kind: "not-found" })).toMatchObject({ idle: false });
  });
});

describe("SettleTracker", () => {
  const idle = (takenAtMs: number) => ({ idle: true as const, takenAtMs });
  const busy = { idle: false as const, reason: "job-on-host" as const, detail: "" };

  it("needs two idle observations settle apart, on both clocks", () => {
    const t = new SettleTracker(1000);
    expect(t.observe(idle(100), 10_000)).toBe(false);
    expect(t.observe(idle(600), 10_600)).toBe(false); // not settle apart yet
    expect(t.observe(idle(900), 11_200)).toBe(false); // coordinator clock yes, snapshot clock no
    expect(t.observe(idle(1100), 11_300)).toBe(true);
  });

  it("any busy observation starts over", () => {
    const t = new SettleTracker(1000);
    t.observe(idle(0), 0);
    expect(t.observe(busy, 500)).toBe(false);
    expect(t.observe(idle(2000), 2000)).toBe(false);
    expect(t.observe(idle(3000), 3000)).toBe(true);
  });

  it("with no settle window, still two distinct snapshots", () => {
    const t = new SettleTracker(0);
    expect(t.observe(idle(5), 0)).toBe(false);
    expect(t.observe(idle(5), 1)).toBe(false);
    expect(t.observe(idle(6), 2)).toBe(true);
  });
});
