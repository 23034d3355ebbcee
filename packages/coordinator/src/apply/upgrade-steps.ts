import { carriesLaneIdentity, LaneState, laneStateToJSON, type LaneObservation, type RunnerDownload } from "@lanekeeper/shared";
import type { DispatchAction } from "../dispatch/intent-builder.js";
import { jobRunning, type AnsweredOutcome } from "../dispatch/intent-outcome.js";
import type { GitHubRunner } from "../github/github-types.js";
import type { LaneRunner, UpgradeAction } from "../plan/action.js";
import { errCode, errMessage } from "./action-outcome.js";
import type { ActionState } from "./action-state.js";
import { StepFailure } from "./apply-errors.js";
import type { ApplyRunOptions, ResolvedApplyOptions } from "./apply-options.js";
import { FreshView } from "./fresh-view.js";
import { describeRunner, type RollbackResult } from "./upgrade-recovery-note.js";

/** What the upgrade steps borrow from `ActionSteps`: sending an intent, the lane's registration, its labels. */
export interface UpgradeStepDeps {
  send(st: ActionState, action: DispatchAction, opts: ApplyRunOptions): Promise<AnsweredOutcome>;
  expectOk(out: AnsweredOutcome, what: "upgrade"): void;
  currentRegistration(st: ActionState): Promise<GitHubRunner | undefined>;
  /** Restore the canonical labels and lift the agent's drain mark (the `restore-labels` step). */
  restoreLabels(st: ActionState, opts: ApplyRunOptions): Promise<void>;
}

/**
 * The steps only an upgrade has (`send-upgrade`, `verify-upgraded`), its rollback, and its per-step audit
 * records (action `upgrade-step`, one `succeeded` or `failed` record per step, under the action's operation id),
 * so the audit shows where a rollout stood lane by lane.
 */
export class UpgradeSteps {
  constructor(
    private readonly o: ResolvedApplyOptions,
    private readonly d: UpgradeStepDeps,
  ) {}

  /** `send-upgrade` to `target`; `back-to-wait` when the agent refused because a job started. */
  async sendUpgrade(st: ActionState, target: LaneRunner, opts: ApplyRunOptions): Promise<"ok" | "back-to-wait"> {
    const a = st.action as UpgradeAction;
    const runnerDownload = target.runnerVersion === "" ? undefined : await this.downloadFor(st, target.runnerVersion);
    st.upgradeSent = true;
    const out = await this.d.send(
      st,
      { kind: "upgrade", laneId: a.laneId, runnerVersion: target.runnerVersion, image: target.image, ...(runnerDownload === undefined ? {} : { runnerDownload }) },
      opts,
    );
    // Refused at intake (a job, the allowlist, a hold): the host did not touch the lane, nothing to roll back.
    if (out.kind === "refused") st.upgradeSent = false;
    if (jobRunning(out)) return "back-to-wait";
    this.d.expectOk(out, "upgrade");
    st.upgradedSince = out.result.finishedAtMs;
    return "ok";
  }

  /**
   * `verify-upgraded`: the host's inventory, taken after the upgrade's result, reports the lane on `target`
   * (version or image) and running (an ephemeral lane: unarmed or running); and, for a persistent lane, GitHub shows
   * its registration online with its identity labels and, when GitHub reports a `version`, that version. A lane the
   * host marks needs-attention (the new version does not start) fails at once; otherwise the verify timeout.
   */
  async verifyUpgraded(st: ActionState, target: LaneRunner): Promise<void> {
    const a = st.action as UpgradeAction;
    const until = this.o.clock.now() + this.o.verifyTimeoutMs;
    const persistent = !a.steps.includes("send-undrain");
    let last = "not observed";
    for (;;) {
      const lane = await this.hostLane(st);
      if (lane === undefined) last = "no host inventory newer than the upgrade";
      else if (lane === "absent") last = "the host does not report the lane";
      else if (!runsTarget(lane, target)) last = `the host reports ${describeRunner({ runnerVersion: lane.runnerVersion, image: lane.image })}`;
      else if (lane.state === LaneState.LANE_STATE_NEEDS_ATTENTION) {
        throw new StepFailure("UPGRADE_NOT_STARTING", `${describeRunner(target)} does not start on ${a.hostId}: ${lane.attentionReason || "needs attention"}`);
      } else if (!(lane.state === LaneState.LANE_STATE_RUNNING || (!persistent && lane.state === LaneState.LANE_STATE_IDLE_UNARMED))) {
        last = `the host reports the lane ${laneStateToJSON(lane.state)}`;
      } else if (!persistent) return;
      else {
        try {
          const r = await this.d.currentRegistration(st);
          if (r === undefined) last = "no registration";
          else if (r.status !== "online") last = `runner ${r.id} is ${r.status}`;
          else if (!carriesLaneIdentity(r.labels.map((l) => l.name), { laneId: a.laneId, hostId: a.hostId, pool: a.pool })) last = `runner ${r.id} lacks identity labels`;
          else if (target.runnerVersion !== "" && r.version !== undefined && r.version !== target.runnerVersion) last = `GitHub reports runner ${r.id} at ${r.version}`;
          else return;
        } catch (err) {
          last = `GitHub: ${errCode(err)}`;
        }
      }
      if (this.o.clock.now() >= until) throw new StepFailure("UPGRADE_VERIFY_TIMEOUT", `${a.laneId} not back on ${describeRunner(target)} (${last})`);
      await this.o.sleep(this.o.verifyPollMs);
    }
  }

  /**
   * Put a lane whose upgrade failed after the intent went out back on its old version (an upgrade intent naming
   * `from`), verify it, and return it to service. Never throws: the result says how far it got.
   */
  async rollback(st: ActionState, opts: ApplyRunOptions): Promise<RollbackResult> {
    const a = st.action as UpgradeAction;
    let step: "send-upgrade" | "verify-upgraded" | "restore-labels" = "send-upgrade";
    try {
      // A job cannot have started: the lane is drained. A refusal for one is a failure of the rollback like any other.
      const sent = await this.sendUpgrade(st, a.from, opts);
      if (sent === "back-to-wait") throw new StepFailure("JOB_RUNNING", "the host reports a job in the drained lane");
      step = "verify-upgraded";
      await this.verifyUpgraded(st, a.from);
      step = "restore-labels";
      await this.d.restoreLabels(st, opts);
      await this.audit(st, "rollback", "succeeded", `back on ${describeRunner(a.from)}`);
      return { ok: true, restored: true };
    } catch (err) {
      await this.audit(st, `rollback:${step}`, "failed", errMessage(err), errCode(err));
      return { ok: false, step, code: errCode(err), message: errMessage(err) };
    }
  }

  /** One `upgrade-step` audit record. */
  async audit(st: ActionState, step: string, phase: "succeeded" | "failed", message: string, reasonCode?: string): Promise<void> {
    const a = st.action as UpgradeAction;
    await this.o.audit.append({
      action: "upgrade-step",
      phase,
      operationId: st.operationId,
      laneId: a.laneId,
      hostId: a.hostId,
      ...(reasonCode === undefined ? {} : { reasonCode }),
      message,
      details: { step, from: { ...a.from }, to: { ...a.to }, ...(st.intentIds.length > 0 ? { intentId: st.intentIds.at(-1) } : {}) },
    });
  }

  /**
   * Where the host fetches `version`: GitHub's archive for the host's architecture when it is the release the
   * downloads endpoint lists now (with its SHA-256, which the agent verifies before unpacking). An older version
   * (a pin below GitHub's current release, or a rollback) has no checksum from GitHub: the intent names none, and
   * the agent uses the copy it verified when it last ran that version, or one an operator staged.
   */
  private async downloadFor(st: ActionState, version: string): Promise<RunnerDownload | undefined> {
    const host = await this.o.inventory.latest(st.action.hostId);
    const arch = host?.snapshot.capabilities?.arch === "arm64" ? "arm64" : "x64";
    const apps = await this.o.github.listRunnerDownloads(st.action.scope);
    const app = apps.find((x) => x.os === "linux" && x.architecture === arch && x.filename.endsWith(`-${version}.tar.gz`));
    if (app?.sha256 === undefined) return undefined;
    return { url: app.downloadUrl, sha256: app.sha256, sizeBytes: 0 };
  }

  /** The lane in the host's newest fresh snapshot taken after the upgrade result; undefined when there is none yet. */
  private async hostLane(st: ActionState): Promise<LaneObservation | "absent" | undefined> {
    const view = new FreshView({ github: this.o.github, store: this.o.store, inventory: this.o.inventory, clock: this.o.clock, inventoryMaxAgeMs: this.o.inventoryMaxAgeMs });
    const snap = await view.host(st.action.hostId);
    if (snap === undefined || (st.upgradedSince !== undefined && snap.snapshot.takenAtMs < st.upgradedSince)) return undefined;
    return snap.snapshot.lanes.find((l) => l.laneId === st.action.laneId) ?? "absent";
  }
}

function runsTarget(lane: LaneObservation, target: LaneRunner): boolean {
  return target.runnerVersion !== "" ? lane.runnerVersion === target.runnerVersion : lane.image === target.image;
}
