import { systemClock, type Clock, type Logger, type Policy } from "@lanekeeper/shared";
import type { AuditTrail } from "../audit/coordinator-audit.js";
import type { DispatchRequest } from "../dispatch/dispatcher.js";
import type { IntentOutcome } from "../dispatch/intent-outcome.js";
import type { GitHubClient } from "../github/github-client.js";
import type { LaneStore } from "../observe/lane-store.js";
import type { Action, PlanActionKind } from "../plan/action.js";
import type { ApplyEvent } from "./apply-events.js";
import type { InventorySource } from "../observe/inventory-source.js";
import type { OperationLeases } from "./operation-leases.js";
import { RegistrationTokenCache } from "./registration-tokens.js";
import {
  DEFAULT_APPLY_INVENTORY_MAX_AGE_MS,
  DEFAULT_DRAIN_DEADLINE_MS,
  DEFAULT_DRAIN_POLL_MS,
  DEFAULT_DRAIN_SETTLE_MS,
  DEFAULT_VERIFY_POLL_MS,
} from "./limits.js";

/** What the engine needs of the dispatcher: a typed outcome per intent (see {@link IntentOutcome}). */
export interface IntentSender {
  deliver(req: DispatchRequest): Promise<IntentOutcome>;
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

/** Options of the apply engine. */
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
  /**
   * Where each running action holds a lease on its operation id, so any other coordinator can tell an action in
   * flight from one a crash interrupted. Without it, nothing tells them apart (a single coordinator in tests).
   */
  readonly leases?: OperationLeases;
  /**
   * Registration tokens reused per scope within their validity (persistent lanes). Share one across the engines
   * of a process (the coordinator context does). @default one for this engine
   */
  readonly registrationTokens?: RegistrationTokenCache;
}

/** An operator command (`lanekeeper lanes <op>`) running through the engine. */
export interface OperatorRequest {
  readonly op: "drain" | "restart" | "remove";
  /** After the deadline, stop the lane even though a job runs (the intent carries `forced_by`). */
  readonly force: boolean;
  /** Who forced it (audited). */
  readonly forcedBy: string;
  /** Overrides the policy's drain deadline (an operator's `--force` always comes with one). */
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

/** {@link ApplyEngineOptions} with every default filled in (see {@link resolveApplyOptions}). */
export interface ResolvedApplyOptions extends ApplyEngineOptions {
  readonly clock: Clock;
  readonly sleep: (ms: number) => Promise<void>;
  readonly settleMs: number;
  readonly deadlineMs: number;
  readonly pollMs: number;
  readonly verifyTimeoutMs: number;
  readonly verifyPollMs: number;
  readonly inventoryMaxAgeMs: number;
  readonly concurrency: number;
  readonly registrationTokens: RegistrationTokenCache;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Fill in the engine's defaults: the option, else the policy, else the limit in `limits.ts`. */
export function resolveApplyOptions(o: ApplyEngineOptions): ResolvedApplyOptions {
  const pd = o.policy.coordinator.drain;
  return {
    ...o,
    clock: o.clock ?? systemClock,
    sleep: o.sleep ?? defaultSleep,
    settleMs: o.drain?.settleMs ?? pd.settleMs ?? DEFAULT_DRAIN_SETTLE_MS,
    deadlineMs: o.drain?.deadlineMs ?? pd.deadlineMs ?? DEFAULT_DRAIN_DEADLINE_MS,
    pollMs: o.drain?.pollMs ?? pd.pollMs ?? DEFAULT_DRAIN_POLL_MS,
    verifyTimeoutMs: o.verifyTimeoutMs ?? o.policy.coordinator.verifyTimeoutMs,
    verifyPollMs: o.verifyPollMs ?? DEFAULT_VERIFY_POLL_MS,
    inventoryMaxAgeMs: o.inventoryMaxAgeMs ?? DEFAULT_APPLY_INVENTORY_MAX_AGE_MS,
    concurrency: Math.max(1, o.concurrency ?? o.policy.coordinator.applyConcurrency),
    registrationTokens: o.registrationTokens ?? new RegistrationTokenCache(o.clock ?? systemClock),
  };
}
