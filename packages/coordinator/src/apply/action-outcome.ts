import { LanekeeperError, type Clock, type Logger } from "@lanekeeper/shared";
import type { AuditTrail } from "../audit/coordinator-audit.js";
import { isTransientNatsError } from "../context/nats-opening.js";
import { recordWithout } from "../observe/lane-record.js";
import type { LaneStore } from "../observe/lane-store.js";
import type { PlanStep } from "../plan/action.js";
import { safeStateOf, type ActionState } from "./action-state.js";
import { StepFailure } from "./apply-errors.js";
import type { ActionOutcome, ActionStatus } from "./apply-events.js";
import type { ApplyRunOptions } from "./apply-options.js";
import { MAX_OUTCOME_MESSAGE_CHARS } from "./limits.js";
import { recoveryNote, type ObservedAfterFailure, type SafeState } from "./recovery-note.js";
import { upgradeRecoveryNote, type RollbackResult } from "./upgrade-recovery-note.js";

/** A message cut to {@link MAX_OUTCOME_MESSAGE_CHARS}, for outcomes and audit records. */
export function cut(s: string): string {
  return s.length <= MAX_OUTCOME_MESSAGE_CHARS ? s : `${s.slice(0, MAX_OUTCOME_MESSAGE_CHARS - 1)}…`;
}

/**
 * The stable code of an error: a {@link LanekeeperError}'s own; `NATS_UNAVAILABLE` for a raw NATS failure that only
 * means "no answer now" (a request timed out or got 503 while the cluster was away or electing leaders: what the
 * operator must look at is NATS, not a lanekeeper bug); `INTERNAL` for anything else.
 */
export function errCode(err: unknown): string {
  if (err instanceof LanekeeperError) return err.code;
  return isTransientNatsError(err) ? "NATS_UNAVAILABLE" : "INTERNAL";
}

/** The message of an error, cut. */
export function errMessage(err: unknown): string {
  return cut(err instanceof Error ? err.message : String(err));
}

/** What an outcome is about: a plan action, or an operator's hold / release. */
export interface OutcomeSubject {
  readonly id: string;
  readonly kind: ActionOutcome["kind"];
  readonly laneId: string;
  readonly hostId: string;
  readonly scope: string;
}

/** How the action ended; what is not given is empty (`stepsDone`, `intentIds`), zero (`elapsedMs`) or absent. */
export interface OutcomeFields {
  readonly operationId: string;
  readonly status: ActionStatus;
  readonly stepsDone?: readonly PlanStep[];
  readonly failedStep?: ActionOutcome["failedStep"];
  readonly code?: string;
  readonly message?: string;
  readonly safeState?: SafeState;
  readonly recovery?: string;
  readonly intentIds?: readonly string[];
  readonly forcedBy?: string;
  readonly elapsedMs?: number;
}

/** The one builder of {@link ActionOutcome}s: every ending (done, failed, skipped, dry run, hold/release) uses it. */
export function actionOutcome(a: OutcomeSubject, f: OutcomeFields): ActionOutcome {
  return {
    actionId: a.id,
    kind: a.kind,
    laneId: a.laneId,
    hostId: a.hostId,
    scope: a.scope,
    operationId: f.operationId,
    status: f.status,
    stepsDone: [...(f.stepsDone ?? [])],
    ...(f.failedStep === undefined ? {} : { failedStep: f.failedStep }),
    ...(f.code === undefined ? {} : { code: f.code }),
    ...(f.message === undefined ? {} : { message: f.message }),
    ...(f.safeState === undefined ? {} : { safeState: f.safeState }),
    ...(f.recovery === undefined ? {} : { recovery: f.recovery }),
    intentIds: [...(f.intentIds ?? [])],
    ...(f.forcedBy === undefined ? {} : { forcedBy: f.forcedBy }),
    elapsedMs: f.elapsedMs ?? 0,
  };
}

/** What the endings need: the audit trail, the lane store (for recovery notes), the clock and the log. */
export interface EndingDeps {
  readonly audit: AuditTrail;
  readonly store: LaneStore;
  readonly clock: Clock;
  readonly log?: Logger;
  /**
   * A fresh look at a lane (GitHub and the host's newest inventory), for notes on creates whose outcome is not
   * known: the note then says what was seen rather than guessing. Never throws.
   */
  readonly observe?: (a: OutcomeSubject) => Promise<ObservedAfterFailure>;
}

/**
 * How an action ends: its terminal audit record (`succeeded`, `failed`, `rejected`), the recovery note on the
 * lane record when it failed, and its outcome.
 */
export class ActionEndings {
  constructor(private readonly d: EndingDeps) {}

  /** Skipped before anything was done: a guard no longer held, or a dependency did not succeed. */
  async skipped(a: OutcomeSubject, operationId: string, at: "guards" | "dependency", code: string, message: string): Promise<ActionOutcome> {
    await this.d.audit.append({ action: a.kind, phase: "rejected", operationId, laneId: a.laneId, hostId: a.hostId, reasonCode: code, message: cut(message) });
    return actionOutcome(a, { operationId, status: "skipped", failedStep: at, code, message: cut(message), safeState: "untouched" });
  }

  /** Every step done. */
  async succeeded(st: ActionState, opts: ApplyRunOptions): Promise<ActionOutcome> {
    const a = st.action;
    const forcedBy = st.forced ? opts.operator?.forcedBy : undefined;
    await this.d.audit.append({
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
    return actionOutcome(a, {
      operationId: st.operationId,
      status: "succeeded",
      stepsDone: st.stepsDone,
      intentIds: st.intentIds,
      ...(forcedBy === undefined ? {} : { forcedBy }),
      elapsedMs: this.d.clock.now() - st.startedAtMs,
    });
  }

  /**
   * A step failed: the lane is left in a safe state, with a recovery note on its record and in the audit. An
   * upgrade that got as far as its intent ends with `upgrade` (how its rollback went): the lane's record becomes
   * needs-attention with code `UPGRADE_ROLLED_BACK` or `UPGRADE_ROLLBACK_FAILED`, which halts the rollout.
   */
  async failed(st: ActionState, step: PlanStep, err: unknown, opts: ApplyRunOptions, extra: { upgrade?: RollbackResult } = {}): Promise<ActionOutcome> {
    const a = st.action;
    const code = errCode(err);
    const message = errMessage(err);
    const rb = extra.upgrade;
    const deadline = code === "DRAIN_DEADLINE" || rb !== undefined;
    let safeState = rb?.ok === true ? "untouched" : safeStateOf(st);
    if (a.kind === "create" && st.maybeCreated && err instanceof StepFailure && err.details?.rejected === true && st.runnerId === undefined) {
      // The agent refused before any runtime call (REJECTED): nothing exists on the host.
      safeState = "untouched";
    }
    // A create refused or failed before the host or GitHub changed: drop the record we wrote, as if never tried.
    if (a.kind === "create" && safeState === "untouched" && st.record !== undefined) {
      try {
        await this.d.store.delete(a.laneId, st.record.revision);
        st.record = undefined;
      } catch (e) {
        this.d.log?.warn({ laneId: a.laneId, err: errMessage(e) }, "could not drop the record of a create that did not happen");
      }
    }
    // An operator's drain, restart or remove that failed before GitHub or the host changed: its record write (draining,
    // removing) is undone, so the record, `status` and `plan` all show the lane as it was, in service.
    const operatorOp = opts.operator?.op;
    const undone = operatorOp !== undefined && safeState === "untouched" && (await this.undoRecordWrite(st));
    const observed = safeState === "created-unverified" ? await this.d.observe?.(a).catch(() => undefined) : undefined;
    const recordState = await this.recordStateNow(st);
    const note =
      rb !== undefined && a.kind === "upgrade"
        ? upgradeRecoveryNote({ laneId: a.laneId, hostId: a.hostId, scope: a.scope, pool: a.pool, from: a.from, to: a.to, step, code, cause: message, rollback: rb })
        : recoveryNote({
      laneId: a.laneId,
      hostId: a.hostId,
      kind: a.kind,
      operatorOp,
      step,
      safeState,
      code,
      cause: message,
      recordState: deadline ? "needs-attention" : recordState,
      uncertain: st.labelsUncertain,
      observed,
    });
    const attentionCode = rb === undefined ? code : rb.ok ? "UPGRADE_ROLLED_BACK" : "UPGRADE_ROLLBACK_FAILED";
    // An undone operator command leaves no note on the record: the lane is as it was (the note is in the report and the audit).
    if (!undone) await this.noteOnRecord(st, attentionCode, note, deadline);
    await this.d.audit.append({
      action: a.kind,
      phase: "failed",
      operationId: st.operationId,
      laneId: a.laneId,
      hostId: a.hostId,
      reasonCode: code,
      message: cut(`${step}: ${message}`),
      ...(st.intentIds.length > 0 ? { intentId: st.intentIds.at(-1) } : {}),
      details: {
        failedStep: step,
        stepsDone: [...st.stepsDone],
        intentIds: [...st.intentIds],
        safeState,
        recovery: note,
        needsAttention: deadline,
        ...(rb === undefined ? {} : { rollback: rb.ok ? "succeeded" : `failed at ${rb.step}: ${rb.code}`, attentionCode }),
      },
    });
    this.d.log?.warn({ laneId: a.laneId, action: a.kind, step, code }, "action failed");
    return actionOutcome(a, {
      operationId: st.operationId,
      status: deadline ? "needs-attention" : "failed",
      stepsDone: st.stepsDone,
      failedStep: step,
      code,
      message,
      safeState,
      recovery: note,
      intentIds: st.intentIds,
      elapsedMs: this.d.clock.now() - st.startedAtMs,
    });
  }

  /** Restore the record as it was before this action wrote it (compare-and-set; a lost race leaves it, and the note says so). */
  private async undoRecordWrite(st: ActionState): Promise<boolean> {
    const before = st.recordBefore;
    const now = st.record;
    if (before === undefined || now === undefined) return false;
    if (now.revision === before.revision) return true;
    try {
      st.record = await this.d.store.update({ ...recordWithout(before), updatedAtMs: this.d.clock.now() }, now.revision);
      return true;
    } catch (e) {
      this.d.log?.warn({ laneId: st.action.laneId, err: errMessage(e) }, "could not undo the record write of a failed operator command");
      return false;
    }
  }

  /** The record's state as the failure leaves it (`none` without a record), read fresh; undefined when unreadable. */
  private async recordStateNow(st: ActionState): Promise<string | undefined> {
    try {
      const cur = await this.d.store.get(st.action.laneId);
      return cur?.state ?? "none";
    } catch {
      return st.record?.state;
    }
  }

  /** Put the recovery note on the lane record (best effort: the audit record has it either way). */
  private async noteOnRecord(st: ActionState, code: string, note: string, needsAttention: boolean): Promise<void> {
    const a = st.action;
    try {
      const cur = st.record ?? (await this.d.store.get(a.laneId));
      if (cur === undefined) return;
      st.record = await this.d.store.update(
        {
          ...recordWithout(cur),
          ...(needsAttention ? { state: "needs-attention" as const } : {}),
          attention: { code, message: note },
          updatedAtMs: this.d.clock.now(),
          operationId: st.operationId,
        },
        cur.revision,
      );
    } catch (e) {
      this.d.log?.warn({ laneId: a.laneId, err: errMessage(e) }, "could not write the recovery note to the lane record");
    }
  }
}
