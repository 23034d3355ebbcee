import { systemClock, type Clock, type Policy } from "@lanekeeper/shared";
import { observeWorld } from "../context/observe-world.js";
import type { GitHubClient } from "../github/github-client.js";
import type { InventorySource } from "../observe/inventory-source.js";
import type { LaneStore } from "../observe/lane-store.js";
import { failedCreateActions } from "../plan/failed-creates.js";
import { interruptedActions } from "../plan/interrupted-actions.js";
import type { PlanWarning } from "../plan/plan-types.js";
import type { ApplyEngine } from "./apply-engine.js";
import type { ApplyEvent, ApplyReport } from "./apply-events.js";
import type { OperationLeases } from "./operation-leases.js";

/** What {@link recoverInterruptedActions} needs: what a plan observes, the leases, and an engine to act. */
export interface RecoverInterruptedDeps {
  readonly policy: Policy;
  readonly github: GitHubClient;
  readonly store: LaneStore;
  readonly inventory: InventorySource;
  /** Required: without leases an interrupted action cannot be told from one in flight. */
  readonly leases: OperationLeases;
  /** The engine to run the recovery with (give it the same `leases`). */
  readonly engine: ApplyEngine;
  readonly clock?: Clock;
}

/** What was recovered: the engine's report (empty when nothing was interrupted) and what was seen. */
export interface RecoveryReport {
  readonly report: ApplyReport;
  /** `CREATE_INTERRUPTED` / `OPERATION_IN_FLIGHT` warnings, as `plan` shows them. */
  readonly warnings: readonly PlanWarning[];
}

/**
 * Resume or roll back, at once, every action a dead coordinator left in flight (call it when `serve` gains the
 * leader lock, or before a plan): creates whose intent never reached the host are re-sent under the same lane id,
 * an unused JIT registration is deleted with its record, a create that failed and left nothing is forgotten.
 * Removals whose coordinator died are resumed by the planner's own RESUME_REMOVE, and creates that took effect are
 * completed by its CREATE_COMPLETED, in the next cycle. An action whose lease is still live is never touched.
 * See `plan/interrupted-actions.ts` for the rules; every action runs through the engine with its guards and audit.
 */
export async function recoverInterruptedActions(deps: RecoverInterruptedDeps, opts: { readonly onEvent?: (e: ApplyEvent) => void } = {}): Promise<RecoveryReport> {
  const clock = deps.clock ?? systemClock;
  const world = await observeWorld({ policy: deps.policy, github: deps.github, store: deps.store, inventory: deps.inventory, clock, leases: deps.leases });
  const found = interruptedActions(deps.policy, world);
  const actions = [...failedCreateActions(world), ...found.rollBacks, ...found.resumes];
  const planId = `recover-${world.observedAtMs}`;
  if (actions.length === 0) return { report: { planId, dryRun: false, outcomes: [], ok: true }, warnings: found.warnings };
  const report = await deps.engine.run({ planId, actions }, opts.onEvent === undefined ? {} : { onEvent: opts.onEvent });
  return { report, warnings: found.warnings };
}
