import type { CoordinatorPolicy } from "@lanekeeper/shared";
import { WebhookConfigError } from "./demand-errors.js";
import { DEFAULT_COMPLETED_RETENTION_MS, DEFAULT_DEMAND_REST_INTERVAL_MS, DEFAULT_ORG_REPOS_INTERVAL_MS } from "./limits.js";

/** The REST reconciliation's budget with every default filled in. */
export interface ResolvedDemandOptions {
  readonly restIntervalMs: number;
  readonly orgReposIntervalMs: number;
  readonly completedRetentionMs: number;
}

/** Defaults of the policy's `coordinator.demand` block (pure; an explicit value always wins). */
export function resolveDemandOptions(policy: Pick<CoordinatorPolicy, "demand">): ResolvedDemandOptions {
  const d = policy.demand;
  return {
    restIntervalMs: d?.restIntervalMs ?? DEFAULT_DEMAND_REST_INTERVAL_MS,
    orgReposIntervalMs: d?.orgReposIntervalMs ?? DEFAULT_ORG_REPOS_INTERVAL_MS,
    completedRetentionMs: d?.completedRetentionMs ?? DEFAULT_COMPLETED_RETENTION_MS,
  };
}

/**
 * The webhook secret's bytes from the environment variable `coordinator.webhook.secretEnv` names. Missing or empty
 * is a configuration error (an endpoint without a secret would act on anyone's request); the message names the
 * variable, never a value.
 */
export function webhookSecretFrom(policy: Pick<CoordinatorPolicy, "webhook">, env: Readonly<Record<string, string | undefined>>): Uint8Array {
  const name = policy.webhook?.secretEnv;
  if (name === undefined) throw new WebhookConfigError("coordinator.webhook is not configured");
  const v = env[name];
  if (v === undefined || v === "") {
    throw new WebhookConfigError(`the environment variable ${name} (coordinator.webhook.secretEnv) is not set; export the webhook secret there, the same one as in GitHub's webhook settings`);
  }
  return Buffer.from(v, "utf8");
}
