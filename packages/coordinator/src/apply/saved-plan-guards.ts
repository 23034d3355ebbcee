import type { Policy } from "@lanekeeper/shared";
import type { Action } from "../plan/action.js";
import type { FreshView } from "./fresh-view.js";
import { checkGuards } from "./guard-check.js";

/** An action of a saved plan whose guard does not hold now. */
export interface StaleAction {
  readonly actionId: string;
  /** The failed guard, described, and what is there now. */
  readonly why: string;
}

/**
 * Re-check, against one fresh view of the world, every guard a saved plan's actions must pass before their first
 * step (guards named for a later step, such as "no job running" before a stop, are checked by the engine at that
 * step, as for any plan: a job that runs now is waited for, not a reason to refuse the plan). Returns the actions
 * whose guards fail; empty means the world still is what the plan was made from, as far as the plan relies on it.
 */
export async function staleActions(actions: readonly Action[], view: FreshView, policy: Policy): Promise<StaleAction[]> {
  const stale: StaleAction[] = [];
  for (const a of actions) {
    const v = await checkGuards(
      a.guards.filter((g) => g.at === undefined),
      view,
      policy,
      { scope: a.scope },
    );
    if (!v.ok) stale.push({ actionId: a.id, why: v.why });
  }
  return stale;
}
