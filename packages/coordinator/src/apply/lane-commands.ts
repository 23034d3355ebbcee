import { DRAINING_LABEL, LanekeeperError, systemClock, type Clock, type Policy } from "@lanekeeper/shared";
import type { AuditTrail } from "../audit/coordinator-audit.js";
import { isAnswered, type IntentOutcome } from "../dispatch/intent-outcome.js";
import type { GitHubClient } from "../github/github-client.js";
import { classify, type LaneView } from "../observe/classify.js";
import type { LaneStore } from "../observe/lane-store.js";
import type { ScopeObservation } from "../observe/scope-observation.js";
import { COORDINATOR_OWN_ERROR_CODES, type CoordinatorErrorCode } from "../error-codes.js";
import type { Action } from "../plan/action.js";
import { actionOutcome } from "./action-outcome.js";
import { ApplyRefusedError } from "./apply-errors.js";
import type { ActionOutcome, ApplyEvent, ApplyReport } from "./apply-events.js";
import { newOperationId, type ApplyEngine, type IntentSender } from "./apply-engine.js";
import type { InventorySource } from "../observe/inventory-source.js";
import { MAX_DRAIN_DEADLINE_MS } from "./limits.js";
import { observeWorld } from "../context/observe-world.js";
import { operatorAction } from "./operator-actions.js";
import type { OperationLeases } from "./operation-leases.js";

const GITHUB_CODES: ReadonlySet<string> = new Set(COORDINATOR_OWN_ERROR_CODES.filter((c) => c.startsWith("GITHUB_")));

function isGitHubCode(code: string): code is CoordinatorErrorCode {
  return GITHUB_CODES.has(code);
}

/** `lanekeeper lanes <op>`. */
export type LaneCommand = "drain" | "restart" | "remove" | "hold" | "release";

/** What a lane command needs. */
export interface LaneCommandDeps {
  readonly policy: Policy;
  readonly github: GitHubClient;
  readonly store: LaneStore;
  readonly inventory: InventorySource;
  readonly dispatcher: IntentSender;
  readonly audit: AuditTrail;
  readonly engine: ApplyEngine;
  readonly clock?: Clock;
  /** Which in-flight records have a live action elsewhere (a `lanes remove` of a create in flight is refused). */
  readonly leases?: OperationLeases;
}

/** Options of a lane command. */
export interface LaneCommandOptions {
  /** Stop the lane even though a job runs, once `deadlineMs` has passed (refused without `deadlineMs`). */
  readonly force?: boolean;
  /** Who runs the command (audited as `forced_by` when forcing). */
  readonly operator: string;
  /** Drain deadline, overriding the policy's. */
  readonly deadlineMs?: number;
  /** Hold reason. */
  readonly reason?: string;
  readonly onEvent?: (e: ApplyEvent) => void;
}

/** The outcome of a lane command: the engine's report (hold/release produce one outcome too). */
export type LaneCommandResult = ApplyReport;

/** The lane's current view (fresh observation), or a refusal that says what to check. */
export async function laneView(deps: LaneCommandDeps, laneId: string): Promise<LaneView> {
  return (await observeLane(deps, laneId)).view;
}

async function observeLane(deps: LaneCommandDeps, laneId: string): Promise<{ view: LaneView; scope: ScopeObservation | undefined }> {
  const clock = deps.clock ?? systemClock;
  const world = await observeWorld({ policy: deps.policy, github: deps.github, store: deps.store, inventory: deps.inventory, clock, ...(deps.leases === undefined ? {} : { leases: deps.leases }) });
  const cls = classify(deps.policy, world.observed, world.records, { nowMs: world.observedAtMs });
  const v = cls.lanes.find((l) => l.laneId === laneId);
  if (v === undefined) {
    throw new ApplyRefusedError("LANE_NOT_FOUND", `no lane ${laneId} is known (no record, registration or host lane); \`lanekeeper status\` lists the lanes`);
  }
  return { view: v, scope: world.observed.scopes.get(v.scope) };
}

/**
 * `lanes drain|restart|remove` cannot start without GitHub: the drain's first step takes the lane's labels away
 * there. When the lane's scope could not be read, refuse before anything is written, with GitHub's own error
 * (code and message: unreachable, rate limited, ...), so the command fails in the time one GitHub call takes.
 */
function refuseWithoutGitHub(op: "drain" | "restart" | "remove", v: LaneView, scope: ScopeObservation | undefined): void {
  if (scope === undefined || scope.status === "ok" || v.record === undefined) return;
  const code: CoordinatorErrorCode = isGitHubCode(scope.code) ? scope.code : "GITHUB_API";
  throw new LanekeeperError<CoordinatorErrorCode>(
    code,
    `lanes ${op} ${v.laneId}: GitHub could not be read for ${v.scope}, and a ${op} starts by taking the lane's labels away there; ` +
      `nothing was changed, the lane is as it was\n${scope.message}`,
    { hint: `check that this machine reaches GitHub (github.apiUrl in the policy); once it answers, run \`lanekeeper lanes ${op} ${v.laneId}\` again` },
  );
}

/**
 * Run `lanekeeper lanes <op> <lane>`: `drain` (labels swapped, agent told, wait until idle), `restart` (drain,
 * restart, verify online, restore labels), `remove` (drain, stop, deregister, delete, verify gone), `hold` (the
 * agent refuses every mutating intent for the lane until released), `release` (lift a hold, and put an
 * operator-drained or needs-attention lane back in service: canonical labels, agent undrained, record active).
 */
export async function runLaneCommand(deps: LaneCommandDeps, op: LaneCommand, laneId: string, opts: LaneCommandOptions): Promise<LaneCommandResult> {
  if (opts.deadlineMs !== undefined && !(opts.deadlineMs >= 0 && opts.deadlineMs <= MAX_DRAIN_DEADLINE_MS)) {
    throw new ApplyRefusedError("DEADLINE_INVALID", `--deadline must be between 0 and ${MAX_DRAIN_DEADLINE_MS / 86_400_000} days`);
  }
  // Forcing kills a running job: only after an explicit deadline, never "at once" by default.
  if (opts.force === true && opts.deadlineMs === undefined) {
    throw new ApplyRefusedError("DEADLINE_INVALID", `lanes ${op} ${laneId} --force needs an explicit --deadline: how long the job may run before it is stopped`);
  }
  const { view: v, scope } = await observeLane(deps, laneId);
  if (op === "drain" || op === "restart" || op === "remove") refuseWithoutGitHub(op, v, scope);
  const planId = `lanes-${op}-${laneId}-${(deps.clock ?? systemClock).now()}`;
  if (op === "hold" || op === "release") {
    const outcome = await holdOrRelease(deps, v, op, opts);
    const outcomes: ActionOutcome[] = [outcome];
    if (op === "release" && outcome.status === "succeeded" && needsUndrain(v)) {
      const undrain = operatorAction("undrain", v, deps.policy, { force: false });
      const report = await deps.engine.run({ planId, actions: [undrain] }, opts.onEvent === undefined ? {} : { onEvent: opts.onEvent });
      outcomes.push(...report.outcomes);
    }
    return { planId, dryRun: false, outcomes, ok: outcomes.every((o) => o.status === "succeeded") };
  }
  const force = opts.force === true;
  if (op === "remove") await refuseCreateInFlight(deps, v);
  const action: Action = operatorAction(op, v, deps.policy, { force });
  return deps.engine.run(
    { planId, actions: [action] },
    {
      operator: { op, force, forcedBy: opts.operator, ...(opts.deadlineMs === undefined ? {} : { deadlineMs: opts.deadlineMs }) },
      ...(opts.onEvent === undefined ? {} : { onEvent: opts.onEvent }),
    },
  );
}

/** An operator-drained, needs-attention or leftover-drained lane goes back in service on `release`. */
function needsUndrain(v: LaneView): boolean {
  const r = v.record;
  if (r === undefined) return false;
  if (r.state === "draining" || r.state === "needs-attention") return true;
  return v.hostLane?.draining === true || v.registration?.labels.some((l) => l.name === DRAINING_LABEL) === true;
}

async function holdOrRelease(deps: LaneCommandDeps, v: LaneView, op: "hold" | "release", opts: LaneCommandOptions): Promise<ActionOutcome> {
  const clock = deps.clock ?? systemClock;
  const operationId = newOperationId();
  const t0 = clock.now();
  if (v.record === undefined) {
    throw new ApplyRefusedError("LANE_NOT_MANAGED", `lane ${v.laneId} has no coordinator record: lanekeeper never acts on it`);
  }
  const base = { action: op, operationId, laneId: v.laneId, hostId: v.hostId };
  await deps.audit.append({ ...base, phase: "planned", message: `operator ${opts.operator}: lanes ${op}`, ...(opts.reason === undefined ? {} : { details: { reason: opts.reason } }) });
  await deps.audit.append({ ...base, phase: "started" });
  const subject = { id: `${op}:${v.laneId}`, kind: op, laneId: v.laneId, hostId: v.hostId, scope: v.scope };
  const unanswered = async (code: string, message: string): Promise<ActionOutcome> => {
    await deps.audit.append({ ...base, phase: "failed", reasonCode: code, message });
    return actionOutcome(subject, { operationId, status: "failed", code, message, safeState: "untouched", elapsedMs: clock.now() - t0 });
  };
  let out: IntentOutcome;
  try {
    out = await deps.dispatcher.deliver({
      hostId: v.hostId,
      action: op === "hold" ? { kind: "hold", laneId: v.laneId, reason: opts.reason ?? `held by ${opts.operator}` } : { kind: "release", laneId: v.laneId },
      operationId,
    });
  } catch (err) {
    return unanswered((err as { code?: string }).code ?? "INTERNAL", err instanceof Error ? err.message : String(err));
  }
  if (out.kind === "succeeded") {
    await deps.audit.append({ ...base, phase: "succeeded", intentId: out.intentIds.at(-1) ?? "" });
    return actionOutcome(subject, { operationId, status: "succeeded", intentIds: out.intentIds, elapsedMs: clock.now() - t0 });
  }
  if (isAnswered(out)) {
    await deps.audit.append({ ...base, phase: "failed", intentId: out.intentIds.at(-1) ?? "", reasonCode: out.code, message: out.message });
    return actionOutcome(subject, {
      operationId,
      status: "failed",
      code: out.code,
      message: out.message,
      safeState: "untouched",
      intentIds: out.intentIds,
      elapsedMs: clock.now() - t0,
    });
  }
  // No verified answer (timeout, nobody listening, ...): the report names no intent.
  return unanswered(out.code, out.message);
}

/**
 * `lanes remove` of a lane whose create is still running in some coordinator (its operation lease is live) waits
 * for that create: removing the record under it would leave the lane it is creating without a record.
 */
async function refuseCreateInFlight(deps: LaneCommandDeps, v: LaneView): Promise<void> {
  const r = v.record;
  if (r?.state !== "creating" || r.operationId === undefined || r.attention !== undefined || deps.leases === undefined) return;
  if (!(await deps.leases.live([r.operationId])).has(r.operationId)) return;
  throw new ApplyRefusedError(
    "OPERATION_IN_FLIGHT",
    `lane ${v.laneId} is being created right now (operation ${r.operationId}, in another coordinator): nothing was changed. ` +
      `Wait for that create to end (\`lanekeeper lanes show ${v.laneId}\`), then run \`lanekeeper lanes remove ${v.laneId}\` again`,
  );
}
