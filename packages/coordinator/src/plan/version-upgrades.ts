import { LaneState, resolvePoolUpgrade, type PoolPolicy } from "@lanekeeper/shared";
import type { LaneView } from "../observe/classify.js";
import type { LaneRunner, UpgradeAction } from "./action.js";
import { laneEvidence } from "./evidence-of.js";
import type { Evidence } from "./evidence.js";
import type { Guard } from "./guard.js";
import { allowsGuard, hostGuards } from "./lane-guards.js";
import { cmp, type GroupLane, type PlanContext } from "./plan-context.js";
import type { VersionDrift } from "./plan-types.js";
import { minorLag, wantedString, type WantedRunner } from "./runner-version.js";
import { isIdle } from "./group-scaling.js";
import { STEPS, UPGRADE_EPHEMERAL_STEPS } from "./steps.js";
import { upgradeWindowEvidence, waitingForWindow, type UpgradeWindowEvidence } from "./upgrade-window.js";

/** Record attention codes an upgrade leaves: while a lane of a group carries one, the group's rollout stops. */
export const UPGRADE_ATTENTION_CODES: ReadonlySet<string> = new Set(["UPGRADE_ROLLED_BACK", "UPGRADE_ROLLBACK_FAILED"]);

/**
 * The upgrade pass (docs/runner-versions.md), after the group pass and before the lane repairs: in every group
 * (scope, pool), lanes whose host reports a runner version (systemd) or image (container) other than the pool's
 * wanted one are upgraded, at most `upgrade.maxUnavailable` lanes of the group out of service at once, lanes
 * already out of service (not active, draining, stopped, offline, held, or targeted by another action of this
 * plan) counted against it. Idle lanes go first; a busy lane is drained and waits for its job: the agent is never
 * asked to swap a lane with a job (a guard, and the agent's own check at that instant). Ephemeral lanes are
 * upgraded only while they wait unarmed between jobs, and are armed on the new version by the next plan.
 * A lane left needs-attention by a failed upgrade stops the group's rollout until an operator releases it.
 * Outside the pool's `upgrade.window` no upgrade starts; the drifted lanes are shown waiting for it.
 */
export function upgradePass(ctx: PlanContext, byGroup: ReadonlyMap<string, readonly GroupLane[]>): VersionDrift[] {
  versionLagWarnings(ctx);
  const drift: VersionDrift[] = [];
  for (const key of [...byGroup.keys()].sort(cmp)) {
    const lanes = byGroup.get(key) ?? [];
    const [scope = "", poolName = ""] = key.split("\u0000");
    const pool = ctx.pool(poolName);
    const wanted = ctx.wanted(poolName);
    if (pool === undefined || wanted === undefined) continue;
    if (wanted.kind === "unresolved") {
      if (lanes.length > 0) ctx.canCreate(poolName); // the same warning as for creates
      continue;
    }
    drift.push(...upgradeGroup(ctx, scope, poolName, pool, wanted, lanes));
  }
  return drift;
}

function upgradeGroup(ctx: PlanContext, scope: string, poolName: string, pool: PoolPolicy, wanted: Exclude<WantedRunner, { kind: "unresolved" }>, lanes: readonly GroupLane[]): VersionDrift[] {
  const want = wantedString(wanted);
  const what = wanted.kind === "image" ? "image" : "runner";
  const { maxUnavailable, window } = resolvePoolUpgrade(pool);
  // The window gates starts only: a lane whose upgrade is under way is another action's (busy-elsewhere) and ends.
  const win = window === undefined ? undefined : upgradeWindowEvidence(poolName, window, ctx.now);
  const counted = lanes.filter((gl) => gl.view.class !== "orphaned");
  const unavailable = counted.filter((gl) => !available(ctx, gl, pool)).length;
  const halted = counted.find((gl) => gl.record.state === "needs-attention" && UPGRADE_ATTENTION_CODES.has(gl.record.attention?.code ?? ""));
  const drifting = counted
    .map((gl) => ({ gl, have: runs(gl.view, what) }))
    .filter((d): d is { gl: GroupLane; have: string } => d.have !== undefined && d.have !== want);
  if (drifting.length === 0) return [];
  if (halted !== undefined) {
    ctx.warn(
      "UPGRADE_HALTED",
      `the upgrade of ${scope}/${poolName} to ${want} is halted: lane ${halted.view.laneId} failed its upgrade (${halted.record.attention?.code}). ` +
        `Read its note (\`lanekeeper lanes show ${halted.view.laneId}\`), fix the cause, then \`lanekeeper lanes release ${halted.view.laneId}\` resumes the rollout`,
      { scope, pool: poolName, laneId: halted.view.laneId },
    );
  }
  let budget = halted === undefined ? maxUnavailable - unavailable : 0;
  // Idle lanes first (no wait), then busy ones (drained, they finish their job first); lane id breaks ties.
  const order = [...drifting].sort((a, b) => Number(isIdle(b.gl.view)) - Number(isIdle(a.gl.view)) || cmp(a.gl.view.laneId, b.gl.view.laneId));
  const out: VersionDrift[] = [];
  let waiting = 0;
  let waitingWindow = 0;
  for (const { gl, have } of order) {
    const v = gl.view;
    const base = { laneId: v.laneId, scope, pool: poolName, hostId: v.hostId, what, have, want } as const;
    if (halted !== undefined) {
      out.push({ ...base, status: "halted" });
      continue;
    }
    if (ctx.targeted.has(v.laneId) || !available(ctx, gl, pool)) {
      out.push({ ...base, status: "busy-elsewhere" });
      continue;
    }
    if (win !== undefined && !win.open) {
      out.push({ ...base, status: "window", note: waitingForWindow(win), evidence: [win] });
      waitingWindow++;
      continue;
    }
    if (pool.mode === "ephemeral" && v.hostLane?.state !== LaneState.LANE_STATE_IDLE_UNARMED) {
      // Picked up between two jobs: no drain, no wait.
      out.push({ ...base, status: "waiting" });
      continue;
    }
    if (budget <= 0) {
      out.push({ ...base, status: "waiting" });
      waiting++;
      continue;
    }
    if (!ctx.permits(v, ["drain", "upgrade", "undrain"])) {
      out.push({ ...base, status: "not-allowed" });
      continue;
    }
    const labels = ctx.canonical(v, pool);
    if (labels === undefined) continue;
    pushUpgrade(ctx, v, pool, wanted, labels, { runnerVersion: what === "runner" ? have : "", image: what === "image" ? have : "" }, win);
    out.push({ ...base, status: "upgrade" });
    budget--;
  }
  if (waitingWindow > 0 && win !== undefined) {
    ctx.warn(
      "UPGRADE_WINDOW_CLOSED",
      `${waitingWindow} lane(s) of ${scope}/${poolName} wait for their upgrade to ${want}: ${waitingForWindow(win)} (pools.${poolName}.upgrade.window)`,
      { scope, pool: poolName },
    );
  }
  if (waiting > 0) {
    ctx.warn(
      "UPGRADE_WAITING",
      `${waiting} lane(s) of ${scope}/${poolName} wait for their upgrade to ${want} (at most ${maxUnavailable} out of service at once; ${unavailable} already are)`,
      { scope, pool: poolName },
    );
  }
  return out;
}

/** What the host reports the lane runs; undefined when unknown (no fresh inventory, or an agent that does not say). */
function runs(v: LaneView, what: "runner" | "image"): string | undefined {
  const hl = v.hostLane;
  if (!v.hostKnown || hl === undefined) return undefined;
  const s = what === "runner" ? hl.runnerVersion : hl.image;
  return s === "" ? undefined : s;
}

/** In service: active, managed, not held or draining, running (or, ephemeral, unarmed), online on GitHub when persistent. */
function available(ctx: PlanContext, gl: GroupLane, pool: PoolPolicy): boolean {
  const { view: v, record: r } = gl;
  const hl = v.hostLane;
  if (r.state !== "active" || v.class !== "managed" || hl === undefined || hl.held || hl.draining) return false;
  if (ctx.targeted.has(v.laneId) && !ctx.actionIds.has(`arm:${v.laneId}`)) return false;
  if (pool.mode === "ephemeral") return hl.state === LaneState.LANE_STATE_RUNNING || hl.state === LaneState.LANE_STATE_IDLE_UNARMED;
  return hl.state === LaneState.LANE_STATE_RUNNING && v.registration?.status === "online";
}

function pushUpgrade(
  ctx: PlanContext,
  v: LaneView,
  pool: PoolPolicy,
  wanted: Exclude<WantedRunner, { kind: "unresolved" }>,
  labels: string[],
  from: LaneRunner,
  win: UpgradeWindowEvidence | undefined,
): void {
  const id = `upgrade:${v.laneId}`;
  if (ctx.actionIds.has(id)) return;
  const to: LaneRunner = wanted.kind === "image" ? { runnerVersion: "", image: wanted.image } : { runnerVersion: wanted.version, image: "" };
  const guards: Guard[] = [
    { kind: "record-revision", laneId: v.laneId, revision: v.record?.revision ?? null },
    ...hostGuards(ctx.policy, v, "upgrade"),
    allowsGuard(ctx.policy, v, "drain"),
    allowsGuard(ctx.policy, v, "undrain"),
    // The agent checks again at the instant it swaps; this one sends the engine back to waiting instead.
    { kind: "no-job-evidence", hostId: v.hostId, laneId: v.laneId, at: "send-upgrade" },
    // Checked before the first step only: a saved plan applied after the window closed starts nothing, and an
    // upgrade that started inside the window runs to its end (stopping between drain and swap helps no one).
    ...(win === undefined ? [] : [{ kind: "upgrade-window-open", pool: v.pool, window: win.name } as const]),
  ];
  const path = wanted.kind === "image" ? `pools.${v.pool}.image` : `pools.${v.pool}.runnerVersion`;
  const evidence: Evidence[] = [
    ...laneEvidence(v),
    { source: "policy", path, value: wanted.kind === "runner" && wanted.source === "latest" ? `latest = ${wanted.version}` : wantedString(wanted) },
    ...(win === undefined ? [] : [win]),
  ];
  const what = wanted.kind === "image" ? `image ${from.image} → ${to.image}` : `runner ${from.runnerVersion} → ${to.runnerVersion}`;
  const action: UpgradeAction = {
    id,
    kind: "upgrade",
    laneId: v.laneId,
    scope: v.scope,
    pool: v.pool,
    hostId: v.hostId,
    reason: { code: wanted.kind === "image" ? "IMAGE_DRIFT" : "VERSION_DRIFT", message: `${what} (pool ${v.pool})` },
    guards,
    evidence,
    steps: pool.mode === "ephemeral" ? UPGRADE_EPHEMERAL_STEPS : STEPS.upgrade,
    dependsOn: [],
    runnerId: v.registration?.id,
    labels,
    from,
    to,
  };
  ctx.actionIds.add(id);
  ctx.actions.push(action);
  ctx.targeted.add(v.laneId);
}

/** A pinned runner version more minor releases behind GitHub's current one than `upgrade.maxVersionLag` allows. */
function versionLagWarnings(ctx: PlanContext): void {
  const rel = ctx.observed.runnerReleases;
  if (rel?.status !== "ok") return;
  for (const [name, p] of Object.entries(ctx.policy.pools).sort(([a], [b]) => cmp(a, b))) {
    const w = ctx.wanted(name);
    if (w?.kind !== "runner" || w.source !== "pinned") continue;
    const lag = minorLag(w.version, rel.latest);
    const { maxVersionLag } = resolvePoolUpgrade(p);
    if (lag > maxVersionLag) {
      ctx.warn(
        "RUNNER_VERSION_LAG",
        `pool ${name} pins runner ${w.version}, ${Number.isFinite(lag) ? `${lag} minor releases` : "a major release"} behind GitHub's current ${rel.latest} ` +
          `(upgrade.maxVersionLag ${maxVersionLag}): GitHub stops sending jobs to runners that fall too far behind. ` +
          `Set pools.${name}.runnerVersion to ${rel.latest} (or latest)`,
        { pool: name },
      );
    }
  }
}
