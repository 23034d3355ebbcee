import { randomBytes } from "node:crypto";
import pLimit from "p-limit";
import {
  carriesLaneIdentity,
  drainingLabels,
  identityLabels,
  LANE_LABEL_PREFIX,
  LaneMode,
  LanekeeperError,
  parseDrainingLabels,
  parseScope,
  RejectReason,
  ResultStatus,
  systemClock,
  type ActionKind as IntentActionKind,
  type Clock,
  type LaneObservation,
  type Logger,
  type Policy,
} from "@lanekeeper/shared";
import { DispatchError, isRemoveDone, type DispatchOutcome, type DispatchRequest } from "../dispatch/dispatcher.js";
import type { DispatchAction } from "../dispatch/intent-builder.js";
import { waitUntilIdle } from "../drain/drain-protocol.js";
import { GitHubNotFoundError } from "../github/github-errors.js";
import type { GitHubClient } from "../github/github-client.js";
import type { GitHubRunner } from "../github/github-types.js";
import { recordWithout, type LaneRecord, type StoredLaneRecord } from "../observe/lane-record.js";
import type { LaneStore } from "../observe/lane-store.js";
import type { Action, PlanActionKind, PlanStep } from "../plan/action.js";
import { describeGuard } from "../plan/guard.js";
import type { AuditTrail } from "../audit/coordinator-audit.js";
import type { ActionOutcome, ActionStatus, ApplyEvent, ApplyReport } from "./apply-events.js";
import { agentReasonCode, StepFailure } from "./apply-errors.js";
import { FreshView, isReadFailure } from "./fresh-view.js";
import { checkGuards } from "./guard-check.js";
import type { InventorySource } from "./inventory-source.js";
import {
  DEFAULT_APPLY_INVENTORY_MAX_AGE_MS,
  DEFAULT_DRAIN_DEADLINE_MS,
  DEFAULT_DRAIN_POLL_MS,
  DEFAULT_DRAIN_SETTLE_MS,
  DEFAULT_VERIFY_POLL_MS,
  MAX_OUTCOME_MESSAGE_CHARS,
} from "./limits.js";
import { recoveryNote, type SafeState } from "./recovery-note.js";

/** What the engine needs of the dispatcher. */
export interface IntentSender {
  dispatch(req: DispatchRequest): Promise<DispatchOutcome>;
}

/** Drain protocol timing (policy `coordinator.drain`). */
export interface DrainTiming {
  /** @default policy, else DEFAULT_DRAIN_SETTLE_MS */
  readonly settleMs?: number;
  /** @default policy, else DEFAULT_DRAIN_DEADLINE_MS */
  readonly deadlineMs?: number;
  /** @default policy, else DEFAULT_DRAIN_POLL_MS */
  readonly pollMs?: number;
}

/** Options of {@link ApplyEngine}. */
export interface ApplyEngineOptions {
  readonly policy: Policy;
  readonly github: GitHubClient;
  readonly store: LaneStore;
  readonly dispatcher: IntentSender;
  readonly inventory: InventorySource;
  readonly audit: AuditTrail;
  /** @default systemClock */
  readonly clock?: Clock;
  readonly log?: Logger;
  /** @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly drain?: DrainTiming;
  /** @default policy.coordinator.verifyTimeoutMs */
  readonly verifyTimeoutMs?: number;
  /** @default DEFAULT_VERIFY_POLL_MS */
  readonly verifyPollMs?: number;
  /** @default DEFAULT_APPLY_INVENTORY_MAX_AGE_MS */
  readonly inventoryMaxAgeMs?: number;
  /** Actions carried out at the same time. @default policy.coordinator.applyConcurrency */
  readonly concurrency?: number;
}

/** An operator command (`lanekeeper lanes <op>`) running through the engine. */
export interface OperatorRequest {
  readonly op: "drain" | "restart" | "remove";
  /** After the deadline, stop the lane even though a job runs (the intent carries `forced_by`). */
  readonly force: boolean;
  /** Who forced it (audited). */
  readonly forcedBy: string;
  /** Overrides the policy's drain deadline. With `force` and no deadline, nothing is waited for. */
  readonly deadlineMs?: number;
}

/** Options of one run. */
export interface ApplyRunOptions {
  /** Change nothing: write one `dry-run` audit record per action and return. */
  readonly dryRun?: boolean;
  readonly onEvent?: (e: ApplyEvent) => void;
  readonly operator?: OperatorRequest;
}

/** What the engine runs: a plan, or a few operator actions (`counts` only goes into dry-run records). */
export interface RunnablePlan {
  readonly planId: string;
  readonly actions: readonly Action[];
  readonly counts?: Readonly<Partial<Record<PlanActionKind, number>>>;
}

/** Per-action execution state. */
interface ActionState {
  readonly action: Action;
  readonly operationId: string;
  readonly startedAtMs: number;
  record: StoredLaneRecord | undefined;
  runnerId: number | undefined;
  /** Registration token / JIT config / remove token in the clear, wiped after use. */
  secret: Buffer | undefined;
  removeToken: Buffer | undefined;
  /** Agent clock: the drain result's `finishedAtMs`; host snapshots before it do not count. */
  drainSince: number | undefined;
  drainStartedAtMs: number | undefined;
  drainDeadlineAtMs: number | undefined;
  removedSince: number | undefined;
  observed: LaneObservation | undefined;
  labelsDrained: boolean;
  agentDrained: boolean;
  stopped: boolean;
  maybeCreated: boolean;
  forced: boolean;
  readonly intentIds: string[];
  readonly stepsDone: PlanStep[];
}

const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function cut(s: string): string {
  return s.length <= MAX_OUTCOME_MESSAGE_CHARS ? s : `${s.slice(0, MAX_OUTCOME_MESSAGE_CHARS - 1)}…`;
}

function errCode(err: unknown): string {
  return err instanceof LanekeeperError ? err.code : "INTERNAL";
}

function errMessage(err: unknown): string {
  return cut(err instanceof Error ? err.message : String(err));
}

function customLabels(r: GitHubRunner): string[] {
  return r.labels.filter((l) => l.type !== "read-only").map((l) => l.name);
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

/** New operation ids: 16 random bytes, hex (fits the intent's 128-character `operation_id`). */
export function newOperationId(): string {
  return `op-${randomBytes(8).toString("hex")}`;
}

/**
 * The apply engine (DESIGN.md section 7): runs a plan's actions one after another, each step by step as listed
 * in the action's `steps`, re-checking the action's guards against fresh observations before the first step
 * and before the step each guard names. Every action writes `planned` (all of them, up front), `started` and a
 * terminal audit record (`succeeded`, `failed`, or `rejected` when a guard no longer held before anything was
 * done). A failed step leaves the lane in a safe state (untouched, drained, or stopped) with a recovery note on
 * the lane record and in the audit; steps are idempotent, so re-running `apply` converges.
 *
 * The drain protocol runs inside: `set-draining-labels` (custom labels := identity labels + `lk-draining`),
 * `send-drain` (the agent stops re-arming ephemeral lanes), `wait-idle` ({@link waitUntilIdle}: agent reports no
 * `Runner.Worker` AND GitHub not busy, across the settle window), then the stop-type intent, which the agent
 * refuses with `JOB_RUNNING` if a job started in the meantime: the engine then goes back to waiting. The
 * deadline turns into `needs-attention`, never into a kill, unless an operator passed `--force`.
 */
export class ApplyEngine {
  private readonly clock: Clock;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly settleMs: number;
  private readonly deadlineMs: number;
  private readonly pollMs: number;
  private readonly verifyTimeoutMs: number;
  private readonly verifyPollMs: number;
  private readonly inventoryMaxAgeMs: number;
  private readonly concurrency: number;

  constructor(private readonly o: ApplyEngineOptions) {
    this.clock = o.clock ?? systemClock;
    this.sleep = o.sleep ?? defaultSleep;
    const pd = o.policy.coordinator.drain;
    this.settleMs = o.drain?.settleMs ?? pd.settleMs ?? DEFAULT_DRAIN_SETTLE_MS;
    this.deadlineMs = o.drain?.deadlineMs ?? pd.deadlineMs ?? DEFAULT_DRAIN_DEADLINE_MS;
    this.pollMs = o.drain?.pollMs ?? pd.pollMs ?? DEFAULT_DRAIN_POLL_MS;
    this.verifyTimeoutMs = o.verifyTimeoutMs ?? o.policy.coordinator.verifyTimeoutMs;
    this.verifyPollMs = o.verifyPollMs ?? DEFAULT_VERIFY_POLL_MS;
    this.inventoryMaxAgeMs = o.inventoryMaxAgeMs ?? DEFAULT_APPLY_INVENTORY_MAX_AGE_MS;
    this.concurrency = Math.max(1, o.concurrency ?? o.policy.coordinator.applyConcurrency);
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
    const slot = pLimit(this.concurrency);
    const byId = new Map<string, Promise<ActionOutcome>>();
    const laneTail = new Map<string, Promise<unknown>>();
    const runs = plan.actions.map((a) => {
      const before = laneTail.get(a.laneId);
      const deps = a.dependsOn.map((d) => ({ id: d, outcome: byId.get(d) }));
      const run = async (): Promise<ActionOutcome> => {
        await before?.catch(() => undefined);
        const operationId = ops.get(a.id) ?? newOperationId();
        for (const d of deps) {
          if ((await d.outcome?.catch(() => undefined))?.status !== "succeeded") {
            return this.skip(a, operationId, "dependency", "DEPENDENCY_FAILED", `depends on ${d.id}, which did not succeed`, opts);
          }
        }
        return slot(() => this.execute(a, operationId, plan.planId, opts));
      };
      const done = run().then((outcome) => {
        opts.onEvent?.({ type: "action-end", outcome });
        return outcome;
      });
      byId.set(a.id, done);
      laneTail.set(a.laneId, done);
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
      outcomes.push({
        actionId: a.id,
        kind: a.kind,
        laneId: a.laneId,
        hostId: a.hostId,
        scope: a.scope,
        operationId: "",
        status: "dry-run",
        stepsDone: [],
        intentIds: [],
        elapsedMs: 0,
      });
    }
    return { planId: plan.planId, dryRun: true, outcomes, ok: true };
  }

  private async skip(
    a: Action,
    operationId: string,
    at: "guards" | "dependency",
    code: string,
    message: string,
    opts: ApplyRunOptions,
  ): Promise<ActionOutcome> {
    await this.o.audit.append({ action: a.kind, phase: "rejected", operationId, laneId: a.laneId, hostId: a.hostId, reasonCode: code, message: cut(message) });
    void opts;
    return {
      actionId: a.id,
      kind: a.kind,
      laneId: a.laneId,
      hostId: a.hostId,
      scope: a.scope,
      operationId,
      status: "skipped",
      stepsDone: [],
      failedStep: at,
      code,
      message: cut(message),
      safeState: "untouched",
      intentIds: [],
      elapsedMs: 0,
    };
  }

  private view(): FreshView {
    return new FreshView({ github: this.o.github, store: this.o.store, inventory: this.o.inventory, clock: this.clock, inventoryMaxAgeMs: this.inventoryMaxAgeMs });
  }

  /** Execute one action; never throws (failures become outcomes). */
  private async execute(a: Action, operationId: string, planId: string, opts: ApplyRunOptions): Promise<ActionOutcome> {
    opts.onEvent?.({ type: "action-start", actionId: a.id, kind: a.kind, laneId: a.laneId, hostId: a.hostId });
    const first = a.guards.filter((g) => g.at === undefined);
    const verdict = await checkGuards(first, this.view(), this.o.policy, { scope: a.scope });
    if (!verdict.ok) return this.skip(a, operationId, "guards", "GUARD_FAILED", verdict.why, opts);

    const st: ActionState = {
      action: a,
      operationId,
      startedAtMs: this.clock.now(),
      record: undefined,
      runnerId: "runnerId" in a ? a.runnerId : undefined,
      secret: undefined,
      removeToken: undefined,
      drainSince: undefined,
      drainStartedAtMs: undefined,
      drainDeadlineAtMs: undefined,
      removedSince: undefined,
      observed: undefined,
      labelsDrained: false,
      agentDrained: false,
      stopped: false,
      maybeCreated: false,
      forced: false,
      intentIds: [],
      stepsDone: [],
    };
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
      if (st.runnerId === undefined && rec?.runnerId !== undefined) st.runnerId = rec.runnerId;
      const steps = a.steps;
      for (let i = 0; i < steps.length; i++) {
        const step = steps[i] as PlanStep;
        failedStep = step;
        const at = a.guards.filter((g) => g.at === step);
        if (at.length > 0) {
          const v = await checkGuards(at, this.view(), this.o.policy, { scope: a.scope });
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
        const next = await this.step(st, step, opts);
        if (next === "back-to-wait") {
          const back = this.backToWait(st, "JOB_RUNNING");
          if (back === undefined) throw new StepFailure("JOB_RUNNING", `a job is running in ${a.laneId}; the host refused to stop it`);
          i = back - 1;
          continue;
        }
        st.stepsDone.push(step);
      }
      failedStep = undefined;
      await this.afterSuccess(st, opts);
      return await this.finish(st, "succeeded", opts);
    } catch (err) {
      return await this.fail(st, failedStep ?? "write-record", err, opts);
    } finally {
      st.secret?.fill(0);
      st.removeToken?.fill(0);
    }
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

  // ------------------------------------------------------------------------------------------------ steps

  private async step(st: ActionState, step: PlanStep, opts: ApplyRunOptions): Promise<"ok" | "back-to-wait"> {
    const a = st.action;
    switch (step) {
      case "write-record":
        await this.writeRecord(st, opts);
        return "ok";
      case "delete-record":
        if (st.record !== undefined) {
          await this.o.store.delete(a.laneId, st.record.revision);
          st.record = undefined;
        }
        return "ok";
      case "set-draining-labels":
        await this.setLabels(st, drainingLabels({ laneId: a.laneId }), true);
        return "ok";
      case "restore-labels": {
        const labels = a.kind === "undrain" || a.kind === "restart" ? a.labels : this.canonical(st);
        await this.setLabels(st, labels, false);
        if (a.kind === "restart" && st.agentDrained) {
          // The restart drained the agent too; clear its mark, or the next plan would see a leftover drain.
          await this.send(st, { kind: "undrain", laneId: a.laneId }, opts);
          st.agentDrained = false;
        }
        return "ok";
      }
      case "set-labels":
        if (a.kind !== "relabel") return "ok";
        await this.setLabels(st, a.to, false);
        return "ok";
      case "verify-labels": {
        if (a.kind !== "relabel") return "ok";
        const r = await this.o.github.getRunner(a.scope, a.runnerId);
        if (r === undefined) throw new StepFailure("GITHUB_NOT_FOUND", `runner ${a.runnerId} is gone`);
        if (!sameSet(customLabels(r), a.to)) throw new StepFailure("LABELS_DIFFER", `runner ${a.runnerId} carries ${customLabels(r).join(",")}`);
        return "ok";
      }
      case "mint-registration":
        await this.mintRegistration(st);
        return "ok";
      case "mint-remove-token": {
        const reg = await this.currentRegistration(st);
        if (reg !== undefined) st.removeToken = Buffer.from((await this.o.github.createRemoveToken(a.scope)).token.reveal(), "utf8");
        return "ok";
      }
      case "send-create": {
        if (a.kind !== "create") return "ok";
        const secret = st.secret;
        if (secret === undefined) throw new StepFailure("INTERNAL", "no registration was minted");
        st.maybeCreated = true;
        const out = await this.send(st, { kind: "create", spec: a.spec, registration: secret }, opts);
        secret.fill(0);
        st.secret = undefined;
        this.expectOk(out, "create");
        st.observed = out.result.observed;
        if (st.runnerId === undefined && out.result.observed !== undefined && out.result.observed.runnerId > 0) st.runnerId = out.result.observed.runnerId;
        return "ok";
      }
      case "send-drain": {
        const out = await this.send(st, { kind: "drain", laneId: a.laneId }, opts);
        this.expectOk(out, "drain");
        st.agentDrained = true;
        st.drainSince = out.result.finishedAtMs;
        st.drainStartedAtMs = this.clock.now();
        return "ok";
      }
      case "send-arm": {
        // Re-arm an ephemeral lane with the JIT config minted for it (planner action `arm`).
        if (a.kind !== "arm") return "ok";
        const secret = st.secret;
        if (secret === undefined) throw new StepFailure("INTERNAL", "no JIT config was minted");
        const out = await this.send(st, { kind: "arm", laneId: a.laneId, jitConfig: secret }, opts);
        secret.fill(0);
        st.secret = undefined;
        this.expectOk(out, "arm");
        return "ok";
      }
      case "send-undrain": {
        const out = await this.send(st, { kind: "undrain", laneId: a.laneId }, opts);
        this.expectOk(out, "undrain");
        st.agentDrained = false;
        return "ok";
      }
      case "wait-idle":
        await this.waitIdle(st, opts);
        return "ok";
      case "send-restart": {
        const out = await this.send(st, { kind: "restart", laneId: a.laneId, force: st.forced }, opts);
        if (out.result.reasonCode === String(RejectReason.JOB_RUNNING) && !st.forced) return "back-to-wait";
        this.expectOk(out, "restart");
        return "ok";
      }
      case "send-remove": {
        const out = await this.send(
          st,
          { kind: "remove", laneId: a.laneId, force: st.forced, ...(st.removeToken === undefined ? {} : { removeToken: st.removeToken }) },
          opts,
        );
        st.removeToken?.fill(0);
        st.removeToken = undefined;
        if (out.result.reasonCode === String(RejectReason.JOB_RUNNING) && !st.forced) {
          // The remove token was used up for nothing; a fresh one is minted on the way back.
          return "back-to-wait";
        }
        if (!isRemoveDone(out.result)) this.expectOk(out, "remove");
        st.stopped = true;
        st.removedSince = out.result.finishedAtMs;
        return "ok";
      }
      case "delete-registration":
        await this.deleteRegistration(st);
        return "ok";
      case "verify-online":
        await this.verifyOnline(st);
        return "ok";
      case "verify-gone":
        await this.verifyGone(st);
        return "ok";
    }
  }

  private canonical(st: ActionState): string[] {
    const a = st.action;
    const pool = Object.hasOwn(this.o.policy.pools, a.pool) ? this.o.policy.pools[a.pool] : undefined;
    return [...identityLabels({ laneId: a.laneId, hostId: a.hostId, pool: a.pool }), ...(pool?.labels ?? [])];
  }

  /** Write the lane record as this action's kind and progress require (compare-and-set on the revision read). */
  private async writeRecord(st: ActionState, opts: ApplyRunOptions): Promise<void> {
    const a = st.action;
    const now = this.clock.now();
    const cur = st.record;
    const put = async (next: LaneRecord): Promise<void> => {
      st.record = cur === undefined ? await this.o.store.create(next) : await this.o.store.update(next, cur.revision);
    };
    const base = (): LaneRecord =>
      cur ?? { laneId: a.laneId, scope: a.scope, pool: a.pool, hostId: a.hostId, state: "creating", createdAtMs: now, updatedAtMs: now };
    switch (a.kind) {
      case "create":
        if (cur === undefined) {
          await put({ ...base(), state: "creating", operationId: st.operationId });
        } else {
          await put({
            ...recordWithout(cur, "attention", "drainReason"),
            state: "active",
            updatedAtMs: now,
            operationId: st.operationId,
            ...(st.runnerId === undefined ? {} : { runnerId: st.runnerId }),
          });
        }
        return;
      case "drain": {
        if (cur === undefined) throw new StepFailure("RECORD_MISSING", `lane ${a.laneId} has no record`);
        const reason = opts.operator?.op === "drain" ? "operator" : a.drainReason;
        await put({ ...recordWithout(cur, "attention"), state: "draining", drainReason: reason, updatedAtMs: now, operationId: st.operationId });
        return;
      }
      case "remove":
        if (cur === undefined) throw new StepFailure("RECORD_MISSING", `lane ${a.laneId} has no record`);
        await put({ ...recordWithout(cur, "attention"), state: "removing", updatedAtMs: now, operationId: st.operationId });
        return;
      case "undrain":
        if (cur === undefined) throw new StepFailure("RECORD_MISSING", `lane ${a.laneId} has no record`);
        await put({ ...recordWithout(cur, "attention", "drainReason"), state: "active", updatedAtMs: now, operationId: st.operationId });
        return;
      case "update-record":
        if (cur === undefined) throw new StepFailure("RECORD_MISSING", `lane ${a.laneId} has no record`);
        await put({
          ...recordWithout(cur, ...(a.changes.state === "active" ? (["orphan", "attention"] as const) : [])),
          ...(a.changes.state === undefined ? {} : { state: a.changes.state }),
          ...(a.changes.runnerId === undefined ? {} : { runnerId: a.changes.runnerId }),
          updatedAtMs: now,
          operationId: st.operationId,
        });
        return;
      case "arm":
        if (cur === undefined) throw new StepFailure("RECORD_MISSING", `lane ${a.laneId} has no record`);
        await put({ ...cur, ...(st.runnerId === undefined ? {} : { runnerId: st.runnerId }), updatedAtMs: now, operationId: st.operationId });
        return;
      case "mark-orphan":
        await put({ ...base(), state: "orphaned", orphan: { ...a.mark, markedAtMs: now }, updatedAtMs: now, operationId: st.operationId });
        return;
      default:
        return;
    }
  }

  private async setLabels(st: ActionState, labels: readonly string[], draining: boolean): Promise<void> {
    const reg = await this.currentRegistration(st);
    if (reg === undefined) {
      this.o.log?.info({ laneId: st.action.laneId }, "no registration: labels left as they are");
      return;
    }
    try {
      await this.o.github.setCustomLabels(st.action.scope, reg.id, labels);
    } catch (err) {
      if (err instanceof GitHubNotFoundError) return;
      throw err;
    }
    st.labelsDrained = draining;
  }

  /** The lane's registration now: by known runner id, else by its `lk-lane-` label. Undefined when gone. */
  private async currentRegistration(st: ActionState): Promise<GitHubRunner | undefined> {
    const a = st.action;
    if (st.runnerId !== undefined) {
      const r = await this.o.github.getRunner(a.scope, st.runnerId);
      if (r !== undefined) return r;
    }
    const list = await this.o.github.listRunners(a.scope);
    const r = list.runners.find((x) => x.labels.some((l) => l.name === `${LANE_LABEL_PREFIX}${a.laneId}`));
    if (r !== undefined) st.runnerId = r.id;
    return r;
  }

  private async mintRegistration(st: ActionState): Promise<void> {
    const a = st.action;
    if (a.kind === "arm") {
      const jit = await this.o.github.generateJitConfig(a.scope, { name: a.runnerName, runnerGroupId: await this.runnerGroupId(a.scope), labels: a.labels });
      st.runnerId = jit.runner.id;
      st.secret = Buffer.from(jit.encodedJitConfig.reveal(), "utf8");
      return;
    }
    if (a.kind !== "create") return;
    if (a.spec.mode === LaneMode.LANE_MODE_EPHEMERAL) {
      const groupId = await this.runnerGroupId(a.scope);
      const jit = await this.o.github.generateJitConfig(a.scope, { name: a.laneId, runnerGroupId: groupId, labels: a.spec.labels });
      // A JIT config registers the runner at once: from here on, the lane is not untouched.
      st.maybeCreated = true;
      st.runnerId = jit.runner.id;
      st.secret = Buffer.from(jit.encodedJitConfig.reveal(), "utf8");
    } else {
      st.secret = Buffer.from((await this.o.github.createRegistrationToken(a.scope)).token.reveal(), "utf8");
    }
  }

  private async runnerGroupId(scope: string): Promise<number> {
    const s = parseScope(scope);
    if (s.kind === "repo") return 1;
    const want = this.o.policy.scopes[scope]?.runnerGroup ?? "Default";
    const groups = await this.o.github.listRunnerGroups(s.org);
    const g = groups.find((x) => x.name === want);
    if (g === undefined) throw new StepFailure("RUNNER_GROUP_NOT_FOUND", `runner group ${want} does not exist in ${s.org}`);
    return g.id;
  }

  private async send(st: ActionState, action: DispatchAction, opts: ApplyRunOptions): Promise<DispatchOutcome> {
    const a = st.action;
    const t0 = this.clock.now();
    const forcedBy = st.forced && opts.operator !== undefined ? opts.operator.forcedBy : undefined;
    try {
      const out = await this.o.dispatcher.dispatch({
        hostId: a.hostId,
        action,
        operationId: st.operationId,
        ...(forcedBy === undefined ? {} : { forcedBy }),
      });
      st.intentIds.push(...out.intentIds);
      const status = out.result.status;
      opts.onEvent?.({
        type: "intent",
        hostId: a.hostId,
        laneId: a.laneId,
        action: action.kind,
        result: status === ResultStatus.RESULT_STATUS_OK ? "ok" : status === ResultStatus.RESULT_STATUS_REJECTED ? "rejected" : "failed",
        latencyMs: this.clock.now() - t0,
      });
      return out;
    } catch (err) {
      if (err instanceof DispatchError) {
        const ids = err.details?.intentIds;
        if (Array.isArray(ids)) st.intentIds.push(...ids.filter((x): x is string => typeof x === "string"));
      }
      opts.onEvent?.({ type: "intent", hostId: a.hostId, laneId: a.laneId, action: action.kind, result: errCode(err), latencyMs: this.clock.now() - t0 });
      throw err;
    }
  }

  private expectOk(out: DispatchOutcome, what: IntentActionKind): void {
    const r = out.result;
    if (r.status === ResultStatus.RESULT_STATUS_OK) return;
    const code = r.reasonCode === "" ? (r.status === ResultStatus.RESULT_STATUS_REJECTED ? "AGENT_REJECTED" : "AGENT_FAILED") : agentReasonCode(r.reasonCode);
    throw new StepFailure(code, `${what} on ${r.hostId} ${r.status === ResultStatus.RESULT_STATUS_REJECTED ? "refused" : "failed"}: ${cut(r.message)}`, {
      details: { rejected: r.status === ResultStatus.RESULT_STATUS_REJECTED },
    });
  }

  private async waitIdle(st: ActionState, opts: ApplyRunOptions): Promise<void> {
    const a = st.action;
    const now = this.clock.now();
    st.drainStartedAtMs ??= now;
    const deadlineMs = opts.operator?.deadlineMs ?? (opts.operator?.force === true ? 0 : this.deadlineMs);
    st.drainDeadlineAtMs ??= st.drainStartedAtMs + deadlineMs;
    const res = await waitUntilIdle(
      {
        laneId: a.laneId,
        hostId: a.hostId,
        scope: a.scope,
        runnerId: st.runnerId,
        sinceTakenAtMs: st.drainSince ?? 0,
        startedAtMs: st.drainStartedAtMs,
        deadlineAtMs: st.drainDeadlineAtMs,
        settleMs: this.settleMs,
        pollMs: this.pollMs,
      },
      {
        github: this.o.github,
        inventory: this.o.inventory,
        clock: this.clock,
        sleep: this.sleep,
        inventoryMaxAgeMs: this.inventoryMaxAgeMs,
        ...(opts.onEvent === undefined ? {} : { onProgress: opts.onEvent }),
      },
    );
    if (res.kind === "idle") {
      if (res.runnerId !== undefined) st.runnerId = res.runnerId;
      return;
    }
    if (opts.operator?.force === true) {
      st.forced = true;
      this.o.log?.warn({ laneId: a.laneId, forcedBy: opts.operator.forcedBy }, "drain deadline passed: forcing as the operator asked");
      return;
    }
    throw new StepFailure("DRAIN_DEADLINE", `${res.detail} after ${Math.round(res.elapsedMs / 1000)} s`, { details: { waitingFor: res.reason } });
  }

  private async deleteRegistration(st: ActionState): Promise<void> {
    const a = st.action;
    const reg = await this.currentRegistration(st);
    if (reg === undefined) return;
    const rec = st.record;
    const expected = rec?.orphan?.runnerId ?? rec?.runnerId ?? ("runnerId" in a ? a.runnerId : undefined);
    if (expected !== undefined && reg.id !== expected) {
      throw new StepFailure("REGISTRATION_MISMATCH", `the registration of ${a.laneId} is runner ${reg.id}, the record says ${expected}: not deleted`);
    }
    const names = reg.labels.map((l) => l.name);
    // The reduced draining set names no host: it is this lane's runner only when the record names that runner id.
    const reduced = parseDrainingLabels(names) === a.laneId;
    if (reduced && (expected === undefined || reg.id !== expected)) {
      throw new StepFailure("REGISTRATION_MISMATCH", `runner ${reg.id} carries only the draining labels of ${a.laneId} and no record names it: not deleted`);
    }
    if (!carriesLaneIdentity(names, { laneId: a.laneId, hostId: a.hostId, pool: a.pool })) {
      throw new StepFailure("REGISTRATION_MISMATCH", `runner ${reg.id} no longer carries the identity labels of ${a.laneId}: not deleted`);
    }
    await this.o.github.deleteRunner(a.scope, reg.id);
  }

  private async verifyOnline(st: ActionState): Promise<void> {
    const a = st.action;
    const until = this.clock.now() + this.verifyTimeoutMs;
    const want = a.kind === "create" ? a.spec.labels : undefined;
    // A restart verifies while the lane is still drained: its reduced draining set counts as its identity.
    const identity = { laneId: a.laneId, hostId: a.hostId, pool: a.pool };
    let last = "not observed";
    for (;;) {
      try {
        const r = await this.currentRegistration(st);
        if (r === undefined) last = "no registration yet";
        else if (r.status !== "online") last = `runner ${r.id} is ${r.status}`;
        else if (want !== undefined && !sameSet(customLabels(r), want)) last = `runner ${r.id} carries ${customLabels(r).join(",")}`;
        else if (!carriesLaneIdentity(r.labels.map((x) => x.name), identity)) last = `runner ${r.id} lacks identity labels`;
        else return;
      } catch (err) {
        last = `GitHub: ${errCode(err)}`;
      }
      if (this.clock.now() >= until) throw new StepFailure("VERIFY_ONLINE_TIMEOUT", `${a.laneId} not online with its canonical labels (${last})`);
      await this.sleep(this.verifyPollMs);
    }
  }

  private async verifyGone(st: ActionState): Promise<void> {
    const a = st.action;
    const until = this.clock.now() + this.verifyTimeoutMs;
    let last = "not observed";
    for (;;) {
      const v = this.view();
      const reg = await v.registrationOf(a.scope, a.laneId);
      const byId = st.runnerId === undefined ? undefined : await v.runner(a.scope, st.runnerId);
      const host = await v.host(a.hostId);
      if (isReadFailure(reg)) last = `GitHub: ${reg.code}`;
      else if (reg !== undefined) last = `runner ${reg.id} still carries the lane's label`;
      else if (isReadFailure(byId)) last = `GitHub: ${byId.code}`;
      else if (byId !== undefined) last = `runner ${byId.id} still exists`;
      else if (host === undefined) last = "no fresh inventory from the host";
      else if (st.removedSince !== undefined && host.snapshot.takenAtMs < st.removedSince) last = "no inventory newer than the removal";
      else if (host.snapshot.lanes.some((l) => l.laneId === a.laneId)) last = "the host still reports the lane";
      else return;
      if (this.clock.now() >= until) throw new StepFailure("VERIFY_GONE_TIMEOUT", `${a.laneId} is not gone (${last})`);
      await this.sleep(this.verifyPollMs);
    }
  }

  /** After every step: bring the record out of needs-attention for operator restarts that worked. */
  private async afterSuccess(st: ActionState, opts: ApplyRunOptions): Promise<void> {
    const a = st.action;
    if (a.kind !== "restart" || st.record === undefined) return;
    const cur = st.record;
    if (cur.state === "active" && cur.attention === undefined) return;
    // An operator who restarted the lane has looked at it: its health-restart count starts afresh.
    const cleared = opts.operator === undefined ? [] : (["healthRestartsAtMs"] as const);
    st.record = await this.o.store.update(
      { ...recordWithout(cur, "attention", "drainReason", ...cleared), state: "active", updatedAtMs: this.clock.now(), operationId: st.operationId },
      cur.revision,
    );
  }

  // --------------------------------------------------------------------------------------------- endings

  private safeState(st: ActionState): SafeState {
    if (st.stopped) return "stopped";
    if (st.labelsDrained || st.agentDrained) return "drained";
    if (st.maybeCreated) return "created-unverified";
    return "untouched";
  }

  private async finish(st: ActionState, status: ActionStatus, opts: ApplyRunOptions): Promise<ActionOutcome> {
    const a = st.action;
    const forcedBy = st.forced ? opts.operator?.forcedBy : undefined;
    await this.o.audit.append({
      action: a.kind,
      phase: "succeeded",
      operationId: st.operationId,
      laneId: a.laneId,
      hostId: a.hostId,
      ...(st.intentIds.length > 0 ? { intentId: st.intentIds.at(-1) } : {}),
      details: {
        stepsDone: [...st.stepsDone],
        intentIds: [...st.intentIds],
        ...(st.runnerId === undefined ? {} : { runnerId: st.runnerId }),
        ...(forcedBy === undefined ? {} : { forcedBy }),
      },
    });
    return {
      actionId: a.id,
      kind: a.kind,
      laneId: a.laneId,
      hostId: a.hostId,
      scope: a.scope,
      operationId: st.operationId,
      status,
      stepsDone: [...st.stepsDone],
      intentIds: [...st.intentIds],
      ...(forcedBy === undefined ? {} : { forcedBy }),
      elapsedMs: this.clock.now() - st.startedAtMs,
    };
  }

  private async fail(st: ActionState, step: PlanStep, err: unknown, opts: ApplyRunOptions): Promise<ActionOutcome> {
    const a = st.action;
    const code = errCode(err);
    const message = errMessage(err);
    const deadline = code === "DRAIN_DEADLINE";
    let safeState = this.safeState(st);
    if (a.kind === "create" && st.maybeCreated && err instanceof StepFailure && err.details?.rejected === true && st.runnerId === undefined) {
      // The agent refused before any runtime call (REJECTED): nothing exists on the host.
      safeState = "untouched";
    }
    // A create refused or failed before the host or GitHub changed: drop the record we wrote, as if never tried.
    if (a.kind === "create" && safeState === "untouched" && st.record !== undefined) {
      try {
        await this.o.store.delete(a.laneId, st.record.revision);
        st.record = undefined;
      } catch (e) {
        this.o.log?.warn({ laneId: a.laneId, err: errMessage(e) }, "could not drop the record of a create that did not happen");
      }
    }
    const note = recoveryNote({
      laneId: a.laneId,
      hostId: a.hostId,
      kind: a.kind,
      operatorOp: opts.operator?.op,
      step,
      safeState,
      code,
      cause: message,
    });
    await this.noteOnRecord(st, code, note, deadline);
    await this.o.audit.append({
      action: a.kind,
      phase: "failed",
      operationId: st.operationId,
      laneId: a.laneId,
      hostId: a.hostId,
      reasonCode: code,
      message: cut(`${step}: ${message}`),
      ...(st.intentIds.length > 0 ? { intentId: st.intentIds.at(-1) } : {}),
      details: { failedStep: step, stepsDone: [...st.stepsDone], intentIds: [...st.intentIds], safeState, recovery: note, needsAttention: deadline },
    });
    this.o.log?.warn({ laneId: a.laneId, action: a.kind, step, code }, "action failed");
    return {
      actionId: a.id,
      kind: a.kind,
      laneId: a.laneId,
      hostId: a.hostId,
      scope: a.scope,
      operationId: st.operationId,
      status: deadline ? "needs-attention" : "failed",
      stepsDone: [...st.stepsDone],
      failedStep: step,
      code,
      message,
      safeState,
      recovery: note,
      intentIds: [...st.intentIds],
      elapsedMs: this.clock.now() - st.startedAtMs,
    };
  }

  /** Put the recovery note on the lane record (best effort: the audit record has it either way). */
  private async noteOnRecord(st: ActionState, code: string, note: string, needsAttention: boolean): Promise<void> {
    const a = st.action;
    try {
      const cur = st.record ?? (await this.o.store.get(a.laneId));
      if (cur === undefined) return;
      st.record = await this.o.store.update(
        {
          ...recordWithout(cur),
          ...(needsAttention ? { state: "needs-attention" as const } : {}),
          attention: { code, message: note },
          updatedAtMs: this.clock.now(),
          operationId: st.operationId,
        },
        cur.revision,
      );
    } catch (e) {
      this.o.log?.warn({ laneId: a.laneId, err: errMessage(e) }, "could not write the recovery note to the lane record");
    }
  }
}
