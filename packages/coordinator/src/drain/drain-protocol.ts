import { LANE_LABEL_PREFIX, LanekeeperError, type Clock } from "@lanekeeper/shared";
import type { InventorySource } from "../observe/inventory-source.js";
import type { GitHubClient } from "../github/github-client.js";
import { describeWait, judgeIdle, SettleTracker, type GitHubAnswer, type HostAnswer, type WaitReason } from "./idle-judgement.js";

/** One progress line of a drain wait. */
export interface DrainProgress {
  readonly type: "drain-wait";
  readonly laneId: string;
  readonly hostId: string;
  /** Since the drain began. */
  readonly elapsedMs: number;
  /** Until the deadline. */
  readonly remainingMs: number;
  readonly waitingFor: WaitReason;
  /** {@link waitingFor} in words. */
  readonly waitingForText: string;
  /** How long the lane has looked idle on both sides (settle window progress). */
  readonly idleForMs: number;
}

/** What to wait for. */
export interface DrainWaitRequest {
  readonly laneId: string;
  readonly hostId: string;
  readonly scope: string;
  /** The lane's registration; looked up by its `lk-lane-` label when unknown. */
  readonly runnerId: number | undefined;
  /**
   * Host snapshots taken before this (agent clock: the drain result's `finishedAtMs`) do not count: they may
   * predate the drain.
   */
  readonly sinceTakenAtMs: number;
  /** When the drain began (coordinator clock), for elapsed times. */
  readonly startedAtMs: number;
  /** When waiting turns into needs-attention (coordinator clock). */
  readonly deadlineAtMs: number;
  readonly settleMs: number;
  readonly pollMs: number;
}

/** What the wait needs. */
export interface DrainWaitDeps {
  readonly github: Pick<GitHubClient, "getRunner" | "listRunners">;
  readonly inventory: InventorySource;
  readonly clock: Clock;
  readonly sleep: (ms: number) => Promise<void>;
  /** Snapshots received longer ago than this are not trusted. */
  readonly inventoryMaxAgeMs: number;
  readonly onProgress?: (p: DrainProgress) => void;
}

/** How a drain wait ended. */
export type DrainWaitResult =
  | { readonly kind: "idle"; readonly elapsedMs: number; readonly runnerId: number | undefined }
  | { readonly kind: "deadline"; readonly elapsedMs: number; readonly reason: WaitReason; readonly detail: string };

/**
 * Step 2 of the drain protocol (DESIGN.md section 7): poll until the agent reports no `Runner.Worker` in the
 * lane AND GitHub says the registration is not busy, across the settle window; or until the deadline, which the
 * caller turns into `needs-attention` (never into a kill). Reads only: labels were swapped and the agent told
 * before this is called; the agent re-checks job evidence itself at the instant it stops the lane (step 3).
 */
export async function waitUntilIdle(req: DrainWaitRequest, deps: DrainWaitDeps): Promise<DrainWaitResult> {
  const settle = new SettleTracker(req.settleMs);
  let runnerId = req.runnerId;
  let last: { reason: WaitReason; detail: string } = { reason: "host-inventory", detail: "not observed yet" };
  for (;;) {
    const now = deps.clock.now();
    const host = await hostAnswer(req, deps, now);
    const gh = await githubAnswer(req.scope, req.laneId, runnerId, deps.github);
    if (gh.kind === "runner") runnerId = gh.runner.id;
    const verdict = judgeIdle(host, gh);
    const settled = settle.observe(verdict, now);
    if (settled) return { kind: "idle", elapsedMs: now - req.startedAtMs, runnerId };
    const waitingFor: WaitReason = verdict.idle ? "settle-window" : verdict.reason;
    if (!verdict.idle) last = { reason: verdict.reason, detail: verdict.detail };
    else last = { reason: "settle-window", detail: `idle for ${settle.idleForMs(now)} ms of ${req.settleMs} ms` };
    deps.onProgress?.({
      type: "drain-wait",
      laneId: req.laneId,
      hostId: req.hostId,
      elapsedMs: now - req.startedAtMs,
      remainingMs: Math.max(0, req.deadlineAtMs - now),
      waitingFor,
      waitingForText: describeWait(waitingFor),
      idleForMs: settle.idleForMs(now),
    });
    if (now >= req.deadlineAtMs) return { kind: "deadline", elapsedMs: now - req.startedAtMs, ...last };
    await deps.sleep(Math.min(req.pollMs, Math.max(1, req.deadlineAtMs - now)));
  }
}

async function hostAnswer(req: DrainWaitRequest, deps: DrainWaitDeps, now: number): Promise<HostAnswer> {
  const s = await deps.inventory.latest(req.hostId);
  if (s === undefined || s.snapshot.takenAtMs < req.sinceTakenAtMs || now - s.receivedAtMs > deps.inventoryMaxAgeMs) return { kind: "stale" };
  return { kind: "snapshot", lane: s.snapshot.lanes.find((l) => l.laneId === req.laneId), takenAtMs: s.snapshot.takenAtMs };
}

/** GitHub's answer about the lane's registration: by id when known, else by its `lk-lane-` label. */
export async function githubAnswer(
  scope: string,
  laneId: string,
  runnerId: number | undefined,
  github: Pick<GitHubClient, "getRunner" | "listRunners">,
): Promise<GitHubAnswer> {
  try {
    if (runnerId !== undefined) {
      const r = await github.getRunner(scope, runnerId);
      return r === undefined ? { kind: "not-found" } : { kind: "runner", runner: r };
    }
    const list = await github.listRunners(scope);
    const r = list.runners.find((x) => x.labels.some((l) => l.name === `${LANE_LABEL_PREFIX}${laneId}`));
    if (r !== undefined) return { kind: "runner", runner: r };
    return list.complete ? { kind: "not-found" } : { kind: "error", code: "GITHUB_LIST_INCOMPLETE" };
  } catch (err) {
    return { kind: "error", code: err instanceof LanekeeperError ? err.code : "GITHUB_API" };
  }
}
