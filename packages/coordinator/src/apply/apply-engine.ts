import { randomBytes } from "node:crypto";
import pLimit from "p-limit";
import { KeyedMutex } from "@lanekeeper/shared";
import type { Action, PlanStep } from "../plan/action.js";
import { describeGuard } from "../plan/guard.js";
import { actionOutcome, ActionEndings, cut, errCode, errMessage } from "./action-outcome.js";
import { newActionState, type ActionState } from "./action-state.js";
import { ActionSteps } from "./action-steps.js";
import { StepFailure } from "./apply-errors.js";
import type { ActionOutcome, ApplyReport } from "./apply-events.js";
import { resolveApplyOptions, type ApplyEngineOptions, type ApplyRunOptions, type ResolvedApplyOptions, type RunnablePlan } from "./apply-options.js";
import { checkGuards } from "./guard-check.js";

export type { ApplyEngineOptions, ApplyRunOptions, DrainTiming, IntentSender, OperatorRequest, RunnablePlan } from "./apply-options.js";

/** New operation ids: 16 random bytes, hex (fits the intent's 128-character `operation_id`). */
export function newOperationId(): string {
  return `op-${randomBytes(8).toString("hex")}`;
}

/**
 * The apply engine (DESIGN.md section 7): runs a plan's actions side by side (at most `concurrency` at once), each
 * step by step as listed in the action's `steps` ({@link ActionSteps}), re-checking the action's guards against fresh observations before the first step
 * and before the step each guard names. Every action writes `planned` (all of them, up front), `started` and a
 * terminal audit record (`succeeded`, `failed`, or `rejected` when a guard no longer held before anything was
 * done). A failed step leaves the lane in a safe state (untouched, drained, or stopped) with a recovery note on
 * the lane record and in the audit ({@link ActionEndings}); steps are idempotent, so re-running `apply` converges.
 *
 * The drain protocol runs inside: `set-draining-labels` (custom labels := identity labels + `lk-draining`),
 * `send-drain` (the agent stops re-arming ephemeral lanes), `wait-idle` (`waitUntilIdle`: agent reports no
 * `Runner.Worker` AND GitHub not busy, across the settle window), then the stop-type intent, which the agent
 * refuses with `JOB_RUNNING` if a job started in the meantime: the engine then goes back to waiting. The
 * deadline turns into `needs-attention`, never into a kill, unless an operator passed `--force`.
 */
export class ApplyEngine {
  private readonly o: ResolvedApplyOptions;
  private readonly steps: ActionSteps;
  private readonly endings: ActionEndings;

  constructor(options: ApplyEngineOptions) {
    this.o = resolveApplyOptions(options);
    this.steps = new ActionSteps(this.o);
    this.endings = new ActionEndings({
      audit: this.o.audit,
      store: this.o.store,
      clock: this.o.clock,
      ...(this.o.log === undefined ? {} : { log: this.o.log }),
      observe: (a) => this.steps.observeLane(a.scope, a.laneId, a.hostId),
    });
  }

  /** Run a plan (or, with `dryRun`, record it). */
  async run(plan: RunnablePlan, opts: ApplyRunOptions = {}): Promise<ApplyReport> {
    if (opts.dryRun === true) return this.dryRun(plan);
    const ops = new Map(plan.actions.map((a) => [a.id, newOperationId()]));
    for (const a of plan.actions) {
      await this.o.audit.append({
        action: a.kind,
        phase: "planned",
        operationId: ops.get(a.id) ?? "",
        laneId: a.laneId,
        hostId: a.hostId,
        message: cut(a.reason.message),
        details: {
          planId: plan.planId,
          reasonCode: a.reason.code,
          scope: a.scope,
          pool: a.pool,
          steps: [...a.steps],
          guards: a.guards.map(describeGuard),
          ...(opts.operator === undefined ? {} : { operator: opts.operator.op, force: opts.operator.force }),
        },
      });
    }
    // Actions run side by side, at most `concurrency` at once: the dispatcher keeps each host's intents in
    // sequence order and the audit chain serializes its appends. Actions on one lane run in plan order. An action
    // waits for those it depends on (only earlier ones count; a later or unknown one is a failed dependency).
    const slot = pLimit(this.o.concurrency);
    const byId = new Map<string, Promise<ActionOutcome>>();
    const lanes = new KeyedMutex();
    const runs = plan.actions.map((a) => {
      const deps = a.dependsOn.map((d) => ({ id: d, outcome: byId.get(d) }));
      const run = async (): Promise<ActionOutcome> => {
        const operationId = ops.get(a.id) ?? newOperationId();
        for (const d of deps) {
          if ((await d.outcome?.catch(() => undefined))?.status !== "succeeded") {
            return this.endings.skipped(a, operationId, "dependency", "DEPENDENCY_FAILED", `depends on ${d.id}, which did not succeed`);
          }
        }
        return slot(() => this.execute(a, operationId, plan.planId, opts));
      };
      const done = lanes.run(a.laneId, run).then((outcome) => {
        opts.onEvent?.({ type: "action-end", outcome });
        return outcome;
      });
      byId.set(a.id, done);
      return done;
    });
    // Every action ends before the run returns, even when one of them threw (a store or audit failure).
    const settled = await Promise.allSettled(runs);
    const thrown = settled.find((r) => r.status === "rejected");
    if (thrown !== undefined) throw thrown.reason;
    const outcomes = settled.map((r) => (r as PromiseFulfilledResult<ActionOutcome>).value);
    return { planId: plan.planId, dryRun: false, outcomes, ok: outcomes.every((x) => x.status === "succeeded") };
  }

  private async dryRun(plan: RunnablePlan): Promise<ApplyReport> {
    await this.o.audit.append({
      action: "apply",
      phase: "dry-run",
      message: `plan ${plan.planId}: ${plan.actions.length} action(s), nothing changed`,
      details: { planId: plan.planId, ...(plan.counts === undefined ? {} : { counts: { ...plan.counts } }) },
    });
    const outcomes: ActionOutcome[] = [];
    for (const a of plan.actions) {
      await this.o.audit.append({
        action: a.kind,
        phase: "dry-run",
        laneId: a.laneId,
        hostId: a.hostId,
        message: cut(a.reason.message),
        details: { planId: plan.planId, reasonCode: a.reason.code, scope: a.scope, pool: a.pool, steps: [...a.steps], guards: a.guards.map(describeGuard) },
      });
      outcomes.push(actionOutcome(a, { operationId: "", status: "dry-run" }));
    }
    return { planId: plan.planId, dryRun: true, outcomes, ok: true };
  }

  /** Execute one action; never throws for a failed step (failures become outcomes). */
  private async execute(a: Action, operationId: string, planId: string, opts: ApplyRunOptions): Promise<ActionOutcome> {
    opts.onEvent?.({ type: "action-start", actionId: a.id, kind: a.kind, laneId: a.laneId, hostId: a.hostId });
    const first = a.guards.filter((g) => g.at === undefined);
    const verdict = await checkGuards(first, this.steps.view(), this.o.policy, { scope: a.scope });
    if (!verdict.ok) return this.endings.skipped(a, operationId, "guards", "GUARD_FAILED", verdict.why);

    const st = newActionState(a, operationId, this.o.clock.now());
    // Held from before the first step until the action ends: a crash leaves the lease to age out, and any
    // coordinator then resumes or rolls back what the record says was in flight (plan/interrupted-actions.ts).
    await this.o.leases?.hold(operationId, { laneId: a.laneId, kind: a.kind });
    const forcedBy = opts.operator?.force === true ? opts.operator.forcedBy : undefined;
    await this.o.audit.append({
      action: a.kind,
      phase: "started",
      operationId,
      laneId: a.laneId,
      hostId: a.hostId,
      details: { planId, ...(forcedBy === undefined ? {} : { forceAllowedBy: forcedBy }) },
    });
    let failedStep: PlanStep | undefined;
    try {
      const rec = await this.o.store.get(a.laneId);
      st.record = rec;
      st.recordBefore = rec;
      if (st.runnerId === undefined && rec?.runnerId !== undefined) st.runnerId = rec.runnerId;
      const steps = a.steps;
      for (let i = 0; i < steps.length; i++) {
        const step = steps[i] as PlanStep;
        failedStep = step;
        const at = a.guards.filter((g) => g.at === step);
        if (at.length > 0) {
          const v = await checkGuards(at, this.steps.view(), this.o.policy, { scope: a.scope });
          if (!v.ok) {
            const back = this.backToWait(st, v.guard.kind);
            if (back !== undefined) {
              i = back - 1;
              continue;
            }
            throw new StepFailure("GUARD_FAILED", v.why);
          }
        }
        opts.onEvent?.({ type: "step", actionId: a.id, laneId: a.laneId, step });
        const next = await this.steps.run(st, step, opts);
        if (next === "back-to-wait") {
          const back = this.backToWait(st, "JOB_RUNNING");
          if (back === undefined) throw new StepFailure("JOB_RUNNING", `a job is running in ${a.laneId}; the host refused to stop it`);
          i = back - 1;
          continue;
        }
        st.stepsDone.push(step);
        if (a.kind === "upgrade") await this.steps.upgrades.audit(st, step, "succeeded", `${step} done`);
      }
      failedStep = undefined;
      await this.steps.afterSuccess(st, opts);
      return await this.endings.succeeded(st, opts);
    } catch (err) {
      if (a.kind === "upgrade") return await this.upgradeFailed(st, failedStep ?? "write-record", err, opts);
      return await this.endings.failed(st, failedStep ?? "write-record", err, opts);
    } finally {
      st.secret?.fill(0);
      st.removeToken?.fill(0);
      await this.o.leases?.release(operationId).catch(() => undefined);
    }
  }

  /**
   * An upgrade failed at `step`. Once the upgrade intent went out, the lane is rolled back to its old version and
   * returned to service, and its record marked needs-attention (`UPGRADE_ROLLED_BACK`, or `UPGRADE_ROLLBACK_FAILED`
   * with the lane left drained), which halts the group's rollout; before that, it ends like any drain (still drained
   * with a note, or untouched).
   */
  private async upgradeFailed(st: ActionState, step: PlanStep, err: unknown, opts: ApplyRunOptions): Promise<ActionOutcome> {
    await this.steps.upgrades.audit(st, step, "failed", errMessage(err), errCode(err));
    if (!st.upgradeSent) return this.endings.failed(st, step, err, opts);
    const rb = await this.steps.upgrades.rollback(st, opts);
    return this.endings.failed(st, step, err, opts, { upgrade: rb });
  }

  /**
   * A job started after the lane looked idle (the agent refused with `JOB_RUNNING`, or a job-evidence guard
   * failed): go back to the wait, unless the action has none or the operator forced it past the deadline.
   */
  private backToWait(st: ActionState, why: string): number | undefined {
    if (why !== "JOB_RUNNING" && why !== "no-job-evidence" && why !== "runner-not-busy") return undefined;
    if (st.forced) return undefined;
    const idx = st.action.steps.indexOf("wait-idle");
    if (idx < 0 || st.drainSince === undefined) return undefined;
    this.o.log?.info({ laneId: st.action.laneId, why }, "job started while stopping: back to waiting");
    return idx;
  }
}
