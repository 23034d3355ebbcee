import type { CreateBudgetUsage } from "../github/create-budget.js";
import type { DemandSnapshot } from "./demand.js";
import type { InventoryView } from "./inventory-view.js";
import type { RunnerReleaseObservation } from "./runner-releases.js";
import type { ScopeObservation } from "./scope-observation.js";

/** Everything observed for one plan: GitHub per scope, and the agents' inventories. */
export interface ObservedState {
  /** One entry per scope the observer was asked about; a scope without an entry is treated as unavailable. */
  readonly scopes: ReadonlyMap<string, ScopeObservation>;
  readonly inventory: InventoryView;
  /** Workflow jobs in the managed scopes; absent when nothing reads demand (fixed `count` pools need none). */
  readonly demand?: DemandSnapshot | undefined;
  /** GitHub's current runner release (downloads endpoint); absent when no pool needed it. */
  readonly runnerReleases?: RunnerReleaseObservation | undefined;
  /** The GitHub create budget shared by the coordinators; absent when the client enforces none. */
  readonly createBudget?: CreateBudgetUsage | undefined;
}
