/**
 * Enforcement of the create budget on the GitHub client: `createRegistrationToken` and `generateJitConfig` take
 * one mint from the shared {@link CreateBudget} before they send anything, and are refused without sending
 * (`CREATE_BUDGET_EXHAUSTED`) when the budget has no room. Only requests that go out count: a registration token
 * served from the coordinator's cache (`apply/registration-tokens.ts`) never reaches this client.
 */
import { LanekeeperError } from "@lanekeeper/shared";
import type { CoordinatorErrorCode } from "../error-codes.js";
import type { CreateBudget, CreateBudgetUsage } from "./create-budget.js";
import type { GitHubClient } from "./github-client.js";

/** A mint was refused by the create budget; nothing was sent. The action is planned again when there is room. */
export class CreateBudgetExhaustedError extends LanekeeperError<CoordinatorErrorCode> {
  /** When the next mint fits (ms since the epoch). */
  readonly retryAtMs: number;

  constructor(operation: string, usage: CreateBudgetUsage) {
    super(
      "CREATE_BUDGET_EXHAUSTED",
      `${operation} deferred: the GitHub create budget is used up (${usage.thisMinute}/${usage.perMinute} this minute, ` +
        `${usage.thisHour}/${usage.perHour} this hour, shared by every coordinator); room again at ${new Date(usage.nextFreeAtMs).toISOString()}`,
      { details: { operation, ...usage } },
    );
    this.retryAtMs = usage.nextFreeAtMs;
  }
}

/**
 * The client with the create budget enforced on its two minting calls, and {@link GitHubClient.createBudgetUsage}
 * answering from the budget (the planner reads it to defer creates instead of sending them to a refusal).
 */
export function withCreateBudget(github: GitHubClient, budget: CreateBudget): GitHubClient {
  const guarded = async <T>(operation: string, send: () => Promise<T>): Promise<T> => {
    const grant = await budget.take();
    if (!grant.granted) throw new CreateBudgetExhaustedError(operation, grant.usage);
    return send();
  };
  const overrides: Partial<GitHubClient> = {
    createRegistrationToken: (scope) => guarded("createRegistrationToken", () => github.createRegistrationToken(scope)),
    generateJitConfig: (scope, request) => guarded("generateJitConfig", () => github.generateJitConfig(scope, request)),
    createBudgetUsage: () => budget.usage(),
  };
  // Every other member is the wrapped client's own, bound to it (it is a class with private state).
  return new Proxy(github, {
    get(target, prop, receiver) {
      if (typeof prop === "string" && Object.hasOwn(overrides, prop)) return overrides[prop as keyof GitHubClient];
      const v: unknown = Reflect.get(target, prop, receiver === github ? target : receiver);
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
